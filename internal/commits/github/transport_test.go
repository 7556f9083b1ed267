package github

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
)

func TestOutcomeOf(t *testing.T) {
	tests := []struct {
		status int
		err    error
		want   commits.CallOutcome
	}{
		{200, nil, commits.CallSuccess},
		{304, nil, commits.CallNotModified},
		{404, nil, commits.CallSuccess},
		{401, nil, commits.CallError},
		{403, nil, commits.CallError},
		{422, nil, commits.CallError},
		{429, nil, commits.CallError},
		{500, nil, commits.CallError},
		{0, errors.New("connection reset"), commits.CallError},
	}
	for _, tt := range tests {
		var resp *http.Response
		if tt.err == nil {
			resp = &http.Response{StatusCode: tt.status}
		}
		if got := outcomeOf(resp, tt.err); got != tt.want {
			t.Errorf("outcomeOf(%d, %v) = %s, want %s", tt.status, tt.err, got, tt.want)
		}
	}
}

func TestURLTemplate(t *testing.T) {
	tests := map[string]string{
		"/repos/o/r/commits/0123abc":          "/repos/{owner}/{repo}/commits/{ref}",
		"/repos/o/r/compare/a...b":            "/repos/{owner}/{repo}/compare/{basehead}",
		"/repos/o/r/contents/deploy/app.yaml": "/repos/{owner}/{repo}/contents/{path}",
		"/repos/o/r/contents":                 "/repos/{owner}/{repo}/contents",
		"/repos/o/r":                          "/repos/{owner}/{repo}",
		"/repos/o/r/git/trees/abc":            "/repos/{owner}/{repo}/git/{…}",
		"/app/installations/42/access_tokens": "/app/installations/{installation_id}/access_tokens",
		"/rate_limit":                         "/rate_limit",
		"/users/someone":                      "/users/{…}",
	}
	for path, want := range tests {
		if got := urlTemplate(path); got != want {
			t.Errorf("urlTemplate(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestRateLimit(t *testing.T) {
	now := time.Unix(1_750_000_000, 0)
	reset := strconv.FormatInt(now.Add(3*time.Second).Unix(), 10)
	secondaryBody := []byte(`{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}`)
	tests := []struct {
		name      string
		status    int
		header    http.Header
		body      []byte
		wantUntil time.Time
		wantCause string
		limited   bool
	}{
		{"secondary 403 retry-after", 403, http.Header{"Retry-After": {"2"}}, secondaryBody, now.Add(2 * time.Second), CauseSecondary, true},
		{"429 retry-after", 429, http.Header{"Retry-After": {"5"}}, nil, now.Add(5 * time.Second), CauseRetryAfter, true},
		{"retry-after as a date", 429, http.Header{"Retry-After": {now.Add(7 * time.Second).UTC().Format(http.TimeFormat)}}, nil, now.Add(7 * time.Second), CauseRetryAfter, true},
		{"huge retry-after is capped", 429, http.Header{"Retry-After": {"999999999999"}}, nil, now.Add(maxLimitWait), CauseRetryAfter, true},
		{"primary 403 reset", 403, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {reset}}, nil, now.Add(3*time.Second + resetSlack), CausePrimary, true},
		{"primary reset in the past", 429, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"1"}}, nil, now, CausePrimary, true},
		{"primary reset far away is capped", 403, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"99999999999"}}, nil, now.Add(maxLimitWait), CausePrimary, true},
		{"secondary message without headers", 403, http.Header{}, secondaryBody, now.Add(defaultLimitWait), CauseSecondary, true},
		{"bare 429", 429, http.Header{}, nil, now.Add(defaultLimitWait), CauseSecondary, true},
		{"403 without rate limit signs", 403, http.Header{}, []byte(`{"message":"Resource not accessible by integration"}`), time.Time{}, "", false},
		{"403 with quota left", 403, http.Header{"X-Ratelimit-Remaining": {"10"}, "X-Ratelimit-Reset": {"1"}}, nil, time.Time{}, "", false},
		{"503 retry-after is not a GitHub rate limit", 503, http.Header{"Retry-After": {"1"}}, nil, time.Time{}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			until, cause, limited := rateLimit(tt.status, tt.header, tt.body, now)
			if limited != tt.limited || !until.Equal(tt.wantUntil) || cause != tt.wantCause {
				t.Errorf("got %v %q %v, want %v %q %v", until, cause, limited, tt.wantUntil, tt.wantCause, tt.limited)
			}
		})
	}
}

func TestCheckRetry(t *testing.T) {
	tests := []struct {
		name string
		resp *http.Response
		err  error
		want bool
	}{
		{"500", &http.Response{StatusCode: 500}, nil, true},
		{"501", &http.Response{StatusCode: 501}, nil, false},
		{"404", &http.Response{StatusCode: 404}, nil, false},
		{"429 is never waited out", &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {"1"}}}, nil, false},
		{"rate limit error", nil, &commits.RateLimitError{Until: time.Now().Add(time.Minute), Cause: CausePrimary}, false},
		{"network error", nil, errors.New("connection reset"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := checkRetry(context.Background(), tt.resp, tt.err); got != tt.want {
				t.Errorf("checkRetry = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOrigin(t *testing.T) {
	same := []string{"https://api.github.com/", "https://API.github.com:443/repos", "HTTPS://api.github.com/x?y"}
	other := []string{"http://api.github.com/", "https://api.github.com:8443/", "https://evil.example/", "https://api.github.com.evil.example/"}
	want := commits.URLOrigin(mustParse(t, "https://api.github.com/"))
	for _, s := range same {
		if got := commits.URLOrigin(mustParse(t, s)); got != want {
			t.Errorf("origin(%s) = %s, want %s", s, got, want)
		}
	}
	for _, s := range other {
		if got := commits.URLOrigin(mustParse(t, s)); got == want {
			t.Errorf("origin(%s) = %s, the API's", s, got)
		}
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
