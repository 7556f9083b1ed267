// Package github answers commit questions from the GitHub REST API (github.com or GitHub Enterprise
// Server): commit metadata, first-parent ranges through the compare API, and files through the contents
// API. Answers are immutable by SHA, so they are held in one bounded LRU; concurrent identical lookups
// share one HTTP call; retries and rate limits are handled by maintained transports (see newTransport).
package github

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	gh "github.com/google/go-github/v88/github"
	"github.com/hashicorp/go-cleanhttp"
	lru "github.com/hashicorp/golang-lru/v2"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/sync/singleflight"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
)

// DefaultBaseURL is the API base URL of github.com.
const DefaultBaseURL = "https://api.github.com/"

const (
	defaultCacheSize  = 4096
	defaultMaxRetries = 4
	defaultWaitMin    = 500 * time.Millisecond
	defaultWaitMax    = 30 * time.Second
	comparePageSize   = 100
	userAgent         = "flux-commit-tracker"
	tracerName        = "github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/github"
)

// ErrTooLarge reports a file over the caller's byte limit; it is commits.ErrTooLarge.
var ErrTooLarge = commits.ErrTooLarge

// Options configures a Provider. Token wins over App credentials; with neither, calls are anonymous.
type Options struct {
	// BaseURL is the API base URL; default https://api.github.com/, GitHub Enterprise: https://host/api/v3/.
	BaseURL string
	// Token is a personal access or fine-grained token.
	Token string
	// AppID, AppPrivateKey (PEM) and AppInstallationID authenticate as a GitHub App installation.
	AppID             int64
	AppPrivateKey     []byte
	AppInstallationID int64
	// CacheSize bounds the answers held in memory; default 4096.
	CacheSize int
	// MaxRetries bounds retries of one request; default 4, negative disables retries.
	MaxRetries int
	// RetryWaitMin and RetryWaitMax bound the exponential backoff; default 500ms and 30s.
	RetryWaitMin, RetryWaitMax time.Duration
	// OnCall, if set, is told the outcome of every HTTP call and every lookup answered from memory.
	OnCall func(ctx context.Context, outcome commits.CallOutcome)
	// TracerProvider, if set, records a client span per HTTP call.
	TracerProvider trace.TracerProvider
	// Logger, if set, gets rate limit notices and retry details (debug).
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
	cache  *lru.Cache[string, any]
	flight singleflight.Group
	onCall func(context.Context, commits.CallOutcome)
}

var _ commits.Provider = (*Provider)(nil)

// New returns a Provider for opts.
func New(opts Options) (*Provider, error) {
	base, err := parseBaseURL(opts.BaseURL)
	if err != nil {
		return nil, err
	}
	cfg := transportConfig{
		base:       opts.Transport,
		apiPrefix:  base.Path,
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
	retry := commits.RetryPolicy{MaxRetries: cfg.maxRetries, WaitMin: cfg.waitMin, WaitMax: cfg.waitMax}.
		WithDefaults(commits.RetryPolicy{MaxRetries: defaultMaxRetries, WaitMin: defaultWaitMin, WaitMax: defaultWaitMax})
	cfg.maxRetries, cfg.waitMin, cfg.waitMax = retry.MaxRetries, retry.WaitMin, retry.WaitMax
	tp := opts.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	cfg.tracer = tp.Tracer(tracerName)
	if opts.AuthMode() == "app" {
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
	rt, err := newTransport(cfg)
	if err != nil {
		return nil, err
	}
	baseURL := base.String()
	clientOpts := []gh.ClientOptionsFunc{
		gh.WithTransport(rt),
		gh.WithURLs(&baseURL, nil),
		gh.WithDisableRateLimitCheck(),
		gh.WithUserAgent(userAgent),
	}
	if opts.AuthMode() == "token" {
		clientOpts = append(clientOpts, gh.WithAuthToken(opts.Token))
	}
	client, err := gh.NewClient(clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("github: %w", err)
	}
	size := opts.CacheSize
	if size <= 0 {
		size = defaultCacheSize
	}
	cache, err := lru.New[string, any](size)
	if err != nil {
		return nil, fmt.Errorf("github: %w", err)
	}
	return &Provider{client: client, cache: cache, onCall: cfg.onCall}, nil
}

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

// Commit returns one commit by SHA.
func (p *Provider) Commit(ctx context.Context, repo commits.Repository, sha string) (commits.Commit, error) {
	key := cacheKey("commit", repo, sha)
	v, err := p.lookup(ctx, key, key, isSHA(sha), func(ctx context.Context) (any, error) {
		rc, _, err := p.client.Repositories.GetCommit(ctx, repo.Owner, repo.Name, sha, nil)
		if err != nil {
			return nil, apiError(err, "get commit %s@%s", repo, sha)
		}
		return toCommit(rc), nil
	})
	if err != nil {
		return commits.Commit{}, err
	}
	return cloneCommit(v.(commits.Commit)), nil
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
	v, err := p.lookup(ctx, key, key, isSHA(base) && isSHA(head), func(ctx context.Context) (any, error) {
		return p.fetchRange(ctx, repo, base, head)
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
	page := func(n int) (*gh.CommitsComparison, *gh.Response, error) {
		cmp, resp, err := p.client.Repositories.CompareCommits(ctx, repo.Owner, repo.Name, base, head, &gh.ListOptions{Page: n, PerPage: comparePageSize})
		if err != nil {
			return nil, nil, apiError(err, "compare %s %s...%s", repo, base, head)
		}
		return cmp, resp, nil
	}
	cmp, resp, err := page(1)
	if err != nil {
		return commits.Range{}, err
	}
	switch status := commits.RangeStatus(cmp.GetStatus()); status {
	case commits.Ahead:
	case commits.Identical, commits.Behind, commits.Diverged:
		return commits.Range{Status: status}, nil
	default:
		return commits.Range{}, fmt.Errorf("github: compare %s %s...%s: unknown status %q", repo, base, head, status)
	}
	total := cmp.GetTotalCommits()
	lastPage := max(resp.LastPage, (total+comparePageSize-1)/comparePageSize)
	return walkPages(base, head, total, lastPage, toCommits(cmp.Commits), func(n int) ([]commits.Commit, error) {
		cmp, _, err := page(n)
		if err != nil {
			return nil, err
		}
		return toCommits(cmp.Commits), nil
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
	v, err := p.lookup(ctx, key, flightKey, isSHA(sha), func(ctx context.Context) (any, error) {
		return p.fetchFile(ctx, repo, sha, path, maxBytes)
	})
	if err != nil {
		return nil, err
	}
	e := v.(fileEntry)
	switch {
	case e.missing:
		return nil, fmt.Errorf("github: %s at %s in %s: %w", path, sha, repo, commits.ErrNotFound)
	case int64(len(e.data)) > maxBytes:
		return nil, tooLarge(repo, sha, path, int64(len(e.data)), maxBytes)
	}
	return bytes.Clone(e.data), nil
}

func (p *Provider) fetchFile(ctx context.Context, repo commits.Repository, sha, path string, maxBytes int64) (fileEntry, error) {
	fc, dir, _, err := p.client.Repositories.GetContents(ctx, repo.Owner, repo.Name, path, &gh.RepositoryContentGetOptions{Ref: sha})
	if err != nil {
		var er *gh.ErrorResponse
		// A missing path at an existing commit stays missing; a missing commit may still be pushed.
		if errors.As(err, &er) && er.Response.StatusCode == http.StatusNotFound && !strings.HasPrefix(er.Message, "No commit found") {
			return fileEntry{missing: true}, nil
		}
		return fileEntry{}, apiError(err, "get %s at %s in %s", path, sha, repo)
	}
	if dir != nil || fc.GetType() != "file" {
		return fileEntry{}, fmt.Errorf("github: %s at %s in %s is not a file", path, sha, repo)
	}
	if size := int64(fc.GetSize()); size > maxBytes {
		return fileEntry{}, tooLarge(repo, sha, path, size, maxBytes)
	}
	var data []byte
	var content string
	if fc.Content != nil {
		content = *fc.Content
	}
	switch fc.GetEncoding() {
	case "base64":
		data, err = base64.StdEncoding.DecodeString(content)
	case "":
		data = []byte(content)
	case "none": // over 1 MB: the contents API serves it only raw
		data, err = p.rawFile(ctx, repo, sha, path, maxBytes)
	default:
		err = fmt.Errorf("unknown content encoding %q", fc.GetEncoding())
	}
	if err != nil {
		return fileEntry{}, fmt.Errorf("github: %s at %s in %s: %w", path, sha, repo, err)
	}
	if int64(len(data)) > maxBytes {
		return fileEntry{}, tooLarge(repo, sha, path, int64(len(data)), maxBytes)
	}
	return fileEntry{data: data}, nil
}

// rawFile fetches a file with the raw media type, reading at most maxBytes+1 bytes.
func (p *Provider) rawFile(ctx context.Context, repo commits.Repository, sha, path string, maxBytes int64) ([]byte, error) {
	u := fmt.Sprintf("repos/%s/%s/contents/%s?ref=%s", url.PathEscape(repo.Owner), url.PathEscape(repo.Name),
		(&url.URL{Path: path}).EscapedPath(), url.QueryEscape(sha))
	req, err := p.client.NewRequest(ctx, http.MethodGet, u, nil)
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
	return fmt.Errorf("github: %s at %s in %s is %d bytes, over the %d byte limit: %w", path, sha, repo, size, maxBytes, ErrTooLarge)
}

// lookup answers from the cache, else runs fetch once for all concurrent callers with the same flightKey
// and caches a successful answer under key when cacheable. Callers served by another's call count as cache hits.
func (p *Provider) lookup(ctx context.Context, key, flightKey string, cacheable bool, fetch func(context.Context) (any, error)) (any, error) {
	if cacheable {
		if v, ok := p.cache.Get(key); ok {
			p.onCall(ctx, commits.CallCacheHit)
			return v, nil
		}
	}
	for {
		leader, hit := false, false
		ch := p.flight.DoChan(flightKey, func() (any, error) {
			leader = true
			if cacheable {
				// An earlier flight may have filled the cache since the check above.
				if v, ok := p.cache.Get(key); ok {
					hit = true
					return v, nil
				}
			}
			v, err := fetch(ctx)
			if err == nil && cacheable {
				p.cache.Add(key, v)
			}
			return v, err
		})
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case res := <-ch:
			if leader && !hit {
				return res.Val, res.Err
			}
			if res.Err != nil && isContextErr(res.Err) && ctx.Err() == nil {
				continue // the leader's context ended, ours did not: ask again
			}
			if res.Err == nil {
				p.onCall(ctx, commits.CallCacheHit)
			}
			return res.Val, res.Err
		}
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// apiError wraps err with what was asked; GitHub's 404 and "No commit found" 422 become commits.ErrNotFound.
func apiError(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	var er *gh.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		code := er.Response.StatusCode
		if code == http.StatusNotFound || (code == http.StatusUnprocessableEntity && strings.HasPrefix(er.Message, "No commit found")) {
			return fmt.Errorf("github: %s: %w: %w", what, commits.ErrNotFound, err)
		}
	}
	return fmt.Errorf("github: %s: %w", what, err)
}

func cacheKey(kind string, repo commits.Repository, args ...string) string {
	return kind + "\x00" + repo.String() + "\x00" + strings.Join(args, "\x00")
}

// isSHA reports whether s is a full lower-case SHA-1 or SHA-256 object name: only those name immutable answers.
func isSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func toCommit(rc *gh.RepositoryCommit) commits.Commit {
	gc := rc.GetCommit()
	c := commits.Commit{
		SHA:           rc.GetSHA(),
		Message:       gc.GetMessage(),
		AuthorName:    gc.GetAuthor().GetName(),
		AuthorEmail:   gc.GetAuthor().GetEmail(),
		AuthorTime:    gc.GetAuthor().GetDate().Time,
		CommitterTime: gc.GetCommitter().GetDate().Time,
	}
	for _, parent := range rc.Parents {
		c.Parents = append(c.Parents, parent.GetSHA())
	}
	return c
}

func toCommits(rcs []*gh.RepositoryCommit) []commits.Commit {
	out := make([]commits.Commit, len(rcs))
	for i, rc := range rcs {
		out[i] = toCommit(rc)
	}
	return out
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
