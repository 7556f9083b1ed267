package github

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/gofri/go-github-ratelimit/v2/github_ratelimit"
	"github.com/gofri/go-github-ratelimit/v2/github_ratelimit/github_primary_ratelimit"
	"github.com/gofri/go-github-ratelimit/v2/github_ratelimit/github_secondary_ratelimit"
	"github.com/hashicorp/go-retryablehttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
)

// resetSlack is added to a primary rate limit's reset time: x-ratelimit-reset has one-second
// resolution and the limiter reopens on a timer at that instant.
const resetSlack = 250 * time.Millisecond

// transportConfig is what the transport stack needs from Options.
type transportConfig struct {
	base         http.RoundTripper
	apiPrefix    string // path of the API base URL, e.g. "/" or "/api/v3/"
	tracer       trace.Tracer
	onCall       func(context.Context, commits.CallOutcome)
	logger       *slog.Logger
	maxRetries   int
	waitMin      time.Duration
	waitMax      time.Duration
	authenticate func(http.RoundTripper) (http.RoundTripper, error) // nil for token and anonymous auth
}

// newTransport builds, outermost first:
//
//	retryablehttp   retries network errors, 5xx, 429 and rate limits, waiting per Retry-After / x-ratelimit-reset (ctx-aware)
//	ghinstallation  App auth (optional): a fresh installation token on every attempt
//	limitResponse   turns the primary limiter's local rejection back into a 403 so retryablehttp waits for the reset
//	go-github-ratelimit secondary (waits out retry-after, blocking all requests, then resends) over primary
//	                (after x-ratelimit-remaining: 0 rejects every request locally until x-ratelimit-reset)
//	instrumented    one span and one OnCall outcome per request on the wire
//	base
//
// The limiters gate every request globally so none leaves before a limit lifts, and retryablehttp makes
// the limited lookup wait (ctx-aware) and retry, because the primary limiter rejects rather than waits.
// go-github's own rate-limit tracking is disabled so these layers are the single authority.
func newTransport(cfg transportConfig) (http.RoundTripper, error) {
	var rt http.RoundTripper = &instrumented{base: cfg.base, prefix: cfg.apiPrefix, tracer: cfg.tracer, onCall: cfg.onCall}
	rt = github_ratelimit.New(rt,
		github_primary_ratelimit.WithLimitDetectedCallback(func(c *github_primary_ratelimit.CallbackContext) {
			cfg.logger.Info("GitHub primary rate limit reached", "category", c.Category, "reset", c.ResetTime)
		}),
		github_secondary_ratelimit.WithLimitDetectedCallback(func(c *github_secondary_ratelimit.CallbackContext) {
			cfg.logger.Info("GitHub secondary rate limit reached", "reset", c.ResetTime)
		}),
	)
	rt = limitResponse{next: rt}
	if cfg.authenticate != nil {
		var err error
		if rt, err = cfg.authenticate(rt); err != nil {
			return nil, err
		}
	}
	client := &retryablehttp.Client{
		HTTPClient:   &http.Client{Transport: rt},
		RetryMax:     cfg.maxRetries,
		RetryWaitMin: cfg.waitMin,
		RetryWaitMax: cfg.waitMax,
		CheckRetry:   checkRetry,
		Backoff:      backoff,
		ErrorHandler: lastResponse,
		Logger:       debugLogger{cfg.logger},
	}
	return &retryablehttp.RoundTripper{Client: client}, nil
}

// checkRetry retries what retryablehttp's default policy retries (network errors, 429, 5xx other than
// 501) plus rate-limited 403s, and never a rejected App credential.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	var tokenErr *ghinstallation.HTTPError
	if errors.As(err, &tokenErr) && tokenErr.Response != nil {
		tokenResp := tokenErr.Response
		if tokenResp.Body != nil {
			_ = tokenResp.Body.Close() // ghinstallation leaves it open for inspection
		}
		code := tokenResp.StatusCode
		if _, limited := rateLimitWait(tokenResp); !limited && code >= 400 && code < 500 && code != http.StatusTooManyRequests {
			return false, err
		}
	}
	if _, limited := rateLimitWait(resp); limited {
		return true, nil
	}
	return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
}

// backoff waits as long as a rate limit says, else exponentially (DefaultBackoff also honours
// Retry-After on 429 and 503).
func backoff(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
	if wait, limited := rateLimitWait(resp); limited {
		return wait
	}
	return retryablehttp.DefaultBackoff(minWait, maxWait, attempt, resp)
}

// rateLimitWait reports whether resp is a GitHub rate limit (403 or 429 with retry-after, or with
// x-ratelimit-remaining: 0) and how long to wait before the next request may leave.
func rateLimitWait(resp *http.Response) (time.Duration, bool) {
	if resp == nil || (resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests) {
		return 0, false
	}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if secs, err := strconv.ParseInt(s, 10, 64); err == nil && secs >= 0 {
			return time.Duration(secs) * time.Second, true
		}
		if at, err := http.ParseTime(s); err == nil {
			return max(time.Until(at), 0), true
		}
	}
	if resp.Header.Get("X-Ratelimit-Remaining") == "0" {
		if reset, err := strconv.ParseInt(resp.Header.Get("X-Ratelimit-Reset"), 10, 64); err == nil {
			return max(time.Until(time.Unix(reset, 0)), 0) + resetSlack, true
		}
	}
	return 0, false
}

// lastResponse hands the last response to go-github once retries are exhausted, so callers see
// GitHub's error (e.g. *github.RateLimitError) rather than a bare "giving up".
func lastResponse(resp *http.Response, err error, attempts int) (*http.Response, error) {
	if resp != nil {
		return resp, nil
	}
	if ue, ok := err.(*url.Error); ok {
		err = ue.Err // the outer client names the request again
	}
	return nil, fmt.Errorf("giving up after %d attempt(s): %w", attempts, err)
}

// limitResponse turns the primary limiter's *RateLimitReachedError (which it returns instead of a
// response, also for requests it prevents locally) into a 403 with x-ratelimit-remaining: 0 and
// x-ratelimit-reset, the response GitHub itself would give.
type limitResponse struct{ next http.RoundTripper }

func (l limitResponse) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(req)
	var limited *github_primary_ratelimit.RateLimitReachedError
	if err == nil || !errors.As(err, &limited) || limited.ResetTime == nil {
		return resp, err
	}
	if r := limited.Response; r != nil && r.Header.Get("X-Ratelimit-Reset") != "" {
		return r, nil // GitHub's own answer
	}
	if r := limited.Response; r != nil && r.Body != nil {
		_ = r.Body.Close()
	}
	header := http.Header{}
	header.Set("Content-Type", "application/json; charset=utf-8")
	header.Set("X-Ratelimit-Remaining", "0")
	header.Set("X-Ratelimit-Reset", strconv.FormatInt(limited.ResetTime.Unix(), 10))
	header.Set("X-Ratelimit-Resource", string(limited.Category))
	body := `{"message":"API rate limit exceeded (held back locally until x-ratelimit-reset)"}`
	return &http.Response{
		Status:        "403 Forbidden",
		StatusCode:    http.StatusForbidden,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}, nil
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
