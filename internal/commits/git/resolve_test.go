package git_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/git"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/git/gittest"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/sourceauth"
)

func resolver(t *testing.T, p commits.Provider) commits.RefResolver {
	t.Helper()
	r, ok := p.(commits.RefResolver)
	if !ok {
		t.Fatalf("%T is not a commits.RefResolver", p)
	}
	return r
}

// absentPrefix returns a 7-digit prefix that begins none of shas.
func absentPrefix(t *testing.T, shas []string) string {
	t.Helper()
	for d := range 16 {
		p := strings.Repeat(fmt.Sprintf("%x", d), 7)
		if !strings.Contains("\n"+strings.Join(shas, "\n"), "\n"+p) {
			return p
		}
	}
	t.Fatal("every candidate prefix is taken")
	return ""
}

// TestResolve: branches (followed or not), tags (lightweight and annotated, peeled), exact names, full SHAs and
// prefixes resolve to what git itself says, and the commit is in the mirror afterwards.
func TestResolve(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	first := f.repo.Commit("first", map[string]string{"a.txt": "1"})
	f.repo.Git("tag", "v1", first)
	second := f.repo.Commit("second", map[string]string{"a.txt": "2"})
	f.repo.Git("tag", "-a", "v2", "-m", "release 2")
	f.repo.Git("checkout", "-q", "-b", "side", first)
	side := f.repo.Commit("side", map[string]string{"b.txt": "b"})
	f.repo.Git("checkout", "-q", "main")
	if tagObject := f.repo.Git("rev-parse", "v2"); tagObject == second {
		t.Fatal("v2 is not an annotated tag")
	}
	all := f.repo.RevList("--all")
	r := resolver(t, f.p)

	tests := []struct {
		ref     string
		want    string
		wantErr error
	}{
		{ref: "main", want: second},
		{ref: "side", want: side}, // a branch the mirror does not follow
		{ref: "v1", want: first},
		{ref: "v2", want: second}, // the commit, not the tag object
		{ref: "refs/heads/side", want: side},
		{ref: "refs/tags/v2", want: second},
		{ref: "HEAD", want: second},
		{ref: second, want: second},
		{ref: strings.ToUpper(side), want: side},
		{ref: side[:7], want: side},
		{ref: strings.ToUpper(first[:10]), want: first},
		{ref: "no-such-branch", wantErr: commits.ErrNotFound},
		{ref: absentPrefix(t, all), wantErr: commits.ErrNotFound},
		{ref: strings.Repeat("0", 40), wantErr: commits.ErrNotFound},
		{ref: "", wantErr: commits.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			got, err := r.Resolve(ctx, anyRepo, tt.ref)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Resolve(%q) = %q, %v; want %v", tt.ref, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Resolve(%q) = %q, %v; want %s", tt.ref, got, err, tt.want)
			}
			if byGit := f.repo.Git("rev-parse", tt.ref+"^{commit}"); byGit != tt.want {
				t.Fatalf("git rev-parse %s = %s, the test expects %s", tt.ref, byGit, tt.want)
			}
			// The commit is in the mirror now: reading it asks the server nothing.
			before, _ := f.requests()
			if _, err := f.p.Commit(ctx, anyRepo, got); err != nil {
				t.Fatalf("Commit after Resolve: %v", err)
			}
			if after, _ := f.requests(); after != before {
				t.Fatalf("Commit after Resolve(%q) fetched again", tt.ref)
			}
		})
	}
	// A branch the mirror does not follow comes with its history: Range works from what Resolve brought.
	rng, err := f.p.Range(ctx, anyRepo, first, side)
	if err != nil || rng.Status != commits.Ahead || len(rng.Commits) != 1 || rng.Commits[0].SHA != side {
		t.Fatalf("Range(first, side) = %+v, %v; want [side]", rng, err)
	}
}

// TestResolveFollowsPushes: a branch, and the prefix of a commit the mirror has not seen yet, resolve to what the
// server holds now.
func TestResolveFollowsPushes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := resolver(t, f.p)
	old := f.repo.Commit("old", nil)
	if got, err := r.Resolve(ctx, anyRepo, "main"); err != nil || got != old {
		t.Fatalf("Resolve(main) = %q, %v; want %s", got, err, old)
	}
	pushed := f.repo.Commit("pushed", nil)
	if got, err := r.Resolve(ctx, anyRepo, pushed[:7]); err != nil || got != pushed {
		t.Fatalf("Resolve(%.7s) of a new commit = %q, %v; want %s", pushed, got, err, pushed)
	}
	if got, err := r.Resolve(ctx, anyRepo, "main"); err != nil || got != pushed {
		t.Fatalf("Resolve(main) after a push = %q, %v; want %s", got, err, pushed)
	}
	// A force-push back moves the branch back.
	f.repo.Git("reset", "-q", "--hard", old)
	if got, err := r.Resolve(ctx, anyRepo, "main"); err != nil || got != old {
		t.Fatalf("Resolve(main) after a force-push = %q, %v; want %s", got, err, old)
	}
}

// TestResolveAmbiguousPrefix: a prefix that begins two commits is refused, naming both; one digit more resolves.
func TestResolveAmbiguousPrefix(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	root := f.repo.Commit("root", map[string]string{"a.txt": "a"})
	at := f.repo.Now
	msgA, msgB := collidingMessages(t, plumbing.NewHash(root), plumbing.NewHash(f.repo.Git("rev-parse", "HEAD^{tree}")), at)
	a := f.repo.Commit(msgA, nil)
	f.repo.Git("checkout", "-q", "-b", "side", root)
	f.repo.Now = at
	b := f.repo.Commit(msgB, nil)
	f.repo.Git("checkout", "-q", "main")
	f.repo.Merge("side", "merge side")
	if a[:7] != b[:7] || a == b {
		t.Fatalf("commits %s and %s do not share a 7-digit prefix: git wrote other objects than computed", a, b)
	}
	common := 7
	for a[common] == b[common] {
		common++
	}

	r := resolver(t, f.p)
	_, err := r.Resolve(ctx, anyRepo, a[:common])
	if !errors.Is(err, commits.ErrAmbiguous) || errors.Is(err, commits.ErrNotFound) {
		t.Fatalf("Resolve(%s) = %v, want commits.ErrAmbiguous", a[:common], err)
	}
	if !strings.Contains(err.Error(), a) || !strings.Contains(err.Error(), b) {
		t.Fatalf("error %q does not name both commits", err)
	}
	if got, err := r.Resolve(ctx, anyRepo, b[:common+1]); err != nil || got != b {
		t.Fatalf("Resolve(%s) = %q, %v; want %s", b[:common+1], got, err, b)
	}
}

// collidingMessages finds two commit messages whose commits (empty changes on parent, at the gittest identity and
// time at) share their first 7 hex digits: a birthday search over 28 bits, some twenty thousand hashes.
func collidingMessages(t *testing.T, parent, tree plumbing.Hash, at time.Time) (string, string) {
	t.Helper()
	sig := object.Signature{Name: gittest.AuthorName, Email: gittest.AuthorEmail, When: at.UTC()}
	seen := map[string]string{}
	for i := range 1 << 20 {
		msg := fmt.Sprintf("collide %d", i)
		obj := &plumbing.MemoryObject{}
		c := &object.Commit{Author: sig, Committer: sig, Message: msg + "\n", TreeHash: tree, ParentHashes: []plumbing.Hash{parent}}
		if err := c.Encode(obj); err != nil {
			t.Fatal(err)
		}
		prefix := obj.Hash().String()[:7]
		if other, ok := seen[prefix]; ok {
			return other, msg
		}
		seen[prefix] = msg
	}
	t.Fatal("no colliding messages")
	return "", ""
}

// TestResolveErrors: a refused credential fails Resolve as it fails a fetch, without the secret and without
// retries; a server that does not answer fails it at Timeout.
func TestResolveErrors(t *testing.T) {
	root := t.TempDir()
	srv := gittest.NewHTTPServerAuth(t, root, user, password)
	f := newAuthFixture(t, root)
	f.repo.Commit("c1", nil)
	wrong := sourceauth.Auth{Username: user, Password: "wrong-" + password}
	_, err := resolver(t, f.git.ForURLWithAuth(srv.URL("private"), wrong)).Resolve(context.Background(), anyRepo, "main")
	f.wantAuthError(t, err, 1, wrong)

	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv.BeforeRequest(func(*http.Request) { <-release })
	slow := newProvider(t, t.TempDir(), &calls{n: map[commits.CallOutcome]int{}}, func(o *git.Options) {
		o.Timeout, o.MaxRetries = 50*time.Millisecond, -1
	})
	start := time.Now()
	_, err = resolver(t, slow.ForURLWithAuth(srv.URL("private"), sourceauth.Auth{Username: user, Password: password})).
		Resolve(context.Background(), anyRepo, "main")
	if err == nil || !strings.Contains(err.Error(), "timed out after 50ms") || time.Since(start) > 10*time.Second {
		t.Fatalf("got %v after %s, want a timeout after 50ms", err, time.Since(start))
	}
	noSecrets(t, err.Error(), sourceauth.Auth{Password: password})
}

// TestResolveOfUnusableRepository: the providers ForRef returns for a bad URL resolve too, with its error.
func TestResolveOfUnusableRepository(t *testing.T) {
	p := newProvider(t, t.TempDir(), &calls{n: map[commits.CallOutcome]int{}})
	_, err := resolver(t, p.ForURL("https://example.com/repo.git?x=1")).Resolve(context.Background(), anyRepo, "main")
	if err == nil || errors.Is(err, commits.ErrNotFound) || !strings.Contains(err.Error(), "invalid git URL") {
		t.Fatalf("got %v, want the URL's error", err)
	}
}
