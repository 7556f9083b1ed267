package forge_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/forge"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/forge/forgetest"
)

const giteaToken = "gitea-test-token-abcdef"

var giteaRepo = commits.Repository{Host: "gitea.example", Owner: "org", Name: "app"}

func newGitea(t *testing.T, baseURL string, opts forge.Options) *forge.Gitea {
	t.Helper()
	c, err := forge.NewGitea(forge.HTTPOptions{Options: opts, BaseURL: baseURL, Token: giteaToken})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGiteaShared(t *testing.T) {
	fake := forgetest.NewGitea(giteaToken)
	runSharedChecks(t, forgeCase{
		newClient: func(t *testing.T, u string, o forge.Options) forge.Statuses { return newGitea(t, u, o) },
		prefix:    forgetest.GiteaPrefix, handler: fake,
		requests: func() int { return len(fake.Requests()) }, failNext: fake.FailNext,
		rateLimit: fake.RateLimitNext, respondNext: fake.RespondNext, repo: giteaRepo, limitLifts: true,
	})
}

func TestGiteaNeedsBaseURL(t *testing.T) {
	if _, err := forge.NewGitea(forge.HTTPOptions{}); err == nil {
		t.Fatal("NewGitea without a base URL succeeded")
	}
	if _, err := forge.NewGitea(forge.HTTPOptions{BaseURL: "https://user:pw@gitea.example/api/v1"}); err == nil {
		t.Fatal("NewGitea with credentials in the base URL succeeded")
	}
}

func TestGiteaRoundTrip(t *testing.T) {
	ctx := context.Background()
	fake := forgetest.NewGitea(giteaToken)
	ts := httptest.NewServer(fake)
	defer ts.Close()
	c := newGitea(t, ts.URL+forgetest.GiteaPrefix, forge.Options{WriteInterval: 1})
	for _, st := range []forge.Status{
		{State: forge.StatePending, Context: "flux/apps", Description: "deploying"},
		{State: forge.StateSuccess, Context: "other", Description: "other"},
		{State: forge.StateSuccess, Context: "flux/apps", Description: "deployed", TargetURL: "https://flux.example"},
		{State: forge.StateFailure, Context: "other", Description: "other, newer"},
	} {
		if err := c.Post(ctx, giteaRepo, sha1, st); err != nil {
			t.Fatal(err)
		}
	}
	if got := fake.Statuses("org/app", sha1); len(got) != 4 || got[2].State != forge.StateSuccess {
		t.Fatalf("fake holds %+v", got)
	}
	if auth := fake.Requests()[0].Header.Get("Authorization"); auth != "token "+giteaToken {
		t.Fatalf("Authorization %q", auth)
	}
	want := forge.Status{State: forge.StateSuccess, Context: "flux/apps", Description: "deployed", TargetURL: "https://flux.example"}
	got, found, err := c.Latest(ctx, giteaRepo, sha1, "flux/apps")
	if err != nil || !found || got != want {
		t.Fatalf("Latest = %+v, %v, %v; want %+v", got, found, err, want)
	}
	if _, found, err := c.Latest(ctx, giteaRepo, sha1, "missing"); err != nil || found {
		t.Fatalf("Latest of a missing context = %v, %v", found, err)
	}
}

func TestGiteaPagesAndStateField(t *testing.T) {
	ctx := context.Background()
	fake := forgetest.NewGitea(giteaToken)
	ts := httptest.NewServer(fake)
	defer ts.Close()
	fake.AddStatus("org/app", sha1, "error", "first", "")
	for i := range 60 {
		fake.AddStatus("org/app", sha1, "success", "ctx-"+string(rune('a'+i%26))+string(rune('a'+i/26)), "")
	}
	c := newGitea(t, ts.URL+forgetest.GiteaPrefix, forge.Options{})
	if got, found, err := c.Latest(ctx, giteaRepo, sha1, "ctx-hc"); err != nil || !found || got.State != forge.StateSuccess {
		t.Fatalf("Latest on page 2 = %+v, %v, %v", got, found, err)
	}
	if n := len(fake.Requests()); n != 2 {
		t.Fatalf("%d pages fetched, want 2", n)
	}
	if got, found, err := c.Latest(ctx, giteaRepo, sha1, "first"); err != nil || !found || got.State != forge.StateFailure {
		t.Fatalf("error status = %+v, %v, %v; want failure", got, found, err)
	}
	// Older Gitea versions name the field "state".
	fake.RespondNext(http.StatusOK, `{"state":"pending","sha":"`+sha1+`","total_count":1,"statuses":[{"id":3,"state":"failure","context":"old"}]}`)
	if got, found, err := c.Latest(ctx, giteaRepo, sha1, "old"); err != nil || !found || got.State != forge.StateFailure {
		t.Fatalf("Latest with a state field = %+v, %v, %v", got, found, err)
	}
}
