package git_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/git"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/git/gittest"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/sourceauth"
)

// TestShallowServer fetches from a server whose own copy is shallow: ranges inside the history it has
// are answered; a range that needs history past its boundary is ErrIncompleteHistory, not a guess.
func TestShallowServer(t *testing.T) {
	root := t.TempDir()
	srv := gittest.NewHTTPServer(t, root)
	full := gittest.NewRepo(t, t.TempDir())
	c1 := full.Commit("c1", nil)
	full.Git("checkout", "-q", "-b", "side")
	s1 := full.Commit("s1", nil)
	full.Git("checkout", "-q", "main")
	c2 := full.Commit("c2", nil)
	c3 := full.Commit("c3", nil)
	c4 := full.Commit("c4", nil)
	// The served copy holds main's last two commits and side's two: c3 has no parent there.
	full.Git("clone", "-q", "--bare", "--depth=2", "--no-single-branch", "file://"+full.Dir, filepath.Join(root, "shallow.git"))

	c := &calls{n: map[commits.CallOutcome]int{}}
	prov := newProvider(t, t.TempDir(), c)
	p := prov.ForRef(srv.URL("shallow.git"), sourceauth.Auth{}, git.Ref{Branch: "main"})
	prov.ForRef(srv.URL("shallow.git"), sourceauth.Auth{}, git.Ref{Branch: "side"}) // another source follows side
	ctx := context.Background()
	if r, err := p.Range(ctx, anyRepo, c3, c4); err != nil || r.Status != commits.Ahead || len(r.Commits) != 1 || r.Commits[0].SHA != c4 {
		t.Fatalf("range inside the history: %+v, %v", r, err)
	}
	// s1 is there, but whether c4 descends from it lies past c3.
	_, err := p.Range(ctx, anyRepo, s1, c4)
	if !errors.Is(err, git.ErrIncompleteHistory) || errors.Is(err, commits.ErrNotFound) {
		t.Fatalf("range past the boundary: %v, want git.ErrIncompleteHistory", err)
	}
	if !strings.Contains(err.Error(), "history is incomplete") || !strings.Contains(err.Error(), c2) {
		t.Fatalf("error %q does not say which commit is missing", err)
	}
	// Below the common ancestor nothing is needed: c3 is behind c4 whatever lies past c3.
	if r, err := p.Range(ctx, anyRepo, c4, c3); err != nil || r.Status != commits.Behind {
		t.Fatalf("behind: %+v, %v", r, err)
	}
	// A commit past the boundary cannot be fetched at all: not found. c1 is there, through side.
	if _, err := p.Commit(ctx, anyRepo, c2); !errors.Is(err, commits.ErrNotFound) {
		t.Fatalf("c2: %v", err)
	}
	if _, err := p.Commit(ctx, anyRepo, c1); err != nil {
		t.Fatalf("c1: %v", err)
	}
}
