package forge_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/forge"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/outbox"
)

const (
	sha1 = "0123456789abcdef0123456789abcdef01234567"
	sha2 = "89abcdef0123456789abcdef0123456789abcdef"
)

type stub struct{ name string }

func (stub) Latest(context.Context, commits.Repository, string, string) (forge.Status, bool, error) {
	return forge.Status{}, false, nil
}
func (stub) Post(context.Context, commits.Repository, string, forge.Status) error { return nil }

func TestRegistryFor(t *testing.T) {
	gh, gl, gt := &stub{"github"}, &stub{"gitlab"}, &stub{"gitea"}
	reg := forge.Registry{
		GitHub: gh, GitHubHosts: []string{"github.com", "ghe.example:8443"},
		GitLab: gl, GitLabHosts: []string{"gitlab.com", "GitLab.Example"},
		Gitea: gt, GiteaHosts: []string{"gitea.example"},
	}
	tests := []struct {
		name, host, annotation string
		want                   forge.Statuses
		kind                   string
		found, err             bool
	}{
		{"github by host", "github.com", "", gh, forge.KindGitHub, true, false},
		{"host case-insensitive", "GITLAB.example", "", gl, forge.KindGitLab, true, false},
		{"host with port", "gitea.example:3000", "", gt, forge.KindGitea, true, false},
		{"configured host with port", "ghe.example", "", gh, forge.KindGitHub, true, false},
		{"annotation wins over host", "github.com", "gitea", gt, forge.KindGitea, true, false},
		{"annotation case-insensitive", "code.example", " GitLab ", gl, forge.KindGitLab, true, false},
		{"unknown annotation", "github.com", "bitbucket", nil, "", false, true},
		{"no forge for host", "code.example", "", nil, "", false, false},
		{"empty host", "", "", nil, "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, kind, found, err := reg.For(commits.Repository{Host: tt.host, Owner: "o", Name: "r"}, tt.annotation)
			if (err != nil) != tt.err || found != tt.found || kind != tt.kind || s != tt.want {
				t.Fatalf("For(%q, %q) = %v, %q, %v, %v; want %v, %q, %v, error %v", tt.host, tt.annotation, s, kind, found, err, tt.want, tt.kind, tt.found, tt.err)
			}
		})
	}
	t.Run("a repository without an owner has no GitHub or Gitea status", func(t *testing.T) {
		ownerless := commits.Repository{Host: "code.example", Name: "r", URL: "http://code.example/r.git"}
		for _, a := range []string{"github", "gitea"} {
			if _, _, _, err := reg.For(ownerless, a); err == nil || !strings.Contains(err.Error(), "has no owner") {
				t.Errorf("For(owner-less, %s) error %v, want one naming the missing owner", a, err)
			}
		}
		if _, _, found, err := reg.For(ownerless, "gitlab"); err != nil || !found {
			t.Errorf("For(owner-less, gitlab) = found %v, %v; want GitLab, addressed by its URL", found, err)
		}
	})
	t.Run("annotation names an unconfigured forge", func(t *testing.T) {
		_, _, found, err := forge.Registry{GitHub: gh, GitHubHosts: []string{"github.com"}}.For(commits.Repository{Host: "github.com"}, "gitea")
		if err == nil || found || !strings.Contains(err.Error(), "not configured") {
			t.Fatalf("For = found %v, error %v; want a not configured error", found, err)
		}
	})
}

// forgeCase runs the checks every forge shares against a fake of it.
type forgeCase struct {
	// newClient returns a client of the fake behind handler, with clock and write interval.
	newClient func(t *testing.T, baseURL string, opts forge.Options) forge.Statuses
	prefix    string
	handler   http.Handler
	// requests counts the requests the fake answered.
	requests    func() int
	failNext    func(n, status int)
	rateLimit   func(d time.Duration)
	respondNext func(status int, body string)
	repo        commits.Repository
	// limitLifts says the fake lets requests through once the client's clock passes the limit.
	limitLifts bool
}

func startServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

// waitForWaiter blocks until something waits on the fake clock.
func waitForWaiter(t *testing.T, fc *clocktesting.FakeClock, done <-chan error) {
	t.Helper()
	for !fc.HasWaiters() {
		select {
		case err := <-done:
			t.Fatalf("the call returned (%v) before waiting for the write interval", err)
		default:
			time.Sleep(time.Millisecond)
		}
	}
}

func runSharedChecks(t *testing.T, fc forgeCase) {
	ctx := context.Background()
	quick := forge.Options{WriteInterval: time.Nanosecond}

	t.Run("description cut to 140 runes", func(t *testing.T) {
		ts := startServer(t, fc.handler)
		c := fc.newClient(t, ts.URL+fc.prefix, quick)
		long := strings.Repeat("é", 200)
		if err := c.Post(ctx, fc.repo, sha2, forge.Status{State: forge.StateSuccess, Context: "cut", Description: long}); err != nil {
			t.Fatal(err)
		}
		got, found, err := c.Latest(ctx, fc.repo, sha2, "cut")
		if err != nil || !found {
			t.Fatalf("Latest = %v, %v", found, err)
		}
		if n := utf8.RuneCountInString(got.Description); n != forge.MaxDescription || !utf8.ValidString(got.Description) || got.Description != strings.Repeat("é", 140) {
			t.Fatalf("description is %d runes (valid UTF-8: %v), want 140 é", n, utf8.ValidString(got.Description))
		}
	})

	t.Run("refusals wrap ErrRefused, 500 is plain", func(t *testing.T) {
		ts := startServer(t, fc.handler)
		c := fc.newClient(t, ts.URL+fc.prefix, quick)
		for _, code := range []int{400, 401, 403, 404, 422, 500, 502, 408} {
			fc.failNext(1, code)
			err := c.Post(ctx, fc.repo, sha1, forge.Status{State: forge.StatePending, Context: "x"})
			wantRefused := code < 500 && code != 408
			if err == nil || errors.Is(err, outbox.ErrRefused) != wantRefused {
				t.Errorf("HTTP %d: error %v; want refused %v", code, err, wantRefused)
			}
			var rl *commits.RateLimitError
			if errors.As(err, &rl) {
				t.Errorf("HTTP %d: a rate limit error: %v", code, err)
			}
		}
	})

	t.Run("undecodable answers wrap ErrBadResponse", func(t *testing.T) {
		ts := startServer(t, fc.handler)
		c := fc.newClient(t, ts.URL+fc.prefix, quick)
		for _, body := range []string{"null", "", `"x"`, `{"statuses":[{"context":5}]`, `[{"id":"one"}]`, `{"id":"x","state":7}`, `{"state":"success","statuses":[{"id":1,"context":"c"`} {
			fc.respondNext(200, body)
			_, _, err := c.Latest(ctx, fc.repo, sha1, "c")
			if !errors.Is(err, commits.ErrBadResponse) {
				t.Errorf("Latest with body %q: error %v, want ErrBadResponse", body, err)
			}
			fc.respondNext(201, body)
			err = c.Post(ctx, fc.repo, sha1, forge.Status{State: forge.StateSuccess, Context: "c"})
			if !errors.Is(err, commits.ErrBadResponse) {
				t.Errorf("Post with body %q: error %v, want ErrBadResponse", body, err)
			}
		}
	})

	t.Run("rate limit refuses the next call without sending", func(t *testing.T) {
		ts := startServer(t, fc.handler)
		clk := clocktesting.NewFakeClock(time.Now())
		c := fc.newClient(t, ts.URL+fc.prefix, forge.Options{WriteInterval: time.Nanosecond, Clock: clk})
		fc.rateLimit(30 * time.Second)
		err := c.Post(ctx, fc.repo, sha1, forge.Status{State: forge.StateSuccess, Context: "rl"})
		var rl *commits.RateLimitError
		if !errors.As(err, &rl) {
			t.Fatalf("error %v, want *commits.RateLimitError", err)
		}
		if until := rl.Until.Sub(clk.Now()); until < 29*time.Second || until > 31*time.Second {
			t.Fatalf("rate limited for %s, want 30s", until)
		}
		before := fc.requests()
		_, _, err = c.Latest(ctx, fc.repo, sha1, "rl")
		if !errors.As(err, &rl) {
			t.Fatalf("next call: error %v, want *commits.RateLimitError", err)
		}
		if err := c.Post(ctx, fc.repo, sha1, forge.Status{State: forge.StateSuccess, Context: "rl"}); !errors.As(err, &rl) {
			t.Fatalf("next post: error %v, want *commits.RateLimitError", err)
		}
		if after := fc.requests(); after != before {
			t.Fatalf("%d requests reached the server while rate limited", after-before)
		}
		if !fc.limitLifts {
			return
		}
		clk.Step(31 * time.Second)
		if err := c.Post(ctx, fc.repo, sha1, forge.Status{State: forge.StateSuccess, Context: "rl"}); err != nil {
			t.Fatalf("after the limit lifted: %v", err)
		}
	})

	t.Run("writes are spaced by WriteInterval", func(t *testing.T) {
		clk := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
		var mu sync.Mutex
		var arrived []time.Time
		ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			arrived = append(arrived, clk.Now())
			mu.Unlock()
			fc.handler.ServeHTTP(w, r)
		}))
		c := fc.newClient(t, ts.URL+fc.prefix, forge.Options{WriteInterval: 10 * time.Second, Clock: clk})
		st := forge.Status{State: forge.StatePending, Context: "spaced"}
		if err := c.Post(ctx, fc.repo, sha1, st); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- c.Post(ctx, fc.repo, sha1, st) }()
		waitForWaiter(t, clk, done)
		clk.Step(4 * time.Second)
		select {
		case err := <-done:
			t.Fatalf("second post returned (%v) before the interval passed", err)
		default:
		}
		for clk.HasWaiters() {
			clk.Step(6 * time.Second)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(arrived) != 2 || arrived[1].Sub(arrived[0]) != 10*time.Second {
			t.Fatalf("posts arrived at %v, want two 10s apart", arrived)
		}
	})

	t.Run("canceled while waiting to write", func(t *testing.T) {
		clk := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
		ts := startServer(t, fc.handler)
		c := fc.newClient(t, ts.URL+fc.prefix, forge.Options{WriteInterval: 20 * time.Second, Clock: clk})
		st := forge.Status{State: forge.StatePending, Context: "cancel"}
		if err := c.Post(ctx, fc.repo, sha1, st); err != nil {
			t.Fatal(err)
		}
		before := fc.requests()
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c.Post(cctx, fc.repo, sha1, st) }()
		waitForWaiter(t, clk, done)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		// A deadline shorter than the wait fails at once.
		dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
		defer dcancel()
		if err := c.Post(dctx, fc.repo, sha1, st); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error %v, want context.DeadlineExceeded", err)
		}
		if after := fc.requests(); after != before {
			t.Fatalf("%d posts were sent", after-before)
		}
	})
}
