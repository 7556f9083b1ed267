package git_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/git"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/git/gittest"
)

// anyRepo is what callers pass as commits.Repository; the git provider ignores it.
var anyRepo = commits.Repository{Host: "example.com", Owner: "o", Name: "n"}

// calls counts OnCall outcomes.
type calls struct {
	mu sync.Mutex
	n  map[commits.CallOutcome]int
}

func (c *calls) record(_ context.Context, o commits.CallOutcome) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[o]++
}

func (c *calls) get(o commits.CallOutcome) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[o]
}

// fixture is a served repository and a provider for it.
type fixture struct {
	srv   *gittest.Server
	repo  *gittest.Repo
	git   *git.Provider
	p     commits.Provider
	calls *calls
	cache string
}

func newFixture(t *testing.T, opts ...func(*git.Options)) *fixture {
	t.Helper()
	root := t.TempDir()
	f := &fixture{srv: gittest.NewHTTPServer(t, root), repo: gittest.NewRepo(t, filepath.Join(root, "manifests")), calls: &calls{n: map[commits.CallOutcome]int{}}}
	f.cache = t.TempDir()
	f.git = newProvider(t, f.cache, f.calls, opts...)
	f.p = f.git.ForURL(f.srv.URL("manifests"))
	return f
}

func newProvider(t *testing.T, cache string, c *calls, opts ...func(*git.Options)) *git.Provider {
	t.Helper()
	o := git.Options{CacheDir: cache, OnCall: c.record, RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond}
	for _, opt := range opts {
		opt(&o)
	}
	p, err := git.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// requests returns the server's ref advertisements and upload-pack POSTs so far.
func (f *fixture) requests() (infoRefs, uploadPacks int64) {
	return f.srv.InfoRefs(), f.srv.UploadPacks()
}

func (f *fixture) wantRequests(t *testing.T, infoRefs, uploadPacks int64) {
	t.Helper()
	if gi, gu := f.requests(); gi != infoRefs || gu != uploadPacks {
		t.Fatalf("server saw %d ref advertisements and %d upload-pack POSTs, want %d and %d", gi, gu, infoRefs, uploadPacks)
	}
}

func (f *fixture) rangeOf(t *testing.T, base, head string) commits.Range {
	t.Helper()
	r, err := f.p.Range(context.Background(), anyRepo, base, head)
	if err != nil {
		t.Fatalf("Range(%.7s, %.7s): %v", base, head, err)
	}
	return r
}

func shas(cs []commits.Commit) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.SHA
	}
	return out
}

// wantAhead checks r against git's own first-parent log of base..head.
func (f *fixture) wantAhead(t *testing.T, r commits.Range, base, head string) {
	t.Helper()
	want := f.repo.RevList("--first-parent", "--reverse", base+".."+head)
	if r.Status != commits.Ahead || !slices.Equal(shas(r.Commits), want) || r.Truncated != 0 {
		t.Fatalf("got %s %v (truncated %d), want ahead %v", r.Status, shas(r.Commits), r.Truncated, want)
	}
}

func TestCommitMetadata(t *testing.T) {
	f := newFixture(t)
	first := f.repo.Commit("first line\n\nbody", map[string]string{"a.txt": "a"})
	f.repo.Git("checkout", "-q", "-b", "side")
	side := f.repo.Commit("side", nil)
	f.repo.Git("checkout", "-q", "main")
	// An author date apart from the committer date, in another zone.
	f.repo.Git("commit", "-q", "--allow-empty", "-m", "authored earlier", "--date=@1600000000 +0200")
	authored := f.repo.Head()
	f.repo.Now = f.repo.Now.Add(time.Minute)
	merge := f.repo.Merge("side", "merge side")

	c, err := f.p.Commit(context.Background(), anyRepo, first)
	if err != nil {
		t.Fatal(err)
	}
	want := commits.Commit{
		SHA: first, Message: "first line\n\nbody", AuthorName: gittest.AuthorName, AuthorEmail: gittest.AuthorEmail,
		AuthorTime: gittest.DefaultStart, CommitterTime: gittest.DefaultStart,
	}
	if c.SHA != want.SHA || c.Message != want.Message || c.AuthorName != want.AuthorName || c.AuthorEmail != want.AuthorEmail ||
		!c.AuthorTime.Equal(want.AuthorTime) || !c.CommitterTime.Equal(want.CommitterTime) || len(c.Parents) != 0 {
		t.Fatalf("got %+v, want %+v", c, want)
	}

	c, err = f.p.Commit(context.Background(), anyRepo, authored)
	if err != nil {
		t.Fatal(err)
	}
	if _, offset := c.AuthorTime.Zone(); !c.AuthorTime.Equal(time.Unix(1600000000, 0)) || offset != 2*3600 {
		t.Errorf("author time %s, want 2020-09-13T14:26:40+02:00", c.AuthorTime)
	}
	if !c.CommitterTime.Equal(gittest.DefaultStart.Add(2*time.Minute)) || c.Time(commits.AuthorTime) != c.AuthorTime {
		t.Errorf("committer time %s", c.CommitterTime)
	}

	// Upper-case SHAs name the same commit; parents come first parent first.
	c, err = f.p.Commit(context.Background(), anyRepo, strings.ToUpper(merge))
	if err != nil {
		t.Fatal(err)
	}
	if c.SHA != merge || !slices.Equal(c.Parents, []string{authored, side}) {
		t.Fatalf("merge %s parents %v, want %s [%s %s]", c.SHA, c.Parents, merge, authored, side)
	}
	f.wantRequests(t, 1, 1)
	if f.calls.get(commits.CallSuccess) != 1 || f.calls.get(commits.CallCacheHit) != 2 {
		t.Fatalf("calls %v", f.calls.n)
	}
}

func TestRange(t *testing.T) {
	f := newFixture(t)
	r := f.repo
	b0 := r.Commit("b0", nil)
	r.Git("checkout", "-q", "-b", "side")
	s1 := r.Commit("s1", nil)
	s2 := r.Commit("s2", nil)
	r.Git("checkout", "-q", "main")
	m1 := r.Commit("m1", nil)
	merge1 := r.Merge("side", "merge side")
	m2 := r.Commit("m2", nil)
	r.Git("checkout", "-q", "-b", "side2")
	t1 := r.Commit("t1", nil)
	r.Git("checkout", "-q", "main")
	merge2 := r.Merge("side2", "merge side2")
	m3 := r.Commit("m3", nil)

	t.Run("identical", func(t *testing.T) {
		if got := f.rangeOf(t, m2, m2); got.Status != commits.Identical || len(got.Commits) != 0 {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("ahead on first parents only", func(t *testing.T) {
		got := f.rangeOf(t, b0, m3)
		f.wantAhead(t, got, b0, m3)
		if want := []string{m1, merge1, m2, merge2, m3}; !slices.Equal(shas(got.Commits), want) {
			t.Fatalf("got %v, want %v", shas(got.Commits), want)
		}
		if got.Commits[1].Message != "merge side" || !slices.Equal(got.Commits[1].Parents, []string{m1, s2}) {
			t.Fatalf("merge commit %+v", got.Commits[1])
		}
	})
	t.Run("ahead by one", func(t *testing.T) { f.wantAhead(t, f.rangeOf(t, merge2, m3), merge2, m3) })
	t.Run("base on a merged side branch", func(t *testing.T) {
		// The chain from head stops where it meets base's history: b0 here, so m1 counts as delivered.
		got := f.rangeOf(t, s1, m3)
		f.wantAhead(t, got, s1, m3)
		if got.Commits[0].SHA != m1 {
			t.Fatalf("got %v", shas(got.Commits))
		}
	})
	t.Run("base at a merged side branch tip", func(t *testing.T) { f.wantAhead(t, f.rangeOf(t, t1, m3), t1, m3) })
	t.Run("behind", func(t *testing.T) {
		for _, c := range [][2]string{{m3, m1}, {m3, s1}, {merge1, b0}} {
			if got := f.rangeOf(t, c[0], c[1]); got.Status != commits.Behind || len(got.Commits) != 0 {
				t.Fatalf("%.7s..%.7s: got %+v", c[0], c[1], got)
			}
		}
	})
	t.Run("diverged siblings", func(t *testing.T) {
		if got := f.rangeOf(t, s2, m1); got.Status != commits.Diverged || len(got.Commits) != 0 {
			t.Fatalf("got %+v", got)
		}
	})
}

func TestRangeForcePush(t *testing.T) {
	f := newFixture(t)
	r := f.repo
	c1 := r.Commit("c1", nil)
	c2 := r.Commit("c2", nil)
	old := r.Commit("old", nil)
	f.rangeOf(t, c1, old) // mirrored before the force-push

	r.Git("reset", "-q", "--hard", c2)
	forced := r.Commit("forced", nil)
	for _, c := range [][2]string{{old, forced}, {forced, old}} {
		if got := f.rangeOf(t, c[0], c[1]); got.Status != commits.Diverged {
			t.Fatalf("%.7s..%.7s: got %+v, want diverged", c[0], c[1], got)
		}
	}
	// Rolling back to an ancestor is behind.
	if got := f.rangeOf(t, forced, c1); got.Status != commits.Behind {
		t.Fatalf("got %+v, want behind", got)
	}

	// A commit force-pushed away before the mirror ever saw it cannot be fetched: not found.
	lost := r.Commit("lost", nil)
	r.Git("reset", "-q", "--hard", forced)
	_, err := f.p.Range(context.Background(), anyRepo, forced, lost)
	if !errors.Is(err, commits.ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}

	// Unrelated histories diverge.
	r.Git("checkout", "-q", "--orphan", "other")
	orphan := r.Commit("orphan", nil)
	if got := f.rangeOf(t, forced, orphan); got.Status != commits.Diverged {
		t.Fatalf("got %+v, want diverged", got)
	}
}

func TestRangeTruncation(t *testing.T) {
	f := newFixture(t)
	base := f.repo.Commit("base", nil)
	generated := f.repo.FastImport(600)
	for _, tc := range []struct {
		n, truncated int
	}{{commits.MaxRangeCommits, 0}, {commits.MaxRangeCommits + 1, 1}, {600, 600 - commits.MaxRangeCommits}} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			from, head := base, generated[tc.n-1]
			if tc.n < 600 {
				from = generated[599-tc.n]
				head = generated[599]
			}
			got := f.rangeOf(t, from, head)
			want := f.repo.RevList("--first-parent", "--reverse", from+".."+head)
			if len(want) != tc.n {
				t.Fatalf("fixture: %d commits", len(want))
			}
			if got.Status != commits.Ahead || got.Truncated != tc.truncated || !slices.Equal(shas(got.Commits), want[tc.truncated:]) {
				t.Fatalf("got %s, %d commits from %.7s, truncated %d; want %d from %.7s, truncated %d",
					got.Status, len(got.Commits), got.Commits[0].SHA, got.Truncated, len(want)-tc.truncated, want[tc.truncated], tc.truncated)
			}
		})
	}
}

func TestFile(t *testing.T) {
	f := newFixture(t)
	info := `{"commit":"abc","commits_since_last_export":[]}`
	c1 := f.repo.Commit("exported", map[string]string{
		"exporter-info.json":        info,
		"deploy/exporter-info.json": "nested",
		"big.bin":                   strings.Repeat("x", 2000),
	})
	ctx := context.Background()
	read := func(path string, max int64) ([]byte, error) { return f.p.File(ctx, anyRepo, c1, path, max) }

	for _, path := range []string{"exporter-info.json", "/exporter-info.json", "./exporter-info.json"} {
		got, err := read(path, 1<<20)
		if err != nil || string(got) != info {
			t.Fatalf("%s: %q, %v", path, got, err)
		}
	}
	if got, err := read("deploy/exporter-info.json", 6); err != nil || string(got) != "nested" {
		t.Fatalf("nested at its exact size: %q, %v", got, err)
	}
	for _, path := range []string{"missing.json", "deploy/missing.json", "nope/exporter-info.json", "exporter-info.json/x"} {
		if _, err := read(path, 1<<20); !errors.Is(err, commits.ErrNotFound) {
			t.Fatalf("%s: got %v, want ErrNotFound", path, err)
		}
	}
	if _, err := read("deploy", 1<<20); err == nil || errors.Is(err, commits.ErrNotFound) {
		t.Fatalf("a directory: got %v, want an error other than ErrNotFound", err)
	}
	if _, err := read("big.bin", 1000); !errors.Is(err, commits.ErrTooLarge) || !strings.Contains(err.Error(), "2000 bytes") {
		t.Fatalf("big file: got %v, want ErrTooLarge naming its size", err)
	}
	// Cached contents are checked against each caller's limit.
	if _, err := read("exporter-info.json", 10); !errors.Is(err, commits.ErrTooLarge) {
		t.Fatalf("cached file over a smaller limit: got %v", err)
	}
	// Files at a commit the repository does not have: not found, after one fetch (and one advertisement
	// telling that the server does not serve fetches by SHA).
	if _, err := f.p.File(ctx, anyRepo, strings.Repeat("ab", 20), "exporter-info.json", 1<<20); !errors.Is(err, commits.ErrNotFound) {
		t.Fatalf("missing commit: got %v, want ErrNotFound", err)
	}
	f.wantRequests(t, 3, 1)
}

// TestIncrementalFetch checks that a lookup fetches only when the mirror lacks what it needs, and then
// once, and that everything the fetch brought is answered locally afterwards.
func TestIncrementalFetch(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c1 := f.repo.Commit("c1", map[string]string{"exporter-info.json": "1"})
	if _, err := f.p.Commit(ctx, anyRepo, c1); err != nil {
		t.Fatal(err)
	}
	f.wantRequests(t, 1, 1)
	if _, err := f.p.Commit(ctx, anyRepo, c1); err != nil {
		t.Fatal(err)
	}
	f.wantRequests(t, 1, 1)

	c2 := f.repo.Commit("c2", map[string]string{"exporter-info.json": "2"})
	c3 := f.repo.Commit("c3", map[string]string{"exporter-info.json": "3"})
	f.wantAhead(t, f.rangeOf(t, c1, c3), c1, c3)
	f.wantRequests(t, 2, 2)

	// Everything up to c3 is local now.
	f.wantAhead(t, f.rangeOf(t, c1, c3), c1, c3)
	f.wantAhead(t, f.rangeOf(t, c2, c3), c2, c3)
	if got, err := f.p.File(ctx, anyRepo, c2, "exporter-info.json", 10); err != nil || string(got) != "2" {
		t.Fatalf("File: %q, %v", got, err)
	}
	f.wantRequests(t, 2, 2)
	if s, h := f.calls.get(commits.CallSuccess), f.calls.get(commits.CallCacheHit); s != 2 || h != 4 {
		t.Fatalf("calls: %d success, %d cache hits; want 2 and 4", s, h)
	}

	// A second provider on the same cache directory (a restart) answers from the mirror on disk.
	again := newProvider(t, f.cache, &calls{n: map[commits.CallOutcome]int{}}).ForURL(f.srv.URL("manifests"))
	if r, err := again.Range(ctx, anyRepo, c1, c3); err != nil || len(r.Commits) != 2 {
		t.Fatalf("after restart: %+v, %v", r, err)
	}
	f.wantRequests(t, 2, 2)
}

// TestConcurrentLookupsShareOneFetch has many lookups of a new revision at once: one fetch serves all.
func TestConcurrentLookupsShareOneFetch(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	base := f.repo.Commit("base", nil)
	f.rangeOf(t, base, base)
	if _, err := f.p.Commit(ctx, anyRepo, base); err != nil {
		t.Fatal(err)
	}
	f.wantRequests(t, 1, 1)

	head := f.repo.Commit("new", map[string]string{"exporter-info.json": "{}"})
	const n = 20
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			var err error
			switch i % 4 {
			case 0:
				var r commits.Range
				if r, err = f.p.Range(ctx, anyRepo, base, head); err == nil && (r.Status != commits.Ahead || len(r.Commits) != 1) {
					err = fmt.Errorf("range %+v", r)
				}
			case 1:
				_, err = f.p.Commit(ctx, anyRepo, head)
			case 2:
				_, err = f.p.File(ctx, anyRepo, head, "exporter-info.json", 100)
			default:
				_, err = f.p.Range(ctx, anyRepo, base, head)
			}
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	f.wantRequests(t, 2, 2)
	if s := f.calls.get(commits.CallSuccess); s != 2 {
		t.Fatalf("%d fetches counted, want 2", s)
	}
}

// closedAddr returns a local address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestUnreachableRepository(t *testing.T) {
	addr := closedAddr(t)
	c := &calls{n: map[commits.CallOutcome]int{}}
	p := newProvider(t, t.TempDir(), c, func(o *git.Options) { o.MaxRetries = 2 }).ForURL("http://" + addr + "/repo.git")

	_, err := p.Commit(context.Background(), anyRepo, strings.Repeat("ab", 20))
	if err == nil || errors.Is(err, commits.ErrNotFound) {
		t.Fatalf("got %v, want a fetch error that is not ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name the repository", err)
	}
	if got := c.get(commits.CallError); got != 3 {
		t.Fatalf("%d failed fetches counted, want 3 (1 + 2 retries)", got)
	}
}

func TestRepositoryNotFoundIsNotRetried(t *testing.T) {
	f := newFixture(t)
	p := f.git.ForURL(f.srv.URL("no-such-repo"))
	_, err := p.Range(context.Background(), anyRepo, strings.Repeat("ab", 20), strings.Repeat("cd", 20))
	if !errors.Is(err, transport.ErrRepositoryNotFound) || errors.Is(err, commits.ErrNotFound) {
		t.Fatalf("got %v, want transport.ErrRepositoryNotFound and not commits.ErrNotFound", err)
	}
	f.wantRequests(t, 1, 0)
	if got := f.calls.get(commits.CallError); got != 1 {
		t.Fatalf("%d failed fetches counted, want 1", got)
	}
}

func TestServerErrorsAreRetried(t *testing.T) {
	f := newFixture(t)
	c1 := f.repo.Commit("c1", nil)
	f.srv.FailNext(2, http.StatusServiceUnavailable)
	if _, err := f.p.Commit(context.Background(), anyRepo, c1); err != nil {
		t.Fatal(err)
	}
	if e, s := f.calls.get(commits.CallError), f.calls.get(commits.CallSuccess); e != 2 || s != 1 {
		t.Fatalf("calls: %d errors, %d successes; want 2 and 1", e, s)
	}
}

func TestMissingCommit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c1 := f.repo.Commit("c1", nil)
	missing := strings.Repeat("0123456789", 4)

	for _, err := range []error{
		func() error { _, err := f.p.Commit(ctx, anyRepo, missing); return err }(),
		func() error { _, err := f.p.Range(ctx, anyRepo, c1, missing); return err }(),
		func() error { _, err := f.p.Range(ctx, anyRepo, missing, c1); return err }(),
	} {
		if !errors.Is(err, commits.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
	}
	// One fetch each: a missing SHA is looked for again (it may have been pushed since), never guessed. The
	// first also asked for it by SHA, which this server refuses, so the others do not.
	f.wantRequests(t, 4, 1)

	// Names that are not full SHA-1s are not found without asking the server.
	for _, name := range []string{"main", c1[:12], strings.Repeat("a", 64), strings.Repeat("g", 40)} {
		if _, err := f.p.Commit(ctx, anyRepo, name); !errors.Is(err, commits.ErrNotFound) {
			t.Fatalf("%s: got %v, want ErrNotFound", name, err)
		}
	}
	// A tree or blob SHA is not a commit.
	tree := f.repo.Git("rev-parse", c1+"^{tree}")
	if _, err := f.p.Commit(ctx, anyRepo, tree); !errors.Is(err, commits.ErrNotFound) {
		t.Fatalf("tree: got %v, want ErrNotFound", err)
	}
	f.wantRequests(t, 4, 1)
}

func TestURLs(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c1 := f.repo.Commit("c1", nil)
	plain := f.srv.URL("manifests")
	withCredentials := strings.Replace(plain, "http://", "http://user:s3cret@", 1)

	// Credentials are dropped: the same mirror, fetched anonymously, found on disk under a hash.
	for _, u := range []string{withCredentials, plain + "/", strings.ToUpper("http://") + strings.TrimPrefix(plain, "http://")} {
		if _, err := f.git.ForURL(u).Commit(ctx, anyRepo, c1); err != nil {
			t.Fatalf("%s: %v", u, err)
		}
	}
	f.wantRequests(t, 1, 1)
	entries, err := os.ReadDir(f.cache)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || len(entries[0].Name()) != 36 || !strings.HasSuffix(entries[0].Name(), ".git") {
		t.Fatalf("cache directory holds %v, want one <hash>.git", entries)
	}
	err = filepath.WalkDir(f.cache, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err == nil && (strings.Contains(string(data), "s3cret") || strings.Contains(string(data), "127.0.0.1")) {
			t.Errorf("%s holds the URL or its credentials", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// file:// works (tests, local mirrors).
	if _, err := f.git.ForURL("file://"+f.repo.Dir).Commit(ctx, anyRepo, c1); err != nil {
		t.Fatal(err)
	}

	for _, bad := range []string{"", "not a url", "ftp://host/repo", "https://host", "/local/path", "https://host/r?x=1"} {
		_, err := f.git.ForURL(bad).Commit(ctx, anyRepo, c1)
		if err == nil || errors.Is(err, commits.ErrNotFound) {
			t.Fatalf("%q: got %v, want an invalid URL error", bad, err)
		}
	}
}

// TestCallerCancellation checks that a caller whose context ends stops waiting while the fetch it
// started keeps going for others, and that Close ends it.
func TestCallerCancellation(t *testing.T) {
	addr := closedAddr(t)
	c := &calls{n: map[commits.CallOutcome]int{}}
	p := newProvider(t, t.TempDir(), c, func(o *git.Options) {
		o.MaxRetries, o.RetryWaitMin, o.RetryWaitMax = 100, time.Hour, time.Hour
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.ForURL("http://"+addr+"/r.git").Commit(ctx, anyRepo, strings.Repeat("ab", 20))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("got %v after %s, want the caller's deadline", err, time.Since(start))
	}
	done := make(chan error)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the retrying fetch")
	}
	if _, err := p.ForURL("http://"+addr+"/r.git").Commit(context.Background(), anyRepo, strings.Repeat("ab", 20)); !errors.Is(err, git.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestDefaultCacheDir(t *testing.T) {
	if dir := git.DefaultCacheDir(); !strings.HasSuffix(dir, filepath.Join("flux-commit-tracker", "git")) || !filepath.IsAbs(dir) {
		t.Fatalf("DefaultCacheDir() = %q", dir)
	}
	t.Setenv("HOME", "")
	t.Setenv("XDG_CACHE_HOME", "")
	if dir := git.DefaultCacheDir(); !strings.HasPrefix(dir, os.TempDir()) {
		t.Fatalf("without a home: %q", dir)
	}
}

// TestLookupsDuringFetches reads old commits and files while other lookups fetch new ones: reads of
// the mirror go on beside fetches into it (run with -race).
func TestLookupsDuringFetches(t *testing.T) {
	f := newFixture(t, func(o *git.Options) { o.CacheBytes = 1024 }) // commits are read from the mirror, not memory
	ctx := context.Background()
	base := f.repo.Commit("base", map[string]string{"exporter-info.json": "base"})
	old := f.repo.FastImport(100)
	f.wantAhead(t, f.rangeOf(t, base, old[99]), base, old[99])

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads int
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				reads = i
				return
			default:
			}
			if _, err := f.p.Commit(ctx, anyRepo, old[i%100]); err != nil {
				t.Error(err)
				return
			}
			if got, err := f.p.File(ctx, anyRepo, base, "exporter-info.json", 100); err != nil || string(got) != "base" {
				t.Errorf("File: %q, %v", got, err)
				return
			}
		}
	})
	prev := old[99]
	for i := range 10 {
		head := f.repo.Commit(fmt.Sprintf("new %d", i), map[string]string{"exporter-info.json": fmt.Sprint(i)})
		f.wantAhead(t, f.rangeOf(t, prev, head), prev, head)
		if got, err := f.p.File(ctx, anyRepo, head, "exporter-info.json", 100); err != nil || string(got) != fmt.Sprint(i) {
			t.Fatalf("File at new head: %q, %v", got, err)
		}
		prev = head
	}
	close(stop)
	wg.Wait()
	f.wantRequests(t, 11, 11)
	t.Logf("%d local reads beside 10 fetches", reads)
}
