package github

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/hashicorp/go-retryablehttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
)

const (
	// resetSlack is added to a primary rate limit's reset time: x-ratelimit-reset has one-second resolution.
	resetSlack = 250 * time.Millisecond
	// defaultLimitWait is how long a rate limit that names no time lasts, as GitHub documents for secondary limits.
	defaultLimitWait = time.Minute
	// maxLimitWait caps the time any rate limit answer can hold the provider back (a primary window is one hour).
	maxLimitWait = time.Hour
	// maxErrorPeek is how much of a 403 or 429 body is read to tell a secondary rate limit from a refusal.
	maxErrorPeek = 64 << 10
	// maxResponseBytes caps every response body; the read fails with ErrBadResponse past it.
	maxResponseBytes = 32 << 20
)

// Rate limit causes, as RateLimitError.Cause.
const (
	CausePrimary    = "primary"
	CauseSecondary  = "secondary"
	CauseRetryAfter = "retry-after"
)

// transportConfig is what the transport stack needs from Options.
type transportConfig struct {
	base         http.RoundTripper
	apiURL       *url.URL // the API base URL: credentials go to its scheme, host and port only
	tracer       trace.Tracer
	onCall       func(context.Context, commits.CallOutcome)
	logger       *slog.Logger
	limiter      *limiter
	maxRetries   int
	waitMin      time.Duration
	waitMax      time.Duration
	token        string                                             // sent as a bearer token, to the API host only
	authenticate func(http.RoundTripper) (http.RoundTripper, error) // App auth; nil for token and anonymous auth
}

// newTransport builds, outermost first:
//
//	retryablehttp  retries network errors and 5xx (not 501) with capped exponential backoff, ctx-aware;
//	               its client follows redirects, so every layer below sees each hop
//	authGate       credentials (bearer token or App installation token) only on requests to the API's own
//	               scheme, host and port; any other request goes without Authorization
//	limitGate      fails a request at once with *commits.RateLimitError while a remembered limit holds, and
//	               turns a rate-limited answer (429, or 403 with retry-after / x-ratelimit-remaining: 0 /
//	               GitHub's secondary limit message) into that error, remembering it; caps body sizes
//	instrumented   one span and one OnCall outcome per request on the wire
//	base
//
// Nothing in the stack sleeps for a rate limit: the caller gets the error and requeues. once is the same stack
// without retryablehttp, for writes that a retry could store twice.
func newTransport(cfg transportConfig) (retrying, once http.RoundTripper, err error) {
	var wire http.RoundTripper = &instrumented{base: cfg.base, prefix: cfg.apiURL.Path, tracer: cfg.tracer, onCall: cfg.onCall}
	wire = &limitGate{next: wire, limiter: cfg.limiter}
	authed := wire
	switch {
	case cfg.authenticate != nil:
		if authed, err = cfg.authenticate(wire); err != nil {
			return nil, nil, err
		}
	case cfg.token != "":
		authed = bearer{next: wire, token: cfg.token}
	}
	gate := authGate{origin: commits.URLOrigin(cfg.apiURL), authed: authed, plain: wire}
	client := &retryablehttp.Client{
		HTTPClient:   &http.Client{Transport: gate},
		RetryMax:     cfg.maxRetries,
		RetryWaitMin: cfg.waitMin,
		RetryWaitMax: cfg.waitMax,
		CheckRetry:   checkRetry,
		Backoff:      backoff,
		ErrorHandler: lastResponse,
		Logger:       debugLogger{cfg.logger},
	}
	return &retryablehttp.RoundTripper{Client: client}, gate, nil
}

// checkRetry retries what retryablehttp's default policy retries (network errors, 5xx other than 501),
// and never a rate limit or a rejected App credential.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	var limited *commits.RateLimitError
	if errors.As(err, &limited) {
		return false, nil
	}
	var tokenErr *ghinstallation.HTTPError
	if errors.As(err, &tokenErr) && tokenErr.Response != nil {
		tokenResp := tokenErr.Response
		if tokenResp.Body != nil {
			_ = tokenResp.Body.Close() // ghinstallation leaves it open for inspection
		}
		if code := tokenResp.StatusCode; code >= 400 && code < 500 {
			return false, err
		}
	}
	if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
		return false, nil // limitGate turns these into errors; never wait one out here
	}
	return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
}

// backoff is exponential between waitMin and waitMax; a 503's Retry-After is honoured up to waitMax.
func backoff(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && resp.StatusCode != http.StatusServiceUnavailable {
		resp = nil
	}
	return min(retryablehttp.DefaultBackoff(minWait, maxWait, attempt, resp), maxWait)
}

// lastResponse hands the last response to go-github once retries are exhausted, so callers see GitHub's
// error; a rate limit error passes through as itself.
func lastResponse(resp *http.Response, err error, attempts int) (*http.Response, error) {
	if resp != nil {
		return resp, nil
	}
	if ue, ok := err.(*url.Error); ok {
		err = ue.Err // the outer client names the request again
	}
	var limited *commits.RateLimitError
	if errors.As(err, &limited) {
		return nil, err
	}
	return nil, fmt.Errorf("giving up after %d attempt(s): %w", attempts, err)
}

// limiter remembers the latest rate limit GitHub answered, for every lookup of one provider.
type limiter struct {
	now    func() time.Time
	logger *slog.Logger

	mu    sync.Mutex
	until time.Time
	cause string
}

// check returns a *commits.RateLimitError while a remembered limit holds.
func (l *limiter) check() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.now().Before(l.until) {
		return &commits.RateLimitError{Until: l.until, Cause: l.cause}
	}
	return nil
}

// record remembers a limit until the given time (the later one wins) and returns it as an error.
func (l *limiter) record(ctx context.Context, until time.Time, cause string) error {
	l.mu.Lock()
	if until.After(l.until) {
		l.until, l.cause = until, cause
	}
	until, cause = l.until, l.cause
	l.mu.Unlock()
	l.logger.InfoContext(ctx, "GitHub rate limit reached; lookups fail until it lifts", "cause", cause, "until", until)
	return &commits.RateLimitError{Until: until, Cause: cause}
}

// limitGate applies the limiter to every request and caps response bodies.
type limitGate struct {
	next    http.RoundTripper
	limiter *limiter
}

func (g *limitGate) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := g.limiter.check(); err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	resp, err := g.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests {
		peek, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorPeek))
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(peek), resp.Body), resp.Body}
		if until, cause, limited := rateLimit(resp.StatusCode, resp.Header, peek, g.limiter.now()); limited {
			_ = resp.Body.Close()
			return nil, g.limiter.record(req.Context(), until, cause)
		}
	} else if resp.StatusCode < 300 && resp.Header.Get("X-Ratelimit-Remaining") == "0" {
		// The last request of the window: the next one would be refused.
		if until, ok := resetTime(resp.Header, g.limiter.now()); ok {
			_ = g.limiter.record(req.Context(), until, CausePrimary)
		}
	}
	resp.Body = commits.CapBody(resp.Body, maxResponseBytes)
	return resp, nil
}

// rateLimit reports whether a 403 or 429 answer is a GitHub rate limit, until when it holds and why.
// Retry-After wins; then x-ratelimit-remaining: 0 with x-ratelimit-reset; then GitHub's secondary limit
// message or any 429, which last defaultLimitWait. Every limit is capped at maxLimitWait from now.
func rateLimit(status int, h http.Header, body []byte, now time.Time) (time.Time, string, bool) {
	if status != http.StatusForbidden && status != http.StatusTooManyRequests {
		return time.Time{}, "", false
	}
	secondary := bytes.Contains(bytes.ToLower(body), []byte("secondary rate limit"))
	var until time.Time
	var cause string
	if s := strings.TrimSpace(h.Get("Retry-After")); s != "" {
		if secs, err := strconv.ParseInt(s, 10, 64); err == nil && secs >= 0 {
			until, cause = now.Add(time.Duration(min(secs, int64(maxLimitWait/time.Second)))*time.Second), CauseRetryAfter
		} else if at, err := http.ParseTime(s); err == nil {
			until, cause = at, CauseRetryAfter
		}
		if !until.IsZero() && secondary {
			cause = CauseSecondary
		}
	}
	if until.IsZero() && h.Get("X-Ratelimit-Remaining") == "0" {
		if reset, ok := resetTime(h, now); ok {
			until, cause = reset, CausePrimary
		}
	}
	if until.IsZero() && (secondary || status == http.StatusTooManyRequests) {
		until, cause = now.Add(defaultLimitWait), CauseSecondary
	}
	if until.IsZero() {
		return time.Time{}, "", false // a 403 that refuses access, not a limit
	}
	if until.Before(now) {
		until = now
	}
	if limit := now.Add(maxLimitWait); until.After(limit) {
		until = limit
	}
	return until, cause, true
}

// resetTime reads x-ratelimit-reset (Unix seconds) plus resetSlack.
func resetTime(h http.Header, now time.Time) (time.Time, bool) {
	reset, err := strconv.ParseInt(strings.TrimSpace(h.Get("X-Ratelimit-Reset")), 10, 64)
	if err != nil || reset < 0 {
		return time.Time{}, false
	}
	if reset > now.Add(maxLimitWait).Unix() {
		return now.Add(maxLimitWait), true
	}
	return time.Unix(reset, 0).Add(resetSlack), true
}

// authGate sends requests for the API's origin through authed, and every other request (a redirect to
// another host, port or scheme) through plain with any Authorization header removed.
type authGate struct {
	origin        string
	authed, plain http.RoundTripper
}

func (g authGate) RoundTrip(req *http.Request) (*http.Response, error) {
	if commits.URLOrigin(req.URL) == g.origin {
		return g.authed.RoundTrip(req)
	}
	if req.Header.Get("Authorization") != "" {
		req = req.Clone(req.Context())
		req.Header.Del("Authorization")
	}
	return g.plain.RoundTrip(req)
}

// bearer adds a token as "Authorization: Bearer".
type bearer struct {
	next  http.RoundTripper
	token string
}

func (b bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(req)
}

// instrumented records one client span and one OnCall outcome per HTTP request. Attributes carry the
// method, URL template and status, never headers or query strings.
type instrumented struct {
	base   http.RoundTripper
	prefix string
	tracer trace.Tracer
	onCall func(context.Context, commits.CallOutcome)
}

func (t *instrumented) RoundTrip(req *http.Request) (*http.Response, error) {
	tmpl := urlTemplate(strings.TrimPrefix(req.URL.Path, strings.TrimSuffix(t.prefix, "/")))
	ctx, span := t.tracer.Start(req.Context(), "github "+req.Method+" "+tmpl,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			semconv.HTTPRequestMethodKey.String(req.Method),
			semconv.URLTemplate(tmpl),
			semconv.ServerAddress(req.URL.Hostname()),
		))
	defer span.End()
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	outcome := outcomeOf(resp, err)
	switch {
	case err != nil:
		span.SetAttributes(semconv.ErrorTypeOther)
		span.SetStatus(codes.Error, "transport error")
	default:
		span.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode))
		if id := resp.Header.Get("X-Github-Request-Id"); id != "" {
			span.SetAttributes(attribute.String("github.request_id", id))
		}
		if outcome == commits.CallError {
			span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(resp.StatusCode)))
			span.SetStatus(codes.Error, resp.Status)
		}
	}
	t.onCall(ctx, outcome)
	return resp, err
}

// outcomeOf classifies one HTTP exchange; a 404 is a definitive answer (ErrNotFound), not a failure.
func outcomeOf(resp *http.Response, err error) commits.CallOutcome {
	switch {
	case err != nil:
		return commits.CallError
	case resp.StatusCode == http.StatusNotModified:
		return commits.CallNotModified
	case resp.StatusCode < 400 || resp.StatusCode == http.StatusNotFound:
		return commits.CallSuccess
	default:
		return commits.CallError
	}
}

// urlTemplate maps an API path to its documented template, keeping owners, SHAs and paths out of span names.
func urlTemplate(p string) string {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	switch {
	case len(parts) >= 5 && parts[0] == "repos":
		switch parts[3] {
		case "commits":
			return "/repos/{owner}/{repo}/commits/{ref}"
		case "compare":
			return "/repos/{owner}/{repo}/compare/{basehead}"
		case "contents":
			return "/repos/{owner}/{repo}/contents/{path}"
		}
		return "/repos/{owner}/{repo}/" + parts[3] + "/{…}"
	case len(parts) == 4 && parts[0] == "repos":
		return "/repos/{owner}/{repo}/" + parts[3]
	case len(parts) == 3 && parts[0] == "repos":
		return "/repos/{owner}/{repo}"
	case len(parts) == 4 && parts[0] == "app" && parts[1] == "installations" && parts[3] == "access_tokens":
		return "/app/installations/{installation_id}/access_tokens"
	case len(parts) == 1:
		return "/" + parts[0]
	}
	return "/" + parts[0] + "/{…}"
}

// debugLogger routes retryablehttp's logs to slog at debug level.
type debugLogger struct{ l *slog.Logger }

func (d debugLogger) Error(msg string, kv ...any) { d.l.Debug(msg, kv...) }
func (d debugLogger) Info(msg string, kv ...any)  { d.l.Debug(msg, kv...) }
func (d debugLogger) Debug(msg string, kv ...any) { d.l.Debug(msg, kv...) }
func (d debugLogger) Warn(msg string, kv ...any)  { d.l.Debug(msg, kv...) }
