package forge_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"strings"
	"sync"
	"testing"
	"time"

	gh "github.com/google/go-github/v88/github"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/github"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/github/githubtest"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/forge"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/outbox"
)

const githubToken = "ghp_forgetesttoken123456"

var githubRepo = commits.Repository{Host: "github.com", Owner: "org", Name: "app"}

// newGitHub returns a forge on the fake through the commit provider's client, without retries.
func newGitHub(t *testing.T, srv *githubtest.Server) *forge.GitHub {
	t.Helper()
	p, err := github.New(github.Options{BaseURL: srv.URL, Token: githubToken, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return forge.NewGitHub(p.Client(), p.WriteClient(), forge.Options{WriteInterval: time.Nanosecond})
}

func TestGitHubStatusesRoundTrip(t *testing.T) {
	ctx := context.Background()
	srv := githubtest.NewServer()
	defer srv.Close()
	srv.RequireToken(githubToken)
	c := newGitHub(t, srv)
	// The target context is posted first, so the combined status (newest first) holds it on page 2.
	if err := c.Post(ctx, githubRepo, sha1, forge.Status{State: forge.StatePending, Context: "flux/apps", Description: "old"}); err != nil {
		t.Fatal(err)
	}
	want := forge.Status{State: forge.StateFailure, Context: "flux/apps", Description: strings.Repeat("ü", 150), TargetURL: "https://flux.example"}
	if err := c.Post(ctx, githubRepo, sha1, want); err != nil {
		t.Fatal(err)
	}
	for i := range 105 {
		if err := c.Post(ctx, githubRepo, sha1, forge.Status{State: forge.StateSuccess, Context: fmt.Sprintf("other-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	held := srv.CommitStatuses("org", "app", sha1)
	if len(held) != 107 || held[1].Description != strings.Repeat("ü", 140) || held[1].State != "failure" || held[1].TargetURL != want.TargetURL {
		t.Fatalf("server holds %d statuses, the second %+v", len(held), held[1])
	}
	srv.ClearRequests()
	got, found, err := c.Latest(ctx, githubRepo, sha1, "flux/apps")
	want.Description = strings.Repeat("ü", 140)
	if err != nil || !found || got != want {
		t.Fatalf("Latest = %+v, %v, %v; want %+v", got, found, err, want)
	}
	if reqs := srv.Requests(); len(reqs) != 2 || !strings.Contains(reqs[1].Query, "page=2") {
		t.Fatalf("requests %+v, want pages 1 and 2", reqs)
	}
	if _, found, err := c.Latest(ctx, githubRepo, sha1, "missing"); err != nil || found {
		t.Fatalf("Latest of a missing context = %v, %v", found, err)
	}
}

func TestGitHubErrors(t *testing.T) {
	ctx := context.Background()
	srv := githubtest.NewServer()
	defer srv.Close()
	c := newGitHub(t, srv)
	st := forge.Status{State: forge.StateSuccess, Context: "c"}
	for _, code := range []int{400, 401, 403, 404, 422, 500, 503} {
		srv.FailNext(1, code)
		err := c.Post(ctx, githubRepo, sha1, st)
		if err == nil || errors.Is(err, outbox.ErrRefused) != (code < 500) {
			t.Errorf("HTTP %d: error %v; want refused %v", code, err, code < 500)
		}
	}
	for _, body := range []string{"null", "", `"x"`, `{"state":7}`, `{"state":"success","statuses":[{"id":1,"context":"c"`, `{"sha":"x","statuses":[null]}`} {
		srv.RespondNext(200, body)
		if _, _, err := c.Latest(ctx, githubRepo, sha1, "c"); !errors.Is(err, commits.ErrBadResponse) {
			t.Errorf("Latest with body %q: error %v, want ErrBadResponse", body, err)
		}
		srv.RespondNext(201, body)
		if err := c.Post(ctx, githubRepo, sha1, st); !errors.Is(err, commits.ErrBadResponse) {
			t.Errorf("Post with body %q: error %v, want ErrBadResponse", body, err)
		}
	}
	srv.RespondNext(200, `{"state":"success","sha":"`+sha1+`","statuses":[],"x":"`+strings.Repeat("a", 2<<20)+`"}`)
	if _, _, err := c.Latest(ctx, githubRepo, sha1, "c"); !errors.Is(err, commits.ErrBadResponse) {
		t.Errorf("Latest of a 2 MiB answer: error %v, want ErrBadResponse", err)
	}
	if err := c.Post(ctx, githubRepo, sha1, forge.Status{State: "error", Context: "c"}); err == nil {
		t.Error("Post of an unknown state succeeded")
	}
}

func TestGitHubRateLimits(t *testing.T) {
	ctx := context.Background()
	st := forge.Status{State: forge.StateSuccess, Context: "c"}
	check := func(t *testing.T, srv *githubtest.Server, c *forge.GitHub, wait time.Duration) {
		t.Helper()
		err := c.Post(ctx, githubRepo, sha1, st)
		var rl *commits.RateLimitError
		if !errors.As(err, &rl) {
			t.Fatalf("error %v, want *commits.RateLimitError", err)
		}
		if left := time.Until(rl.Until); left < wait-2*time.Second || left > wait+2*time.Second {
			t.Fatalf("limited for %s, want about %s", left, wait)
		}
		srv.ClearRequests()
		if _, _, err := c.Latest(ctx, githubRepo, sha1, "c"); !errors.As(err, &rl) {
			t.Fatalf("next call: error %v, want *commits.RateLimitError", err)
		}
		if _, err := c.Create(ctx, githubRepo, forge.Deployment{SHA: sha1, Environment: "e"}); !errors.As(err, &rl) {
			t.Fatalf("next create: error %v, want *commits.RateLimitError", err)
		}
		if n := len(srv.Requests()); n != 0 {
			t.Fatalf("%d requests sent while rate limited", n)
		}
	}
	t.Run("provider client, 429", func(t *testing.T) {
		srv := githubtest.NewServer()
		defer srv.Close()
		c := newGitHub(t, srv)
		srv.RateLimitNext(http.StatusTooManyRequests, 40*time.Second)
		check(t, srv, c, 40*time.Second)
	})
	for _, status := range []int{http.StatusForbidden, http.StatusTooManyRequests} {
		t.Run(fmt.Sprintf("plain client, secondary %d", status), func(t *testing.T) {
			srv := githubtest.NewServer()
			defer srv.Close()
			client, err := gh.NewClient(gh.WithURLs(&srv.URL, nil), gh.WithDisableRateLimitCheck())
			if err != nil {
				t.Fatal(err)
			}
			c := forge.NewGitHub(client, nil, forge.Options{})
			srv.RateLimitNext(status, 20*time.Second)
			check(t, srv, c, 20*time.Second)
		})
	}
	t.Run("plain client, primary", func(t *testing.T) {
		srv := githubtest.NewServer()
		defer srv.Close()
		client, err := gh.NewClient(gh.WithURLs(&srv.URL, nil), gh.WithDisableRateLimitCheck())
		if err != nil {
			t.Fatal(err)
		}
		c := forge.NewGitHub(client, nil, forge.Options{})
		srv.PrimaryRateLimitNext(http.StatusForbidden, 50*time.Second)
		check(t, srv, c, 50*time.Second)
	})
}

func TestGitHubDeployments(t *testing.T) {
	ctx := context.Background()
	srv := githubtest.NewServer()
	defer srv.Close()
	srv.RequireToken(githubToken)
	c := newGitHub(t, srv)
	// A failing status on the SHA: a deployment asking for the default required contexts would be refused.
	if err := c.Post(ctx, githubRepo, sha1, forge.Status{State: forge.StateFailure, Context: "ci"}); err != nil {
		t.Fatal(err)
	}
	payload := json.RawMessage(`{"commits":["` + sha1 + `"]}`)
	first, err := c.Create(ctx, githubRepo, forge.Deployment{SHA: sha1, Environment: "staging", Description: "first", Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	other, err := c.Create(ctx, githubRepo, forge.Deployment{SHA: sha1, Environment: "prod", ProductionEnvironment: true})
	if err != nil {
		t.Fatal(err)
	}
	recs := srv.RepoDeployments("org", "app")
	if len(recs) != 2 {
		t.Fatalf("server holds %d deployments", len(recs))
	}
	r := recs[0]
	if r.ID != first.ID || r.SHA != sha1 || r.Ref != sha1 || r.Task != forge.DeploymentTask || r.AutoMerge || r.RequiredContexts == nil ||
		len(r.RequiredContexts) != 0 || r.ProductionEnvironment || r.Environment != "staging" || string(r.Payload) != string(payload) {
		t.Fatalf("deployment created as %+v", r)
	}
	if !recs[1].ProductionEnvironment {
		t.Fatalf("production deployment created as %+v", recs[1])
	}
	got, found, err := c.Find(ctx, githubRepo, sha1, "staging")
	if err != nil || !found || got.ID != first.ID || got.Description != "first" || string(got.Payload) != string(payload) || got.ProductionEnvironment {
		t.Fatalf("Find = %+v, %v, %v; want %+v", got, found, err, first)
	}
	if got, found, err := c.Find(ctx, githubRepo, sha1, "prod"); err != nil || !found || got.ID != other.ID || !got.ProductionEnvironment {
		t.Fatalf("Find prod = %+v, %v, %v", got, found, err)
	}
	if _, found, err := c.Find(ctx, githubRepo, sha1, "dev"); err != nil || found {
		t.Fatalf("Find of another environment = %v, %v", found, err)
	}
	if _, found, err := c.LatestState(ctx, githubRepo, first.ID); err != nil || found {
		t.Fatalf("LatestState without statuses = %v, %v", found, err)
	}
	if err := c.SetState(ctx, githubRepo, first.ID, forge.DeploymentSuccess, "done", "https://flux.example/log"); err != nil {
		t.Fatal(err)
	}
	second, err := c.Create(ctx, githubRepo, forge.Deployment{SHA: sha2, Environment: "staging"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetState(ctx, githubRepo, second.ID, forge.DeploymentInProgress, strings.Repeat("d", 200), ""); err != nil {
		t.Fatal(err)
	}
	if state, found, err := c.LatestState(ctx, githubRepo, second.ID); err != nil || !found || state != forge.DeploymentInProgress {
		t.Fatalf("LatestState = %q, %v, %v", state, found, err)
	}
	if err := c.SetState(ctx, githubRepo, second.ID, forge.DeploymentSuccess, "done", ""); err != nil {
		t.Fatal(err)
	}
	recs = srv.RepoDeployments("org", "app")
	firstStatuses, secondStatuses := recs[0].Statuses, recs[2].Statuses
	if len(firstStatuses) != 2 || firstStatuses[0].LogURL != "https://flux.example/log" || !firstStatuses[0].AutoInactive || firstStatuses[1].State != "inactive" {
		t.Fatalf("first deployment's statuses %+v, want success then inactive", firstStatuses)
	}
	if len(secondStatuses) != 2 || secondStatuses[0].AutoInactive || len(secondStatuses[0].Description) != forge.MaxDescription || !secondStatuses[1].AutoInactive {
		t.Fatalf("second deployment's statuses %+v", secondStatuses)
	}
	if state, found, err := c.LatestState(ctx, githubRepo, first.ID); err != nil || !found || state != "inactive" {
		t.Fatalf("LatestState of the first = %q, %v, %v; want inactive", state, found, err)
	}
	if err := c.SetState(ctx, githubRepo, 999999, forge.DeploymentSuccess, "", ""); !errors.Is(err, outbox.ErrRefused) {
		t.Fatalf("SetState of an unknown deployment: %v, want ErrRefused", err)
	}
	for _, body := range []string{"null", "", `[null]`, `[{"state":1}]`, `{"id":1}`} {
		srv.RespondNext(200, body)
		if _, _, err := c.LatestState(ctx, githubRepo, first.ID); !errors.Is(err, commits.ErrBadResponse) {
			t.Errorf("LatestState with body %q: %v, want ErrBadResponse", body, err)
		}
		srv.RespondNext(200, body)
		if _, _, err := c.Find(ctx, githubRepo, sha1, "staging"); !errors.Is(err, commits.ErrBadResponse) {
			t.Errorf("Find with body %q: %v, want ErrBadResponse", body, err)
		}
	}
}

// storedBut502 forwards every request to srv and answers a write's with 502, as a gateway that gave up on an
// answer GitHub went on to store; it counts the requests.
func storedBut502(t *testing.T, srv *githubtest.Server) (url string, requests func(method string) int) {
	t.Helper()
	target, err := neturl.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	counts := map[string]int{}
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		counts[r.Method]++
		mu.Unlock()
		if r.Method != http.MethodPost {
			proxy.ServeHTTP(w, r)
			return
		}
		proxy.ServeHTTP(httptest.NewRecorder(), r)
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(gw.Close)
	return gw.URL + "/", func(method string) int { mu.Lock(); defer mu.Unlock(); return counts[method] }
}

// Through the commit provider's client with its retries on, a write is sent once: a retry of a create GitHub
// stored would store it again. Reads are still retried.
func TestGitHubWritesAreSentOnce(t *testing.T) {
	ctx := context.Background()
	srv := githubtest.NewServer()
	defer srv.Close()
	url, requests := storedBut502(t, srv)
	p, err := github.New(github.Options{BaseURL: url, Token: githubToken, RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c := forge.NewGitHub(p.Client(), p.WriteClient(), forge.Options{WriteInterval: time.Nanosecond})
	if err := c.Post(ctx, githubRepo, sha1, forge.Status{State: forge.StatePending, Context: "flux/prod"}); err == nil || errors.Is(err, outbox.ErrRefused) {
		t.Fatalf("Post answered 502: error %v, want one to retry later", err)
	}
	if _, err := c.Create(ctx, githubRepo, forge.Deployment{SHA: sha1, Environment: "prod"}); err == nil {
		t.Fatal("Create answered 502: no error")
	}
	deps := srv.RepoDeployments("org", "app")
	if len(deps) != 1 {
		t.Fatalf("%d deployments stored, want 1", len(deps))
	}
	if err := c.SetState(ctx, githubRepo, deps[0].ID, forge.DeploymentSuccess, "done", ""); err == nil {
		t.Fatal("SetState answered 502: no error")
	}
	statuses := len(srv.RepoDeployments("org", "app")[0].Statuses)
	if got := len(srv.CommitStatuses("org", "app", sha1)); got != 1 || statuses != 1 || requests(http.MethodPost) != 3 {
		t.Fatalf("%d statuses and %d deployment statuses stored in %d POSTs, want 1 and 1 in 3", got, statuses, requests(http.MethodPost))
	}
	srv.FailNext(1, http.StatusServiceUnavailable)
	if got, found, err := c.Latest(ctx, githubRepo, sha1, "flux/prod"); err != nil || !found || got.State != forge.StatePending {
		t.Fatalf("Latest after a 503 = %+v, %v, %v; want the pending status, read on a retry", got, found, err)
	}
}
