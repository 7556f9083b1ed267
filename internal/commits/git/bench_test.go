package git_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/git"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/git/gittest"
)

const bigHistory = 10000

// big is a 10,000-commit linear repository and a mirror of it, built once per test binary.
var big struct {
	once   sync.Once
	tmp    string
	url    string
	cache  string
	mirror string
	shas   []string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if big.tmp != "" {
		_ = os.RemoveAll(big.tmp)
	}
	os.Exit(code)
}

func bigFixture(b *testing.B) {
	b.Helper()
	big.once.Do(func() {
		tmp, err := os.MkdirTemp("", "git-bench-")
		if err != nil {
			b.Fatal(err)
		}
		big.tmp = tmp
		repo := gittest.NewRepo(b, filepath.Join(tmp, "repo"))
		big.shas = repo.FastImport(bigHistory)
		big.url = "file://" + repo.Dir
		big.cache = filepath.Join(tmp, "cache")
		p, err := git.New(git.Options{CacheDir: big.cache})
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = p.Close() }()
		if _, err := p.ForURL(big.url).Commit(context.Background(), anyRepo, big.shas[bigHistory-1]); err != nil {
			b.Fatal(err)
		}
		entries, err := os.ReadDir(big.cache)
		if err != nil || len(entries) != 1 {
			b.Fatalf("mirror: %v, %v", entries, err)
		}
		big.mirror = filepath.Join(big.cache, entries[0].Name())
	})
	if big.shas == nil {
		b.Fatal("fixture failed")
	}
}

func benchProvider(b *testing.B) commits.Provider {
	b.Helper()
	p, err := git.New(git.Options{CacheDir: big.cache})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	return p.ForURL(big.url)
}

func rangeOK(b *testing.B, p commits.Provider, base, head string, status commits.RangeStatus, n int) {
	r, err := p.Range(context.Background(), anyRepo, base, head)
	if err != nil || r.Status != status || len(r.Commits) != n {
		b.Fatalf("Range: %s with %d commits, %v", r.Status, len(r.Commits), err)
	}
}

// BenchmarkRange250Of10000Warm is the steady state: a new revision 250 commits ahead, commits parsed.
func BenchmarkRange250Of10000Warm(b *testing.B) {
	bigFixture(b)
	p := benchProvider(b)
	base, head := big.shas[bigHistory-251], big.shas[bigHistory-1]
	rangeOK(b, p, base, head, commits.Ahead, 250)
	b.ReportAllocs()
	for b.Loop() {
		rangeOK(b, p, base, head, commits.Ahead, 250)
	}
}

// BenchmarkRangeCold is the first range after a restart: mirror on disk, nothing in memory.
func BenchmarkRangeCold(b *testing.B) {
	bigFixture(b)
	base, head := big.shas[bigHistory-251], big.shas[bigHistory-1]
	b.ReportAllocs()
	for b.Loop() {
		p, err := git.New(git.Options{CacheDir: big.cache})
		if err != nil {
			b.Fatal(err)
		}
		rangeOK(b, p.ForURL(big.url), base, head, commits.Ahead, 250)
		_ = p.Close()
	}
}

// BenchmarkRangeBehind250Of10000Warm is a rollback by 250 commits: the walk stops at the merge base.
func BenchmarkRangeBehind250Of10000Warm(b *testing.B) {
	bigFixture(b)
	p := benchProvider(b)
	base, head := big.shas[bigHistory-1], big.shas[bigHistory-251]
	rangeOK(b, p, base, head, commits.Behind, 0)
	b.ReportAllocs()
	for b.Loop() {
		rangeOK(b, p, base, head, commits.Behind, 0)
	}
}

// BenchmarkGoGitIsAncestorFalse10000 is the same rollback question asked of go-git's
// (*object.Commit).IsAncestor, which walks the whole history below the younger commit when the answer
// is no: the reason the provider paints from both ends instead.
func BenchmarkGoGitIsAncestorFalse10000(b *testing.B) {
	bigFixture(b)
	repo, err := gogit.PlainOpen(big.mirror)
	if err != nil {
		b.Fatal(err)
	}
	newer, err := repo.CommitObject(plumbing.NewHash(big.shas[bigHistory-1]))
	if err != nil {
		b.Fatal(err)
	}
	older, err := repo.CommitObject(plumbing.NewHash(big.shas[bigHistory-251]))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, err := newer.IsAncestor(older); err != nil || ok {
			b.Fatal(ok, err)
		}
	}
}
