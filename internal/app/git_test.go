package app_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/git/gittest"
)

func TestPlainGitRepository(t *testing.T) {
	s := newScenario(t)
	root := t.TempDir()
	repo := gittest.NewRepo(t, filepath.Join(root, "manifests"))
	repo.Now, repo.Step = s.t0, 10*time.Second
	srv := gittest.NewHTTPServer(t, root)

	var gr sourcev1.GitRepository
	if err := env.Client.Get(context.Background(), keyOf(s.ns, "manifests"), &gr); err != nil {
		t.Fatal(err)
	}
	gr.Spec.URL = srv.URL("manifests")
	if err := env.Client.Update(context.Background(), &gr); err != nil {
		t.Fatal(err)
	}

	c0 := repo.Commit("base", map[string]string{"app.yaml": "v0"}) // t0
	s.createKustomization("app", c0, 5)
	tr := s.startTracker()
	eventually(t, 10*time.Second, "baseline", func() bool { return s.ledgerRevision("app") != "" })

	c1 := repo.Commit("one", map[string]string{"app.yaml": "v1"})   // t0+10
	c2 := repo.Commit("two", map[string]string{"app.yaml": "v2"})   // t0+20
	c3 := repo.Commit("three", map[string]string{"app.yaml": "v3"}) // t0+30
	s.apply("app", "main@sha1:"+c3, s.at(100))
	wantCommits(t, tr, map[string]float64{c1: 90, c2: 80, c3: 70})
	repoLabel := `vcs_repository_url_full="` + srv.URL("manifests") + `"`
	if got := tr.Metric(reconcileCount, `flux_name="app"`, repoLabel); got != 3 {
		t.Errorf("reconcile count for the git repository = %v, want 3", got)
	}
	// One fetch mirrors the repository at the baseline (its exporter-info.json), one brings the new revision.
	if got := tr.Metric("flux_commit_tracker_git_calls_total", `outcome="success"`); got != 2 {
		t.Errorf("git fetches = %v, want 2", got)
	}
	if got := tr.Metric("flux_commit_tracker_github_calls_total"); got != 0 {
		t.Errorf("GitHub calls = %v, want 0 for a plain git repository", got)
	}
}
