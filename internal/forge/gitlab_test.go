package forge_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/forge"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/forge/forgetest"
)

const gitlabToken = "glpat-test-token-123456"

var gitlabRepo = commits.Repository{Host: "gitlab.example", Owner: "group/sub", Name: "app"}

func newGitLab(t *testing.T, baseURL string, opts forge.Options) *forge.GitLab {
	t.Helper()
	c, err := forge.NewGitLab(forge.HTTPOptions{Options: opts, BaseURL: baseURL, Token: gitlabToken})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGitLabShared(t *testing.T) {
	fake := forgetest.NewGitLab(gitlabToken)
	runSharedChecks(t, forgeCase{
		newClient: func(t *testing.T, u string, o forge.Options) forge.Statuses { return newGitLab(t, u, o) },
		prefix:    forgetest.GitLabPrefix, handler: fake,
		requests: func() int { return len(fake.Requests()) }, failNext: fake.FailNext,
		rateLimit: fake.RateLimitNext, respondNext: fake.RespondNext, repo: gitlabRepo, limitLifts: true,
	})
}

func TestGitLabRoundTrip(t *testing.T) {
	ctx := context.Background()
	fake := forgetest.NewGitLab(gitlabToken)
	ts := httptest.NewServer(fake)
	defer ts.Close()
	c := newGitLab(t, ts.URL+forgetest.GitLabPrefix, forge.Options{WriteInterval: 1})
	want := forge.Status{State: forge.StateFailure, Context: "flux/apps", Description: "failed", TargetURL: "https://flux.example/apps"}
	if err := c.Post(ctx, gitlabRepo, sha1, want); err != nil {
		t.Fatal(err)
	}
	if got := fake.States("group/sub/app", sha1); len(got) != 1 || got[0] != "failed" {
		t.Fatalf("GitLab states %v, want [failed]", got)
	}
	reqs := fake.Requests()
	if p := reqs[0].Path; p != "/api/v4/projects/group%2Fsub%2Fapp/statuses/"+sha1 || reqs[0].Header.Get("PRIVATE-TOKEN") != gitlabToken {
		t.Fatalf("posted to %s with token %q", p, reqs[0].Header.Get("PRIVATE-TOKEN"))
	}
	got, found, err := c.Latest(ctx, gitlabRepo, sha1, "flux/apps")
	if err != nil || !found || got != want {
		t.Fatalf("Latest = %+v, %v, %v; want %+v", got, found, err, want)
	}
	if _, found, err := c.Latest(ctx, gitlabRepo, sha2, "flux/apps"); err != nil || found {
		t.Fatalf("Latest of another SHA = found %v, %v", found, err)
	}
}

func TestGitLabNewestWinsAcrossPages(t *testing.T) {
	ctx := context.Background()
	fake := forgetest.NewGitLab(gitlabToken)
	ts := httptest.NewServer(fake)
	defer ts.Close()
	for i := range 230 {
		fake.AddStatus("group/sub/app", sha1, "running", "flux/apps", "old")
		if i%3 == 0 {
			fake.AddStatus("group/sub/app", sha1, "success", "other", "other context")
		}
	}
	fake.AddStatus("group/sub/app", sha1, "canceled", "flux/apps", "newest")
	fake.AddStatus("group/sub/app", sha1, "success", "other", "other context, newer")
	c := newGitLab(t, ts.URL+forgetest.GitLabPrefix, forge.Options{})
	got, found, err := c.Latest(ctx, gitlabRepo, sha1, "flux/apps")
	if err != nil || !found || got.State != forge.StateFailure || got.Description != "newest" {
		t.Fatalf("Latest = %+v, %v, %v; want the canceled one as failure", got, found, err)
	}
	gets := 0
	for _, r := range fake.Requests() {
		if r.Method == http.MethodGet {
			gets++
			if !strings.Contains(r.Query, "name=flux%2Fapps") || !strings.Contains(r.Query, "all=true") {
				t.Errorf("query %q lacks name or all", r.Query)
			}
		}
	}
	if gets != 3 {
		t.Fatalf("%d pages fetched, want 3 (231 statuses, 100 a page)", gets)
	}
	for state, want := range map[string]forge.State{"running": forge.StatePending, "pending": forge.StatePending, "failed": forge.StateFailure, "success": forge.StateSuccess} {
		fake.AddStatus("group/sub/app", sha2, state, "map-"+state, "")
		if got, _, err := c.Latest(ctx, gitlabRepo, sha2, "map-"+state); err != nil || got.State != want {
			t.Errorf("GitLab %q read as %q (%v), want %q", state, got.State, err, want)
		}
	}
}

func TestGitLabTokenOnlyToBaseHost(t *testing.T) {
	ctx := context.Background()
	fake := forgetest.NewGitLab(gitlabToken)
	ts := httptest.NewServer(fake)
	defer ts.Close()
	var leaked []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked = append(leaked, r.Header.Get("PRIVATE-TOKEN")+r.Header.Get("Authorization"))
		_, _ = w.Write([]byte(`[]`))
	}))
	defer other.Close()
	c := newGitLab(t, ts.URL+forgetest.GitLabPrefix, forge.Options{})
	fake.RedirectNext(other.URL + "/elsewhere")
	if _, _, err := c.Latest(ctx, gitlabRepo, sha1, "x"); err != nil {
		t.Fatal(err)
	}
	if len(leaked) != 1 || leaked[0] != "" {
		t.Fatalf("the other host got %q, want one request without a token", leaked)
	}
	if got := fake.Requests()[0].Header.Get("PRIVATE-TOKEN"); got != gitlabToken {
		t.Fatalf("the API got token %q", got)
	}
}

func TestGitLabBadToken(t *testing.T) {
	fake := forgetest.NewGitLab("right-token-123456")
	ts := httptest.NewServer(fake)
	defer ts.Close()
	c := newGitLab(t, ts.URL+forgetest.GitLabPrefix, forge.Options{})
	err := c.Post(context.Background(), gitlabRepo, sha1, forge.Status{State: forge.StateSuccess, Context: "x"})
	if err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), gitlabToken) {
		t.Fatalf("error %v, want a 401 without the token", err)
	}
}

// A repository in a subgroup, named by its URL rather than owner/name, is addressed by its whole path.
func TestGitLabSubgroupRepositoryByURL(t *testing.T) {
	fake := forgetest.NewGitLab(gitlabToken)
	ts := httptest.NewServer(fake)
	defer ts.Close()
	c := newGitLab(t, ts.URL+forgetest.GitLabPrefix, forge.Options{WriteInterval: 1})
	repo := commits.Repository{Host: "gitlab.com", Name: "app", URL: "https://gitlab.com/group/sub/app.git"}
	if err := c.Post(context.Background(), repo, sha1, forge.Status{State: forge.StateSuccess, Context: "flux/apps", Description: "ok"}); err != nil {
		t.Fatal(err)
	}
	if got := fake.States("group/sub/app", sha1); len(got) != 1 || got[0] != "success" {
		t.Fatalf("GitLab states of group/sub/app %v, want [success]", got)
	}
}
