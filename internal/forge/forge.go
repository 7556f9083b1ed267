// Package forge posts commit statuses to GitHub, GitLab and Gitea, and GitHub Deployments.
//
// Every call has a deadline (Options.Timeout). Rate limits never sleep: the call fails with a
// *commits.RateLimitError and the client refuses further calls, without sending them, until it lifts.
// Answers retrying cannot fix (400, 401, 403, 404, 422) wrap outbox.ErrRefused; undecodable answers wrap
// commits.ErrBadResponse; 408, 5xx and network errors are plain errors. Writes of one client are serial
// and spaced by Options.WriteInterval. Tokens go only to the API base URL's scheme, host and port.
package forge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-cleanhttp"
	"k8s.io/utils/clock"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/outbox"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/redact"
)

// State is the state of a commit status.
type State string

// States of a commit status.
const (
	StatePending State = "pending"
	StateSuccess State = "success"
	StateFailure State = "failure"
)

// Status is one commit status as the tracker means it; each forge maps State to its own words.
type Status struct {
	State State
	// Context is GitHub's and Gitea's "context", GitLab's "name".
	Context string
	// Description is cut to MaxDescription runes by Post if longer.
	Description string
	// TargetURL is optional.
	TargetURL string
}

// MaxDescription is the longest description, in runes, a status or deployment status carries.
const MaxDescription = 140

// Statuses posts and reads the commit statuses of one forge.
type Statuses interface {
	// Latest returns the newest status of sha under statusContext (found false when there is none).
	Latest(ctx context.Context, repo commits.Repository, sha, statusContext string) (s Status, found bool, err error)
	// Post creates a status on sha.
	Post(ctx context.Context, repo commits.Repository, sha string, s Status) error
}

// Kinds of forge, also the values of the flux-commit-tracker.io/forge annotation.
const (
	KindGitHub = "github"
	KindGitLab = "gitlab"
	KindGitea  = "gitea"
)

// Registry picks the forge of a repository.
type Registry struct {
	GitHub      Statuses
	GitHubHosts []string // github.com and the --github-api-url host
	GitLab      Statuses
	GitLabHosts []string // gitlab.com and the --gitlab-api-url host
	Gitea       Statuses
	GiteaHosts  []string // the --gitea-api-url host
}

// For returns the forge for repo: the annotation's kind when not empty (error for an unknown kind or one not
// configured), else by repo.Host (case-insensitive; host may carry a port). found=false, nil error when no
// forge serves the host.
func (r Registry) For(repo commits.Repository, annotation string) (s Statuses, kind string, found bool, err error) {
	forges := []struct {
		kind  string
		s     Statuses
		hosts []string
	}{{KindGitHub, r.GitHub, r.GitHubHosts}, {KindGitLab, r.GitLab, r.GitLabHosts}, {KindGitea, r.Gitea, r.GiteaHosts}}
	if a := strings.ToLower(strings.TrimSpace(annotation)); a != "" {
		for _, f := range forges {
			if f.kind != a {
				continue
			}
			if f.s == nil {
				return nil, "", false, fmt.Errorf("forge: annotation names forge %q, which is not configured", a)
			}
			return f.s, f.kind, true, addressable(f.kind, repo)
		}
		return nil, "", false, fmt.Errorf("forge: unknown forge %q in annotation; want %s, %s or %s", a, KindGitHub, KindGitLab, KindGitea)
	}
	host := hostOnly(repo.Host)
	if host == "" {
		return nil, "", false, nil
	}
	for _, f := range forges {
		if f.s == nil {
			continue
		}
		for _, h := range f.hosts {
			if hostOnly(h) == host || strings.EqualFold(strings.TrimSpace(h), strings.TrimSpace(repo.Host)) {
				return f.s, f.kind, true, addressable(f.kind, repo)
			}
		}
	}
	return nil, "", false, nil
}

// addressable refuses a repository GitHub or Gitea cannot name: one without an owner (a URL path of one segment).
func addressable(kind string, repo commits.Repository) error {
	if (kind == KindGitHub || kind == KindGitea) && (repo.Owner == "" || repo.Name == "") {
		return fmt.Errorf("forge: %s names repositories owner/name; %s has no owner: no commit status", kind, redact.URL(repo.String()))
	}
	return nil
}

// hostOnly lower-cases a host and drops its port, if any.
func hostOnly(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	if host, _, err := net.SplitHostPort(h); err == nil {
		return strings.Trim(host, "[]")
	}
	return strings.Trim(h, "[]")
}

// Options configures every forge client.
type Options struct {
	// Timeout bounds every call (default 30s).
	Timeout time.Duration
	// WriteInterval spaces the content-creating calls of one client, which are serial (default 1s).
	WriteInterval time.Duration
	// Clock is the clock of write spacing and rate limits; default real.
	Clock clock.Clock
}

// HTTPOptions configures the GitLab and Gitea clients.
type HTTPOptions struct {
	Options
	// BaseURL is the API base URL. GitLab: https://gitlab.com/api/v4 (default); Gitea: required, e.g.
	// https://gitea.example/api/v1.
	BaseURL string
	// Token is sent as GitLab's PRIVATE-TOKEN header or Gitea's "Authorization: token", only to BaseURL's
	// scheme, host and port.
	Token string
	// Transport is the base round tripper; default a pooled transport.
	Transport http.RoundTripper
}

const (
	// DefaultTimeout bounds one call.
	DefaultTimeout = 30 * time.Second
	// DefaultWriteInterval spaces writes, as GitHub asks per token.
	DefaultWriteInterval = time.Second
	// maxBody caps every answer read.
	maxBody = 1 << 20
	// defaultLimitWait is how long a rate limit that names no time lasts.
	defaultLimitWait = time.Minute
	// maxLimitWait caps how long any answer can hold a client back.
	maxLimitWait = time.Hour
	// maxPages bounds a walk over pages, against answers that never end.
	maxPages = 50
)

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.WriteInterval <= 0 {
		o.WriteInterval = DefaultWriteInterval
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return o
}

// gate holds one client's rate limit and serializes and spaces its writes.
type gate struct {
	clock    clock.Clock
	interval time.Duration
	writing  chan struct{} // a one-slot semaphore, so waiting for it honours ctx

	mu        sync.Mutex
	until     time.Time
	cause     string
	lastWrite time.Time
}

func newGate(o Options) *gate {
	return &gate{clock: o.Clock, interval: o.WriteInterval, writing: make(chan struct{}, 1)}
}

// check returns a *commits.RateLimitError while a remembered limit holds.
func (g *gate) check() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.clock.Now().Before(g.until) {
		return &commits.RateLimitError{Until: g.until, Cause: g.cause}
	}
	return nil
}

// limit remembers a rate limit (the later one wins) and returns it as an error.
func (g *gate) limit(until time.Time, cause string) *commits.RateLimitError {
	g.mu.Lock()
	defer g.mu.Unlock()
	if until.After(g.until) {
		g.until, g.cause = until, cause
	}
	return &commits.RateLimitError{Until: g.until, Cause: g.cause}
}

// write runs fn alone among this client's writes, at least interval after the previous write started.
func (g *gate) write(ctx context.Context, what string, fn func() error) error {
	if err := g.check(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	select {
	case g.writing <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("%s: waiting to write: %w", what, ctx.Err())
	}
	defer func() { <-g.writing }()
	g.mu.Lock()
	wait := time.Duration(0)
	if !g.lastWrite.IsZero() {
		wait = g.lastWrite.Add(g.interval).Sub(g.clock.Now())
	}
	g.mu.Unlock()
	if wait > 0 {
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return fmt.Errorf("%s: waiting %s to write: %w", what, wait, context.DeadlineExceeded)
		}
		t := g.clock.NewTimer(wait)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: waiting to write: %w", what, ctx.Err())
		}
	}
	if err := g.check(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	g.mu.Lock()
	g.lastWrite = g.clock.Now()
	g.mu.Unlock()
	return fn()
}

// cut shortens s to at most n runes, keeping whole UTF-8 sequences.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for range n {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i]
}

func validState(s State) bool {
	return s == StatePending || s == StateSuccess || s == StateFailure
}

// refused reports whether an HTTP status is an answer retrying cannot change.
func refused(code int) bool {
	switch code {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
		http.StatusMethodNotAllowed, http.StatusGone, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// rateLimitUntil reads when a rate-limited answer lifts: Retry-After (seconds or a date), then
// RateLimit-Reset / X-RateLimit-Reset (a Unix time, or seconds from now when small), else defaultLimitWait;
// capped at maxLimitWait.
func rateLimitUntil(h http.Header, now time.Time) (time.Time, string) {
	until, cause := time.Time{}, "retry-after"
	if s := strings.TrimSpace(h.Get("Retry-After")); s != "" {
		if secs, err := strconv.ParseInt(s, 10, 64); err == nil && secs >= 0 {
			until = now.Add(time.Duration(min(secs, int64(maxLimitWait/time.Second))) * time.Second)
		} else if at, err := http.ParseTime(s); err == nil {
			until = at
		}
	}
	for _, k := range []string{"RateLimit-Reset", "X-RateLimit-Reset"} {
		if !until.IsZero() {
			break
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(h.Get(k)), 10, 64); err == nil && n >= 0 {
			cause = "reset"
			if n > 1e9 {
				until = time.Unix(n, 0)
			} else {
				until = now.Add(time.Duration(min(n, int64(maxLimitWait/time.Second))) * time.Second)
			}
		}
	}
	if until.IsZero() {
		until, cause = now.Add(defaultLimitWait), "default"
	}
	if until.Before(now) {
		until = now
	}
	return capUntil(until, now), cause
}

// capUntil caps a rate limit's end at maxLimitWait from now.
func capUntil(until, now time.Time) time.Time {
	if limit := now.Add(maxLimitWait); until.After(limit) {
		return limit
	}
	return until
}

// httpClient is what the GitLab and Gitea clients share: auth, limits, capped reads and error mapping.
type httpClient struct {
	name    string // for messages: "gitlab", "gitea"
	base    *url.URL
	client  *http.Client
	gate    *gate
	timeout time.Duration
}

func newHTTPClient(name string, opts HTTPOptions, header, value string) (*httpClient, error) {
	u, err := url.Parse(strings.TrimRight(opts.BaseURL, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("%s: API base URL %q must be an absolute http(s) URL without credentials", name, redact.URL(opts.BaseURL))
	}
	u.RawQuery, u.Fragment = "", ""
	rt := opts.Transport
	if rt == nil {
		rt = cleanhttp.DefaultPooledTransport()
	}
	if opts.Token != "" {
		redact.Secret(opts.Token)
		rt = tokenGate{origin: commits.URLOrigin(u), next: rt, header: header, value: value}
	}
	o := opts.withDefaults()
	return &httpClient{name: name, base: u, client: &http.Client{Transport: rt}, gate: newGate(o), timeout: o.Timeout}, nil
}

// tokenGate adds the token to requests for the API's own origin only, so a redirect elsewhere carries none.
type tokenGate struct {
	origin        string
	next          http.RoundTripper
	header, value string
}

func (t tokenGate) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	if commits.URLOrigin(req.URL) == t.origin {
		req.Header.Set(t.header, t.value)
	} else {
		req.Header.Del(t.header)
	}
	return t.next.RoundTrip(req)
}

// answer is one decoded-enough HTTP answer.
type answer struct {
	body   []byte
	header http.Header
}

// do sends method to the path (already escaped) and query under the base URL, with body as JSON, and
// returns a 2xx answer's body, or an error mapped as the package doc says. what names the call in errors.
func (c *httpClient) do(ctx context.Context, what, method, path string, query url.Values, body any) (answer, error) {
	if err := c.gate.check(); err != nil {
		return answer{}, fmt.Errorf("%s: %s: %w", c.name, what, err)
	}
	u := *c.base
	u.RawPath = c.base.EscapedPath() + path
	if p, err := url.PathUnescape(u.RawPath); err == nil {
		u.Path = p
	}
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{}, fmt.Errorf("%s: %s: encoding the request: %w", c.name, what, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return answer{}, fmt.Errorf("%s: %s: %w", c.name, what, redact.Error(err))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "flux-commit-tracker")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("%s: %s: %w", c.name, what, redact.Error(err))
	}
	defer func() { _ = resp.Body.Close() }()
	raw, readErr := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if resp.StatusCode == http.StatusTooManyRequests || (resp.StatusCode == http.StatusForbidden && limitedHeaders(resp.Header)) {
		until, cause := rateLimitUntil(resp.Header, c.gate.clock.Now())
		return answer{}, fmt.Errorf("%s: %s: %w", c.name, what, c.gate.limit(until, cause))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := fmt.Sprintf("%s: %s: HTTP %d%s", c.name, what, resp.StatusCode, errorMessage(raw))
		if refused(resp.StatusCode) {
			return answer{}, redact.Error(fmt.Errorf("%s: %w", msg, outbox.ErrRefused))
		}
		return answer{}, redact.Error(errors.New(msg))
	}
	switch {
	case readErr != nil:
		return answer{}, fmt.Errorf("%s: %s: reading the answer: %w: %w", c.name, what, commits.ErrBadResponse, redact.Error(readErr))
	case len(raw) > maxBody:
		return answer{}, fmt.Errorf("%s: %s: answer over %d bytes: %w", c.name, what, maxBody, commits.ErrBadResponse)
	}
	return answer{body: raw, header: resp.Header}, nil
}

// limitedHeaders reports whether a 403 carries rate limit headers saying the limit is spent.
func limitedHeaders(h http.Header) bool {
	return h.Get("Retry-After") != "" || h.Get("RateLimit-Remaining") == "0" || h.Get("X-RateLimit-Remaining") == "0"
}

// errorMessage extracts the "message" or "error" of an error body, shortened, for an error text.
func errorMessage(raw []byte) string {
	var v struct {
		Message any    `json:"message"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	msg := v.Error
	if v.Message != nil {
		if s, ok := v.Message.(string); ok {
			msg = s
		} else if b, err := json.Marshal(v.Message); err == nil {
			msg = string(b)
		}
	}
	if msg == "" {
		return ""
	}
	return ": " + cut(msg, 200)
}

// badResponse wraps a decode failure.
func badResponse(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), commits.ErrBadResponse)
}
