// Package github answers commit questions from the GitHub REST API (github.com or GitHub Enterprise
// Server): commit metadata, first-parent ranges through the compare API, and files through the contents
// API.
//
// Every answer is decoded defensively: an empty, null, truncated or wrongly typed body, or one missing a
// SHA or a commit time, is an error wrapping commits.ErrBadResponse, never a panic; bodies are capped.
// Every lookup (retries included) finishes within Options.Timeout and then fails with an error wrapping
// context.DeadlineExceeded. Rate limits never sleep: a 429 or rate-limited 403 fails the lookup at once
// with a *commits.RateLimitError, and until it lifts every lookup that needs a request fails the same way
// without sending one. Only 5xx and network errors are retried, briefly. Credentials go only to the API
// base URL's own scheme, host and port. Answers are immutable by SHA, so they are held in an LRU bounded
// in bytes (Options.CacheBytes), and concurrent identical lookups share one call that no single caller's
// cancellation can fail for the others; a ref that is no SHA (Resolve's branches, tags and prefixes) is
// asked again every time, conditionally on its last answer.
package github

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	gh "github.com/google/go-github/v88/github"
	"github.com/hashicorp/go-cleanhttp"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/sync/singleflight"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/bytecache"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/redact"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/revision"
)

// DefaultBaseURL is the API base URL of github.com.
const DefaultBaseURL = "https://api.github.com/"

const (
	// DefaultTimeout bounds one lookup, retries included.
	DefaultTimeout = 30 * time.Second
	// DefaultCacheBytes bounds the answers held in memory.
	DefaultCacheBytes = 32 << 20
	defaultMaxRetries = 4
	defaultWaitMin    = 500 * time.Millisecond
	defaultWaitMax    = 5 * time.Second
	comparePageSize   = 100
	userAgent         = "flux-commit-tracker"
	tracerName        = "github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/github"
)

// ErrTooLarge reports a file over the caller's byte limit; it is commits.ErrTooLarge.
var ErrTooLarge = commits.ErrTooLarge

// Options configures a Provider. Token wins over App credentials; with neither, calls are anonymous.
type Options struct {
	// BaseURL is the API base URL; default https://api.github.com/, GitHub Enterprise: https://host/api/v3/.
	// Credentials are sent to its scheme, host and port only.
	BaseURL string
	// Token is a personal access or fine-grained token.
	Token string
	// AppID, AppPrivateKey (PEM) and AppInstallationID authenticate as a GitHub App installation.
	AppID             int64
	AppPrivateKey     []byte
	AppInstallationID int64
	// Timeout bounds one lookup, its retries included; default 30s.
	Timeout time.Duration
	// CacheBytes bounds the estimated bytes of the answers held in memory; default 32 MiB.
	CacheBytes int64
	// MaxRetries bounds retries of one request after a 5xx or network error; default 4, negative disables.
	MaxRetries int
	// RetryWaitMin and RetryWaitMax bound the exponential backoff; default 500ms and 5s.
	RetryWaitMin, RetryWaitMax time.Duration
	// OnCall, if set, is told the outcome of every HTTP call and every lookup answered from memory.
	OnCall func(ctx context.Context, outcome commits.CallOutcome)
	// TracerProvider, if set, records a client span per HTTP call.
	TracerProvider trace.TracerProvider
	// Logger, if set, gets rate limit notices, recovered failures and retry details (debug).
	Logger *slog.Logger
	// Transport is the base round tripper; default a pooled transport.
	Transport http.RoundTripper
}

// AuthMode returns "token", "app" or "anonymous".
func (o Options) AuthMode() string {
	switch {
	case o.Token != "":
		return "token"
	case o.AppID != 0 || len(o.AppPrivateKey) > 0 || o.AppInstallationID != 0:
		return "app"
	}
	return "anonymous"
}

// validateApp names the App settings that are missing, by their environment variables.
func (o Options) validateApp() error {
	var missing []string
	if o.AppID == 0 {
		missing = append(missing, "GITHUB_APP_ID")
	}
	if len(o.AppPrivateKey) == 0 {
		missing = append(missing, "GITHUB_APP_PRIVATE_KEY")
	}
	if o.AppInstallationID == 0 {
		missing = append(missing, "GITHUB_APP_INSTALLATION_ID")
	}
	if len(missing) > 0 {
		return fmt.Errorf("github: App authentication needs GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY and GITHUB_APP_INSTALLATION_ID; missing %s", strings.Join(missing, ", "))
	}
	return nil
}

// Provider implements commits.Provider for GitHub. It is safe for concurrent use.
type Provider struct {
	client *gh.Client
	// writeClient is client without retries.
	writeClient *gh.Client
	cache       *bytecache.Cache[string, any]
	flight      singleflight.Group
	limiter     *limiter
	timeout     time.Duration
	onCall      func(context.Context, commits.CallOutcome)
	logger      *slog.Logger
}

var (
	_ commits.Provider    = (*Provider)(nil)
	_ commits.RefResolver = (*Provider)(nil)
	_ commits.PathHistory = (*Provider)(nil)
)

// New returns a Provider for opts.
func New(opts Options) (*Provider, error) {
	base, err := parseBaseURL(opts.BaseURL)
	if err != nil {
		return nil, err
	}
	cfg := transportConfig{
		base:       opts.Transport,
		apiURL:     base,
		onCall:     opts.OnCall,
		logger:     opts.Logger,
		maxRetries: opts.MaxRetries,
		waitMin:    opts.RetryWaitMin,
		waitMax:    opts.RetryWaitMax,
	}
	if cfg.base == nil {
		cfg.base = cleanhttp.DefaultPooledTransport()
	}
	if cfg.onCall == nil {
		cfg.onCall = func(context.Context, commits.CallOutcome) {}
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	cfg.limiter = &limiter{now: time.Now, logger: cfg.logger}
	retry := commits.RetryPolicy{MaxRetries: cfg.maxRetries, WaitMin: cfg.waitMin, WaitMax: cfg.waitMax}.
		WithDefaults(commits.RetryPolicy{MaxRetries: defaultMaxRetries, WaitMin: defaultWaitMin, WaitMax: defaultWaitMax})
	cfg.maxRetries, cfg.waitMin, cfg.waitMax = retry.MaxRetries, retry.WaitMin, retry.WaitMax
	tp := opts.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	cfg.tracer = tp.Tracer(tracerName)
	switch opts.AuthMode() {
	case "token":
		cfg.token = opts.Token
		redact.Secret(opts.Token) // masked in anything emitted from now on
	case "app":
		redact.Secret(string(opts.AppPrivateKey))
		if err := opts.validateApp(); err != nil {
			return nil, err
		}
		cfg.authenticate = func(rt http.RoundTripper) (http.RoundTripper, error) {
			itr, err := ghinstallation.New(rt, opts.AppID, opts.AppInstallationID, opts.AppPrivateKey)
			if err != nil {
				// The parser's error is dropped: it is not worth risking key material in a message.
				return nil, errors.New("github: GITHUB_APP_PRIVATE_KEY is not a PEM-encoded RSA private key")
			}
			itr.BaseURL = strings.TrimSuffix(base.String(), "/")
			return itr, nil
		}
	}
	rt, once, err := newTransport(cfg)
	if err != nil {
		return nil, err
	}
	baseURL := base.String()
	newClient := func(rt http.RoundTripper) (*gh.Client, error) {
		return gh.NewClient(gh.WithTransport(rt), gh.WithURLs(&baseURL, nil), gh.WithDisableRateLimitCheck(), gh.WithUserAgent(userAgent))
	}
	client, err := newClient(rt)
	if err != nil {
		return nil, fmt.Errorf("github: %w", err)
	}
	writeClient, err := newClient(once)
	if err != nil {
		return nil, fmt.Errorf("github: %w", err)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	cacheBytes := opts.CacheBytes
	if cacheBytes <= 0 {
		cacheBytes = DefaultCacheBytes
	}
	return &Provider{
		client:      client,
		writeClient: writeClient,
		cache:       bytecache.New[string, any](cacheBytes),
		limiter:     cfg.limiter,
		timeout:     timeout,
		onCall:      cfg.onCall,
		logger:      cfg.logger,
	}, nil
}

// Client returns the provider's go-github client: its auth, rate limit gating and retries, for other API calls.
func (p *Provider) Client() *gh.Client { return p.client }

// WriteClient is Client without retries, for writes a retry could store twice (a create that GitHub stored
// but answered 5xx, or whose answer was lost).
func (p *Provider) WriteClient() *gh.Client { return p.writeClient }

func parseBaseURL(s string) (*url.URL, error) {
	if s == "" {
		s = DefaultBaseURL
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("github: API base URL %q must be an absolute http(s) URL", s)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	return u, nil
}

// get sends GET u (relative to the base URL) and returns the body, undecoded.
func (p *Provider) get(ctx context.Context, u string) ([]byte, *gh.Response, error) {
	req, err := p.client.NewRequest(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	var raw bytes.Buffer
	resp, err := p.client.Do(req, &raw)
	if err != nil {
		return nil, resp, err
	}
	return raw.Bytes(), resp, nil
}

// Commit returns one commit by SHA.
func (p *Provider) Commit(ctx context.Context, repo commits.Repository, sha string) (commits.Commit, error) {
	key := cacheKey("commit", repo, sha)
	v, err := p.lookup(ctx, key, key, isSHA(sha), func(ctx context.Context) (any, int64, error) {
		what := fmt.Sprintf("get commit %s@%s", repo, revision.Quote(sha))
		raw, _, err := p.get(ctx, commitURL(repo, sha))
		if err != nil {
			return nil, 0, apiError(ctx, err, "%s", what)
		}
		c, err := decodeCommit(raw)
		if err != nil {
			return nil, 0, fmt.Errorf("github: %s: %w", what, err)
		}
		return c, int64(len(key)) + commitBytes(c), nil
	})
	if err != nil {
		return commits.Commit{}, err
	}
	return cloneCommit(v.(commits.Commit)), nil
}

// mediaTypeSHA asks GET commits/{ref} for the commit's SHA alone, its ETag the quoted SHA.
const mediaTypeSHA = "application/vnd.github.sha"

// commitURL is the path of GET /repos/{owner}/{repo}/commits/{ref}.
func commitURL(repo commits.Repository, ref string) string {
	return fmt.Sprintf("repos/%s/%s/commits/%s", url.PathEscape(repo.Owner), url.PathEscape(repo.Name), escapeRef(ref))
}

// Resolve returns the full SHA ref names now: a branch, a tag, a full SHA or a SHA prefix. A full SHA's answer is
// kept; any other ref is asked again every time, conditionally on its last answer, so a ref that has not moved
// costs a 304. GitHub refuses an ambiguous prefix as it refuses an unknown ref, so both are commits.ErrNotFound.
func (p *Provider) Resolve(ctx context.Context, repo commits.Repository, ref string) (string, error) {
	if ref == "" || strings.HasPrefix(ref, "/") || strings.Contains(ref, "..") {
		// Not a ref git accepts, and one that would reach another API path.
		return "", fmt.Errorf("github: resolve %s in %s: not a ref name: %w", revision.Quote(ref), repo, commits.ErrNotFound)
	}
	key := cacheKey("resolve", repo, ref)
	v, err := p.lookup(ctx, key, key, isSHA(ref), func(ctx context.Context) (any, int64, error) {
		sha, err := p.fetchSHA(ctx, repo, ref)
		if err != nil {
			return nil, 0, err
		}
		return sha, int64(len(key)+len(sha)) + 64, nil
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// fetchSHA asks for the SHA ref names, sending the last answer for ref as If-None-Match.
func (p *Provider) fetchSHA(ctx context.Context, repo commits.Repository, ref string) (string, error) {
	what := fmt.Sprintf("resolve %s in %s", revision.Quote(ref), repo)
	req, err := p.client.NewRequest(ctx, http.MethodGet, commitURL(repo, ref), nil)
	if err != nil {
		return "", fmt.Errorf("github: %s: %w", what, err)
	}
	req.Header.Set("Accept", mediaTypeSHA)
	lastKey := cacheKey("last", repo, ref)
	last, known := p.cache.Get(lastKey)
	if known {
		req.Header.Set("If-None-Match", `"`+last.(string)+`"`)
	}
	var raw bytes.Buffer
	_, err = p.client.Do(req, &raw)
	var er *gh.ErrorResponse
	switch {
	case known && errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusNotModified:
		return last.(string), nil
	case err != nil:
		err = apiError(ctx, err, "%s", what)
		if commits.IsSHAPrefix(ref) && !revision.IsSHA(ref) && errors.Is(err, commits.ErrNotFound) {
			return "", fmt.Errorf("%w (no branch or tag has that name, and no commit or more than one begins with it)", err)
		}
		return "", err
	}
	sha := strings.TrimSpace(raw.String())
	if !isSHA(sha) || (revision.IsSHA(ref) && !strings.EqualFold(sha, ref)) {
		return "", fmt.Errorf("github: %s: answer %s is not a full SHA of it: %w", what, revision.Quote(sha), commits.ErrBadResponse)
	}
	if !isSHA(ref) {
		p.cache.Add(lastKey, sha, int64(len(lastKey)+len(sha))+64)
	}
	return sha, nil
}

// Range returns the first-parent commits in (base, head], oldest first. Identical SHAs need no call;
// a head that is not a full SHA (a branch, a short SHA) costs one more call to resolve it.
func (p *Provider) Range(ctx context.Context, repo commits.Repository, base, head string) (commits.Range, error) {
	if base == head {
		return commits.Range{Status: commits.Identical}, nil
	}
	if !isSHA(head) {
		c, err := p.Commit(ctx, repo, head)
		if err != nil {
			return commits.Range{}, err
		}
		head = c.SHA
	}
	key := cacheKey("range", repo, base, head)
	v, err := p.lookup(ctx, key, key, isSHA(base) && isSHA(head), func(ctx context.Context) (any, int64, error) {
		r, err := p.fetchRange(ctx, repo, base, head)
		if err != nil {
			return nil, 0, err
		}
		return r, int64(len(key)) + rangeBytes(r), nil
	})
	if err != nil {
		return commits.Range{}, err
	}
	r := v.(commits.Range)
	r.Commits = cloneCommits(r.Commits)
	return r, nil
}

// fetchRange asks the compare API for page 1 (status and total_commits), then walkPages takes over.
func (p *Provider) fetchRange(ctx context.Context, repo commits.Repository, base, head string) (commits.Range, error) {
	what := fmt.Sprintf("compare %s %s...%s", repo, revision.Quote(base), revision.Quote(head))
	page := func(n int) (compare, *gh.Response, error) {
		u := fmt.Sprintf("repos/%s/%s/compare/%s...%s?page=%d&per_page=%d", url.PathEscape(repo.Owner), url.PathEscape(repo.Name),
			escapeRef(base), escapeRef(head), n, comparePageSize)
		raw, resp, err := p.get(ctx, u)
		if err != nil {
			return compare{}, nil, apiError(ctx, err, "%s", what)
		}
		cmp, err := decodeCompare(raw)
		if err != nil {
			return compare{}, nil, fmt.Errorf("github: %s: page %d: %w", what, n, err)
		}
		return cmp, resp, nil
	}
	cmp, resp, err := page(1)
	if err != nil {
		return commits.Range{}, err
	}
	if cmp.status != commits.Ahead {
		return commits.Range{Status: cmp.status}, nil
	}
	lastPage := max(resp.LastPage, (cmp.total+comparePageSize-1)/comparePageSize)
	return walkPages(base, head, cmp.total, lastPage, cmp.commits, func(n int) ([]commits.Commit, error) {
		cmp, _, err := page(n)
		if err != nil {
			return nil, err
		}
		if len(cmp.commits) == 0 {
			// A page the answer promised is empty: the totals or links were wrong; do not walk on.
			return nil, fmt.Errorf("github: %s: page %d of %d is empty: %w", what, n, lastPage, commits.ErrBadResponse)
		}
		return cmp.commits, nil
	})
}

// walkPages gathers compare pages newest first (page 1, oldest, is given) until the first-parent chain
// from head reaches base or holds MaxRangeCommits; see assemble.
func walkPages(base, head string, total, lastPage int, page1 []commits.Commit, fetch func(page int) ([]commits.Commit, error)) (commits.Range, error) {
	fetched := make(map[string]commits.Commit, min(total, 4*comparePageSize))
	add := func(cs []commits.Commit) {
		for _, c := range cs {
			fetched[c.SHA] = c
		}
	}
	add(page1)
	for next := lastPage; ; next-- {
		r, more := assemble(fetched, base, head, total, next < 2)
		if !more {
			return r, nil
		}
		cs, err := fetch(next)
		if err != nil {
			return commits.Range{}, err
		}
		add(cs)
	}
}

type fileEntry struct {
	data    []byte
	missing bool
}

// File returns the content of path at commit sha. Absent files are remembered like present ones.
func (p *Provider) File(ctx context.Context, repo commits.Repository, sha, path string, maxBytes int64) ([]byte, error) {
	key := cacheKey("file", repo, sha, path)
	flightKey := key + "\x00" + strconv.FormatInt(maxBytes, 10)
	v, err := p.lookup(ctx, key, flightKey, isSHA(sha), func(ctx context.Context) (any, int64, error) {
		e, err := p.fetchFile(ctx, repo, sha, path, maxBytes)
		if err != nil {
			return nil, 0, err
		}
		return e, int64(len(key)) + 64 + int64(len(e.data)), nil
	})
	if err != nil {
		return nil, err
	}
	e := v.(fileEntry)
	switch {
	case e.missing:
		return nil, fmt.Errorf("github: %s at %s in %s: %w", revision.Quote(path), revision.Quote(sha), repo, commits.ErrNotFound)
	case int64(len(e.data)) > maxBytes:
		return nil, tooLarge(repo, sha, path, int64(len(e.data)), maxBytes)
	}
	return bytes.Clone(e.data), nil
}

func (p *Provider) fetchFile(ctx context.Context, repo commits.Repository, sha, path string, maxBytes int64) (fileEntry, error) {
	what := fmt.Sprintf("get %s at %s in %s", revision.Quote(path), revision.Quote(sha), repo)
	raw, _, err := p.get(ctx, contentsURL(repo, sha, path))
	if err != nil {
		var er *gh.ErrorResponse
		// A missing path at an existing commit stays missing; a missing commit may still be pushed.
		if errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusNotFound && !strings.HasPrefix(er.Message, "No commit found") {
			return fileEntry{missing: true}, nil
		}
		return fileEntry{}, apiError(ctx, err, "%s", what)
	}
	f, err := decodeContents(raw)
	if err != nil {
		return fileEntry{}, fmt.Errorf("github: %s: %w", what, err)
	}
	if f.dir {
		return fileEntry{}, fmt.Errorf("github: %s: not a file", what)
	}
	if f.size > maxBytes {
		return fileEntry{}, tooLarge(repo, sha, path, f.size, maxBytes)
	}
	if f.encoding == "none" {
		if f.data, err = p.rawFile(ctx, repo, sha, path, maxBytes); err != nil {
			return fileEntry{}, apiError(ctx, err, "%s (raw)", what)
		}
		if int64(len(f.data)) > maxBytes {
			return fileEntry{}, tooLarge(repo, sha, path, int64(len(f.data)), maxBytes)
		}
		if int64(len(f.data)) != f.size {
			return fileEntry{}, fmt.Errorf("github: %s: raw content is %d bytes, size says %d: %w", what, len(f.data), f.size, commits.ErrBadResponse)
		}
	}
	return fileEntry{data: f.data}, nil
}

// escapeRef escapes a ref for a URL path, keeping the slashes of branch names.
func escapeRef(ref string) string { return (&url.URL{Path: ref}).EscapedPath() }

// contentsURL is the contents API path of path at ref.
func contentsURL(repo commits.Repository, ref, path string) string {
	return fmt.Sprintf("repos/%s/%s/contents/%s?ref=%s", url.PathEscape(repo.Owner), url.PathEscape(repo.Name),
		(&url.URL{Path: strings.Trim(path, "/")}).EscapedPath(), url.QueryEscape(ref))
}

// rawFile fetches a file with the raw media type, reading at most maxBytes+1 bytes.
func (p *Provider) rawFile(ctx context.Context, repo commits.Repository, sha, path string, maxBytes int64) ([]byte, error) {
	req, err := p.client.NewRequest(ctx, http.MethodGet, contentsURL(repo, sha, path), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/vnd.github.raw")
	w := &cappedBuffer{limit: maxBytes + 1}
	if _, err := p.client.Do(req, w); err != nil && !errors.Is(err, errCapped) {
		return nil, err
	}
	return w.Bytes(), nil
}

var errCapped = errors.New("capped")

// cappedBuffer keeps at most limit bytes and then fails the copy.
type cappedBuffer struct {
	bytes.Buffer
	limit int64
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.limit - int64(b.Len()); int64(len(p)) > room {
		b.Buffer.Write(p[:max(room, 0)])
		return int(max(room, 0)), errCapped
	}
	return b.Buffer.Write(p)
}

func tooLarge(repo commits.Repository, sha, path string, size, maxBytes int64) error {
	return fmt.Errorf("github: %s at %s in %s is %d bytes, over the %d byte limit: %w", revision.Quote(path), revision.Quote(sha), repo, size, maxBytes, ErrTooLarge)
}

// lookup answers from the cache, else runs fetch once for all concurrent callers with the same flightKey
// and caches a successful answer (of the size fetch estimates) under key when cacheable. Callers served
// by another's call count as cache hits. While a rate limit holds, a lookup that is not in the cache fails
// at once.
//
// The shared call runs on a context detached from every caller's cancellation (it keeps their values,
// e.g. the trace) and bounded by the provider's timeout, so one caller giving up does not fail the others;
// each caller still returns when its own context ends. A panic in fetch becomes an error.
func (p *Provider) lookup(ctx context.Context, key, flightKey string, cacheable bool, fetch func(context.Context) (any, int64, error)) (any, error) {
	if cacheable {
		if v, ok := p.cache.Get(key); ok {
			p.onCall(ctx, commits.CallCacheHit)
			return v, nil
		}
	}
	if err := p.limiter.check(); err != nil {
		return nil, fmt.Errorf("github: %w", err)
	}
	leader, hit := false, false
	ch := p.flight.DoChan(flightKey, func() (v any, err error) {
		leader = true
		defer func() {
			if r := recover(); r != nil {
				p.logger.ErrorContext(ctx, "github: lookup panicked; answering with an error", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				v, err = nil, fmt.Errorf("github: lookup failed: %v: %w", r, commits.ErrBadResponse)
			}
		}()
		if cacheable {
			// An earlier flight may have filled the cache since the check above.
			if v, ok := p.cache.Get(key); ok {
				hit = true
				return v, nil
			}
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.timeout)
		defer cancel()
		v, size, err := fetch(fctx)
		if err == nil && cacheable {
			p.cache.Add(key, v, size)
		}
		return v, err
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("github: %w", ctx.Err())
	case res := <-ch:
		if (!leader || hit) && res.Err == nil {
			p.onCall(ctx, commits.CallCacheHit)
		}
		return res.Val, res.Err
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// apiError wraps err with what was asked. GitHub's 404 and "No commit found" 422 become commits.ErrNotFound;
// a failure once a 2xx answer arrived (a truncated or oversized body) is commits.ErrBadResponse; the
// lookup's deadline shows as context.DeadlineExceeded.
func apiError(ctx context.Context, err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if ctxErr := ctx.Err(); ctxErr != nil && !isContextErr(err) {
		return fmt.Errorf("github: %s: %w (%w)", what, ctxErr, err)
	}
	var er *gh.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		code := er.Response.StatusCode
		if code == http.StatusNotFound || (code == http.StatusUnprocessableEntity && strings.HasPrefix(er.Message, "No commit found")) {
			return fmt.Errorf("github: %s: %w: %w", what, commits.ErrNotFound, err)
		}
		return fmt.Errorf("github: %s: %w", what, err)
	}
	var limited *commits.RateLimitError
	if errors.As(err, &limited) || isContextErr(err) || errors.Is(err, commits.ErrBadResponse) {
		return fmt.Errorf("github: %s: %w", what, err)
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		// Not the transport's error: the body of a successful answer could not be read whole.
		return fmt.Errorf("github: %s: reading the answer: %w: %w", what, commits.ErrBadResponse, err)
	}
	return fmt.Errorf("github: %s: %w", what, err)
}

func cacheKey(kind string, repo commits.Repository, args ...string) string {
	return kind + "\x00" + repo.String() + "\x00" + strings.Join(args, "\x00")
}

// isSHA reports whether s is a full lower-case SHA-1 or SHA-256 object name: only those name immutable answers.
func isSHA(s string) bool { return revision.IsSHA(s) && s == strings.ToLower(s) }

// commitBytes estimates the memory one cached commit holds.
func commitBytes(c commits.Commit) int64 {
	n := 160 + len(c.SHA) + len(c.Message) + len(c.AuthorName) + len(c.AuthorEmail)
	for _, parent := range c.Parents {
		n += 16 + len(parent)
	}
	return int64(n)
}

// rangeBytes estimates the memory one cached range holds.
func rangeBytes(r commits.Range) int64 {
	n := int64(64)
	for _, c := range r.Commits {
		n += commitBytes(c)
	}
	return n
}

func cloneCommit(c commits.Commit) commits.Commit {
	c.Parents = append([]string(nil), c.Parents...)
	return c
}

func cloneCommits(cs []commits.Commit) []commits.Commit {
	if cs == nil {
		return nil
	}
	out := make([]commits.Commit, len(cs))
	for i, c := range cs {
		out[i] = cloneCommit(c)
	}
	return out
}

// LastChange returns the newest commit at or before rev that changed path, from GET commits?sha=&path=&per_page=1
// (GitHub's history of a path, as git log -- path simplifies it). An answer for a full SHA is kept.
func (p *Provider) LastChange(ctx context.Context, repo commits.Repository, rev, path string) (commits.Commit, error) {
	path = strings.Trim(path, "/")
	key := cacheKey("lastchange", repo, rev, path)
	v, err := p.lookup(ctx, key, key, isSHA(rev), func(ctx context.Context) (any, int64, error) {
		what := fmt.Sprintf("last change of %s at %s in %s", revision.Quote(path), revision.Quote(rev), repo)
		raw, _, err := p.get(ctx, historyURL(repo, rev, path))
		if err != nil {
			return nil, 0, apiError(ctx, err, "%s", what)
		}
		cs, err := decodeCommitList(raw)
		if err != nil {
			return nil, 0, fmt.Errorf("github: %s: %w", what, err)
		}
		if len(cs) == 0 {
			return nil, 0, fmt.Errorf("github: %s: no commit changed it: %w", what, commits.ErrNotFound)
		}
		return cs[0], int64(len(key)) + commitBytes(cs[0]), nil
	})
	if err != nil {
		return commits.Commit{}, err
	}
	return cloneCommit(v.(commits.Commit)), nil
}

// historyURL is the path of GET /repos/{owner}/{repo}/commits listing the newest commit at ref that changed path.
func historyURL(repo commits.Repository, ref, path string) string {
	q := url.Values{"sha": {ref}, "per_page": {"1"}}
	if path != "" {
		q.Set("path", path)
	}
	return fmt.Sprintf("repos/%s/%s/commits?%s", url.PathEscape(repo.Owner), url.PathEscape(repo.Name), q.Encode())
}
