package git

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/git/gittest"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/sourceauth"
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

// mirrorRefs lists the refs in the mirror of rawURL under cache.
func mirrorRefs(t *testing.T, cache, rawURL string) []string {
	t.Helper()
	url, err := normalizeURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	r, err := gogit.PlainOpen(filepath.Join(cache, mirrorName(url)))
	if err != nil {
		t.Fatal(err)
	}
	iter, err := r.References()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	_ = iter.ForEach(func(ref *plumbing.Reference) error {
		if ref.Type() == plumbing.HashReference {
			out = append(out, ref.Name().String())
		}
		return nil
	})
	slices.Sort(out)
	return out
}

// TestFetchesOnlyFollowedRefs: the mirror used to fetch every branch and tag; it now fetches the refs its
// sources follow, and other commits only by SHA when the server allows it.
func TestFetchesOnlyFollowedRefs(t *testing.T) {
	root, cache := t.TempDir(), t.TempDir()
	srv := gittest.NewHTTPServer(t, root)
	repo := gittest.NewRepo(t, filepath.Join(root, "manifests"))
	c1 := repo.Commit("c1", nil)
	repo.Git("tag", "v1")
	repo.Git("checkout", "-q", "-b", "feature")
	f1 := repo.Commit("f1", nil)
	repo.Git("checkout", "-q", "-b", "release", c1)
	r1 := repo.Commit("r1", nil)
	repo.Git("checkout", "-q", "main")
	c2 := repo.Commit("c2", nil)

	p, err := New(Options{CacheDir: cache, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	ctx := context.Background()
	mainSrc := p.ForRef(srv.URL("manifests"), sourceauth.Auth{}, Ref{Branch: "main"})
	if r, err := mainSrc.Range(ctx, commits.Repository{}, c1, c2); err != nil || r.Status != commits.Ahead {
		t.Fatalf("Range on main: %+v, %v", r, err)
	}
	if got, want := mirrorRefs(t, cache, srv.URL("manifests")), []string{"refs/heads/main"}; !slices.Equal(got, want) {
		t.Errorf("mirror refs %v, want %v", got, want)
	}
	// A commit on a branch no source follows is not fetched: this server refuses fetches by SHA.
	if _, err := mainSrc.Commit(ctx, commits.Repository{}, f1); !errors.Is(err, commits.ErrNotFound) {
		t.Fatalf("commit on an unfollowed branch: %v, want ErrNotFound", err)
	}

	// A second source following release and a tag adds their refs to the mirror's fetches.
	relSrc := p.ForRef(srv.URL("manifests"), sourceauth.Auth{}, Ref{Branch: "release", Tag: "v1"})
	if _, err := relSrc.Commit(ctx, commits.Repository{}, r1); err != nil {
		t.Fatalf("commit on release: %v", err)
	}
	if got, want := mirrorRefs(t, cache, srv.URL("manifests")), []string{"refs/heads/main", "refs/heads/release", "refs/tags/v1"}; !slices.Equal(got, want) {
		t.Errorf("mirror refs %v, want %v", got, want)
	}

	// A server that serves fetches by SHA gives the commit, and no ref for it stays behind.
	repo.Git("config", "uploadpack.allowReachableSHA1InWant", "true")
	p2, err := New(Options{CacheDir: t.TempDir(), MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p2.Close() })
	if c, err := p2.ForRef(srv.URL("manifests"), sourceauth.Auth{}, Ref{Branch: "main"}).Commit(ctx, commits.Repository{}, f1); err != nil || c.SHA != f1 {
		t.Fatalf("commit by SHA: %+v, %v", c, err)
	}
	// A deleted branch does not stop the refs that remain from being fetched.
	repo.Git("branch", "-D", "release")
	c3 := repo.Commit("c3", nil)
	if _, err := p.ForRef(srv.URL("manifests"), sourceauth.Auth{}, Ref{Branch: "main"}).Commit(ctx, commits.Repository{}, c3); err != nil {
		t.Fatalf("after a followed branch was deleted: %v", err)
	}
}

func TestRefSpecs(t *testing.T) {
	tests := []struct {
		ref  Ref
		want []config.RefSpec
	}{
		{Ref{}, []config.RefSpec{headRefSpec}},
		{Ref{Branch: "main"}, []config.RefSpec{"+refs/heads/main:refs/heads/main"}},
		{Ref{Tag: "v1.2.3"}, []config.RefSpec{"+refs/tags/v1.2.3:refs/tags/v1.2.3"}},
		{Ref{SemVer: ">=1.0.0"}, []config.RefSpec{"+refs/tags/*:refs/tags/*"}},
		{Ref{Name: "refs/pull/7/head"}, []config.RefSpec{"+refs/pull/7/head:refs/pull/7/head"}},
		{Ref{Commit: strings.Repeat("a", 40)}, []config.RefSpec{headRefSpec}},
		{Ref{Branch: "main", Commit: strings.Repeat("a", 40)}, []config.RefSpec{"+refs/heads/main:refs/heads/main"}},
		// Names a refspec would misread are ignored.
		{Ref{Branch: "*"}, []config.RefSpec{headRefSpec}},
		{Ref{Branch: "a:refs/heads/b"}, []config.RefSpec{headRefSpec}},
		{Ref{Branch: "../x"}, []config.RefSpec{headRefSpec}},
		{Ref{Name: "main"}, []config.RefSpec{headRefSpec}},
		{Ref{Branch: strings.Repeat("b", 2000)}, []config.RefSpec{headRefSpec}},
	}
	for _, tt := range tests {
		if got := tt.ref.refSpecs(); !slices.Equal(got, tt.want) {
			t.Errorf("%+v.refSpecs() = %v, want %v", tt.ref, got, tt.want)
		}
	}
}

func FuzzRefSpecs(f *testing.F) {
	for _, s := range []string{"main", "*", "a:b", "refs/heads/x", "v1.0", "..", "a b", "x.lock", "@{u}"} {
		f.Add(s, s, s)
	}
	f.Fuzz(func(t *testing.T, branch, tag, name string) {
		for _, s := range (Ref{Branch: branch, Tag: tag, Name: name}).refSpecs() {
			if s == headRefSpec || s == "+refs/tags/*:refs/tags/*" {
				continue
			}
			if err := s.Validate(); err != nil || s.IsWildcard() || !s.IsForceUpdate() || strings.Count(string(s), ":") != 1 {
				t.Fatalf("refspec %q from %q, %q, %q: %v", s, branch, tag, name, err)
			}
		}
	})
}

// TestPruneRemovesUnusedMirrors: mirrors of repositories no source uses are removed from disk, and made
// again if a source comes back.
func TestPruneRemovesUnusedMirrors(t *testing.T) {
	root, cache := t.TempDir(), t.TempDir()
	srv := gittest.NewHTTPServer(t, root)
	a := gittest.NewRepo(t, filepath.Join(root, "a"))
	b := gittest.NewRepo(t, filepath.Join(root, "b"))
	ca, cb := a.Commit("a", nil), b.Commit("b", nil)
	p, err := New(Options{CacheDir: cache, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	ctx := context.Background()
	for url, sha := range map[string]string{srv.URL("a"): ca, srv.URL("b"): cb} {
		if _, err := p.ForURL(url).Commit(ctx, commits.Repository{}, sha); err != nil {
			t.Fatal(err)
		}
	}
	dirOf := func(raw string) string {
		url, _ := normalizeURL(raw)
		return filepath.Join(cache, mirrorName(url))
	}
	if err := p.Retain(srv.URL("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dirOf(srv.URL("a"))); err != nil {
		t.Errorf("kept mirror: %v", err)
	}
	if _, err := os.Stat(dirOf(srv.URL("b"))); !os.IsNotExist(err) {
		t.Errorf("unused mirror still on disk: %v", err)
	}
	if err := p.RemoveIdle(time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dirOf(srv.URL("a"))); err != nil {
		t.Errorf("mirror used just now removed as idle: %v", err)
	}
	if err := p.RemoveIdle(-time.Hour); err != nil { // every mirror is idle past a cutoff in the future
		t.Fatal(err)
	}
	if _, err := os.Stat(dirOf(srv.URL("a"))); !os.IsNotExist(err) {
		t.Errorf("idle mirror still on disk: %v", err)
	}
	// A source that comes back gets its mirror again.
	if _, err := p.ForURL(srv.URL("b")).Commit(ctx, commits.Repository{}, cb); err != nil {
		t.Fatalf("after removal: %v", err)
	}
}

// TestFetchTimeout: a fetch from a server that does not answer ends at Options.Timeout.
func TestFetchTimeout(t *testing.T) {
	root := t.TempDir()
	srv := gittest.NewHTTPServer(t, root)
	c1 := gittest.NewRepo(t, filepath.Join(root, "slow")).Commit("c1", nil)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv.BeforeRequest(func(*http.Request) { <-release })
	p, err := New(Options{CacheDir: t.TempDir(), Timeout: 50 * time.Millisecond, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	_, err = p.ForURL(srv.URL("slow")).Commit(context.Background(), commits.Repository{}, c1)
	if err == nil || !strings.Contains(err.Error(), "timed out after 50ms") {
		t.Fatalf("got %v, want a timeout after 50ms", err)
	}
	if p.timeout != 50*time.Millisecond {
		t.Errorf("timeout %v", p.timeout)
	}
	if d, _ := New(Options{CacheDir: t.TempDir()}); d.timeout != 30*time.Second {
		t.Errorf("default timeout %v, want 30s", d.timeout)
	}
}

// TestCachesBoundedInBytes: the parsed-commit cache holds at most CacheBytes, however many commits are read.
func TestCachesBoundedInBytes(t *testing.T) {
	root := t.TempDir()
	srv := gittest.NewHTTPServer(t, root)
	repo := gittest.NewRepo(t, filepath.Join(root, "big"))
	base := repo.Commit("base", nil)
	shas := repo.FastImport(200)
	p, err := New(Options{CacheDir: t.TempDir(), CacheBytes: 8 << 10, FileCacheBytes: 1 << 10, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	r, err := p.ForURL(srv.URL("big")).Range(context.Background(), commits.Repository{}, base, shas[199])
	if err != nil || len(r.Commits) != 200 {
		t.Fatalf("Range: %d commits, %v", len(r.Commits), err)
	}
	if b := p.nodes.Bytes(); b > 8<<10 || b == 0 || p.nodes.Len() >= 200 {
		t.Errorf("commit cache holds %d bytes in %d entries, want at most %d bytes", b, p.nodes.Len(), 8<<10)
	}
}
