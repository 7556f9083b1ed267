package git

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/git/gittest"
)

// TestShallowMirrorIsReplaced finds a shallow mirror in the cache directory (copied in, or left by
// another tool): it is discarded and fetched again in full, so ranges past its boundary are answered.
func TestShallowMirrorIsReplaced(t *testing.T) {
	root, cache := t.TempDir(), t.TempDir()
	srv := gittest.NewHTTPServer(t, root)
	repo := gittest.NewRepo(t, filepath.Join(root, "manifests"))
	c1 := repo.Commit("c1", nil)
	c2 := repo.Commit("c2", nil)
	c3 := repo.Commit("c3", nil)
	url, err := normalizeURL(srv.URL("manifests"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cache, mirrorName(url))
	repo.Git("clone", "-q", "--bare", "--depth=1", "file://"+repo.Dir, dir)
	if _, err := os.Stat(filepath.Join(dir, "shallow")); err != nil {
		t.Fatalf("fixture: %v", err)
	}

	p, err := New(Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	r, err := p.ForURL(srv.URL("manifests")).Range(context.Background(), commits.Repository{}, c1, c3)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range r.Commits {
		got = append(got, c.SHA)
	}
	if r.Status != commits.Ahead || !slices.Equal(got, []string{c2, c3}) {
		t.Fatalf("got %s %v, want ahead [%s %s]", r.Status, got, c2, c3)
	}
	if _, err := os.Stat(filepath.Join(dir, "shallow")); !os.IsNotExist(err) {
		t.Fatalf("mirror still shallow: %v", err)
	}
}
