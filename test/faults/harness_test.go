package faults_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/github/githubtest"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/fluxstatus"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/harness"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/testenv"
)

// full selects the long runs of `make faults` (FAULTS_FULL=1); `make test` runs the short ones.
var full = os.Getenv("FAULTS_FULL") != ""

var (
	env        *testenv.Env
	kubeconfig string
	binary     string
)

func TestMain(m *testing.M) { os.Exit(runSuite(m)) }

func runSuite(m *testing.M) int {
	dir, err := os.MkdirTemp("", "fct-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	if binary, err = harness.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if env, err = testenv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { stopRestarted(); _ = env.Stop() }()
	kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := testenv.WriteKubeconfig(env.Config, kubeconfig, ""); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// fleet is one namespace of Kustomizations on one GitRepository whose history lives in a fake GitHub; it
// plays Flux (writing the statuses kustomize-controller writes) and knows, per object, which commits must be
// recorded: the ground truth the tracker's output is checked against.
type fleet struct {
	t       *testing.T
	ns      string
	gh      *githubtest.Server
	repo    *githubtest.Repo
	t0      time.Time
	objects []string

	mu       sync.Mutex
	history  []commitAt     // main's first-parent history, oldest first
	index    map[string]int // SHA → position in history
	base     map[string]int // object → position of its baseline
	furthest map[string]int // object → furthest position applied
	current  map[string]int // object → position applied now
}

type commitAt struct {
	sha string
	at  time.Time
}

func newFleet(t *testing.T, objects int) *fleet {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "faults-"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	gh := githubtest.NewServer()
	t.Cleanup(gh.Close)
	f := &fleet{t: t, ns: ns.Name, gh: gh, repo: gh.Repo("acme", "manifests"), t0: time.Now().Add(-time.Hour).Truncate(time.Second).UTC(),
		index: map[string]int{}, base: map[string]int{}, furthest: map[string]int{}, current: map[string]int{}}
	src := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "manifests"},
		Spec:       sourcev1.GitRepositorySpec{URL: "https://github.com/acme/manifests", Interval: metav1.Duration{Duration: time.Minute}},
	}
	if err := env.Client.Create(ctx, src); err != nil {
		t.Fatal(err)
	}
	f.push(1)
	for i := range objects {
		name := fmt.Sprintf("app-%02d", i)
		f.objects = append(f.objects, name)
		k := &kustomizev1.Kustomization{
			ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
			Spec: kustomizev1.KustomizationSpec{Interval: metav1.Duration{Duration: time.Minute}, Path: "./", Prune: true,
				SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "manifests"}},
		}
		if err := env.Client.Create(ctx, k); err != nil {
			t.Fatal(err)
		}
		f.base[name], f.furthest[name] = 0, 0
		f.move(name, 0)
	}
	return f
}

// push adds n commits on main, one second apart after the last, and returns the position of the newest.
func (f *fleet) push(n int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		at := f.t0.Add(time.Duration(len(f.history)) * time.Second)
		sha := f.repo.Commit(githubtest.CommitSpec{AuthorTime: at, CommitterTime: at,
			Files: map[string]string{"app.yaml": fmt.Sprintf("replicas: %d\n", len(f.history))}})
		f.index[sha] = len(f.history)
		f.history = append(f.history, commitAt{sha: sha, at: at})
	}
	return len(f.history) - 1
}

// appliedAt is when Flux applies the commit at position pos: a fixed delay after it, so latencies are known.
func (f *fleet) appliedAt(pos int) time.Time { return f.history[pos].at.Add(30 * time.Second) }

// move writes the status kustomize-controller writes after applying the commit at position pos.
func (f *fleet) move(name string, pos int) {
	f.t.Helper()
	f.mu.Lock()
	c := f.history[pos]
	at := f.appliedAt(pos)
	f.current[name] = pos
	f.furthest[name] = max(f.furthest[name], pos)
	f.mu.Unlock()
	ctx := context.Background()
	for attempt := 0; ; attempt++ {
		var k kustomizev1.Kustomization
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: name}, &k)
		if err == nil {
			fluxstatus.Applied(&k, fluxstatus.Revision(c.sha), at)
			err = env.Client.Status().Update(ctx, &k)
		}
		if err == nil {
			return
		}
		if attempt > 300 {
			f.t.Fatalf("move %s: %v", name, err)
		}
		time.Sleep(100 * time.Millisecond) // the apiserver may be restarting
	}
}

// truth is what must be recorded: per object, every commit after its baseline up to the furthest it applied.
func (f *fleet) truth() map[key]time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	want := map[key]time.Duration{}
	for _, name := range f.objects {
		for pos := f.base[name] + 1; pos <= f.furthest[name]; pos++ {
			want[key{name, f.history[pos].sha}] = 0
		}
	}
	return want
}

type key struct{ object, commit string }

// tracker is one flux-commit-tracker process, logging JSON to its own file.
type tracker = harness.Tracker

// startTracker runs the tracker binary against f's namespace with extra flags.
func (f *fleet) startTracker(name string, extra ...string) *tracker {
	f.t.Helper()
	args := append([]string{
		"--kubeconfig", kubeconfig, "--namespace", f.ns, "--watch-namespace", f.ns,
		"--github-api-url", f.gh.URL, "--cluster-name", "faults", "--git-cache-dir", filepath.Join(f.t.TempDir(), "git"),
		"--log-level", "info",
	}, extra...)
	return harness.Start(f.t, binary, name, args, []string{"GITHUB_TOKEN=faults-token"})
}

// recorded reads every "commit applied" line the given trackers logged.
func recorded(t *testing.T, trackers ...*tracker) map[key][]float64 {
	t.Helper()
	got := map[key][]float64{}
	for _, tr := range trackers {
		lines, err := tr.Recorded()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			k := key{l.Name, l.Commit}
			got[k] = append(got[k], l.ReconcileSeconds)
		}
	}
	return got
}

// explain logs what the trackers said about each lost commit's object, for a failure message.
func explain(t *testing.T, v verdict, trackers ...*tracker) {
	t.Helper()
	for i, k := range v.lost {
		if i == 3 {
			break
		}
		for _, tr := range trackers {
			b, _ := os.ReadFile(tr.LogPath)
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, `"name":"`+k.object+`"`) && !strings.Contains(line, "commit applied") {
					t.Logf("%s lost %s; %s said: %.400s", k.object, k.commit[:7], tr.Name, line)
				}
			}
		}
	}
}

// quiet reads what the trackers recorded once their logs have stopped growing: a log line follows its ledger
// write, and a loaded machine may hold it back a moment.
func quiet(t *testing.T, trackers ...*tracker) map[key][]float64 {
	t.Helper()
	count := func(m map[key][]float64) (n int) {
		for _, s := range m {
			n += len(s)
		}
		return n
	}
	got := recorded(t, trackers...)
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		time.Sleep(1500 * time.Millisecond)
		again := recorded(t, trackers...)
		if count(again) == count(got) {
			return again
		}
		got = again
	}
	return got
}

// marks reads the ledger: per object, the furthest recorded position.
func (f *fleet) marks() map[string]int {
	f.t.Helper()
	out := map[string]int{}
	entries, err := harness.Ledger(context.Background(), env.Client, f.ns)
	if err != nil {
		return out // the apiserver may be restarting
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range entries {
		if pos, ok := f.index[strings.TrimPrefix(e.Mark(), "main@sha1:")]; ok {
			out[e.Name] = pos
		}
	}
	return out
}

// settled waits until the ledger's mark of every object is its furthest applied position.
func (f *fleet) settled(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		m := f.marks()
		done := true
		f.mu.Lock()
		for _, name := range f.objects {
			if pos, ok := m[name]; !ok || pos != f.furthest[name] {
				done = false // no entry yet is not a mark at the first commit
			}
		}
		f.mu.Unlock()
		if done {
			time.Sleep(500 * time.Millisecond) // the log line follows the ledger write
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

// baselined waits until the tracker has seen every object at its first revision: commits before an object's
// first sight are not its to record.
func (f *fleet) baselined(t *testing.T) {
	t.Helper()
	if !f.settled(time.Minute) {
		t.Fatal("tracker did not take every object's baseline")
	}
}

// verdict compares what the trackers logged with the ground truth.
type verdict struct {
	want, recorded, twice, missed, lostInWindow int
	// lostObjects counts the objects with commits lost in the window: at most one apply each per crash.
	lostObjects int
	lost        []key
}

func (f *fleet) judge(trackers ...*tracker) (v verdict) {
	f.t.Helper()
	want := f.truth()
	got := quiet(f.t, trackers...)
	v.want = len(want)
	for k, seconds := range got {
		if _, ok := want[k]; !ok {
			f.t.Errorf("%s recorded for %s, which it never delivered after its baseline", k.commit[:7], k.object)
			continue
		}
		v.recorded++
		if len(seconds) > 1 {
			v.twice++
			f.t.Errorf("%s recorded %d times for %s", k.commit[:7], len(seconds), k.object)
		}
	}
	// A commit not logged though the ledger moved past it was lost between the ledger write and the log
	// line: the documented window of a crash.
	marks := f.marks()
	lost := map[string]bool{}
	defer func() { v.lostObjects = len(lost) }()
	for k := range want {
		if _, ok := got[k]; ok {
			continue
		}
		f.mu.Lock()
		pos := f.index[k.commit]
		f.mu.Unlock()
		if marks[k.object] >= pos {
			v.lostInWindow++
			lost[k.object] = true
			v.lost = append(v.lost, k)
		} else {
			v.missed++
		}
	}
	return v
}

// drive pushes revisions and moves random objects forward (and now and then back, then forward again), calling
// between after each revision.
func (f *fleet) drive(rng *rand.Rand, revisions int, between func(i int)) {
	for i := range revisions {
		head := f.push(1 + rng.IntN(3))
		for _, name := range f.objects {
			switch r := rng.IntN(10); {
			case r < 6:
				f.move(name, head)
			case r == 6 && f.current[name] > f.base[name]:
				f.move(name, f.base[name]+rng.IntN(f.current[name]-f.base[name])) // a rollback
			}
		}
		if between != nil {
			between(i)
		}
		time.Sleep(time.Duration(20+rng.IntN(60)) * time.Millisecond)
	}
	head := len(f.history) - 1
	for _, name := range f.objects {
		f.move(name, head)
	}
}
