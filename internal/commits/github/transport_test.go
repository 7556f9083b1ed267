package github

import (
	"context"
	"errors"
	"net/http"
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

func TestRateLimitWait(t *testing.T) {
	reset := time.Now().Add(3 * time.Second)
	tests := []struct {
		name    string
		status  int
		header  http.Header
		wantMin time.Duration
		wantMax time.Duration
		limited bool
	}{
		{"secondary 403 retry-after", 403, http.Header{"Retry-After": {"2"}}, 2 * time.Second, 2 * time.Second, true},
		{"429 retry-after", 429, http.Header{"Retry-After": {"5"}}, 5 * time.Second, 5 * time.Second, true},
		{"primary 403 reset", 403, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {strconv.FormatInt(reset.Unix(), 10)}}, 2 * time.Second, 3*time.Second + resetSlack, true},
		{"primary reset in the past", 429, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"1"}}, resetSlack, resetSlack, true},
		{"403 without rate limit headers", 403, http.Header{}, 0, 0, false},
		{"403 with quota left", 403, http.Header{"X-Ratelimit-Remaining": {"10"}, "X-Ratelimit-Reset": {"1"}}, 0, 0, false},
		{"503 retry-after is not a GitHub rate limit", 503, http.Header{"Retry-After": {"1"}}, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wait, limited := rateLimitWait(&http.Response{StatusCode: tt.status, Header: tt.header})
			if limited != tt.limited || wait < tt.wantMin || wait > tt.wantMax {
				t.Errorf("got %v %v, want %v in [%v, %v]", wait, limited, tt.limited, tt.wantMin, tt.wantMax)
			}
			retry, _ := checkRetry(context.Background(), &http.Response{StatusCode: tt.status, Header: tt.header}, nil)
			if retry != (tt.limited || tt.status >= 500) {
				t.Errorf("checkRetry = %v", retry)
			}
		})
	}
}
