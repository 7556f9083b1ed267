package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/app"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/github/githubtest"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/locate"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/fluxstatus"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/testenv"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

// wantGolden fails unless got is testdata/name; with -update it rewrites the file first.
func wantGolden(t *testing.T, name, got string) {
	t.Helper()
	got = unfreshen(got)
	golden := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (rerun with -update to accept):\n%s", golden, got)
	}
}

// namespaceRuns counts, by base name, the namespaces freshNamespace handed out: envtest never removes one, so a
// test run again in the process (-count) needs another.
var namespaceRuns = struct {
	sync.Mutex
	n     map[string]int
	fresh map[string]string
}{n: map[string]int{}, fresh: map[string]string{}}

// freshNamespace is base the first time, then base with its last letter turned into 2, 3, … (so that tables
// keep their widths): where, wher2, wher3.
func freshNamespace(base string) string {
	namespaceRuns.Lock()
	defer namespaceRuns.Unlock()
	namespaceRuns.n[base]++
	if n := namespaceRuns.n[base]; n > 1 {
		ns := base[:len(base)-1] + strconv.Itoa(n)
		namespaceRuns.fresh[ns] = base
		return ns
	}
	return base
}

// unfreshen writes the namespaces freshNamespace handed out as their base names, for golden files.
func unfreshen(s string) string {
	namespaceRuns.Lock()
	defer namespaceRuns.Unlock()
	for ns, base := range namespaceRuns.fresh {
		s = strings.ReplaceAll(s, ns, base)
	}
	return s
}

// fleet is two clusters ("one", "two") and an unreachable one ("down") in one kubeconfig, with a GitHub fake
// holding main c0 → c1 → c2 and c3 on a branch of its own, at fixed times.
type fleet struct {
	t          *testing.T
	gh         *githubtest.Server
	kubeconfig string
	one, two   client.Client
	ns         string // the namespace of the objects in both clusters (envtest never removes one)
	c          [4]string
	base       time.Time
	summary    string // GITHUB_STEP_SUMMARY
}

func newFleet(t *testing.T, base string) *fleet {
	t.Helper()
	ns := freshNamespace(base)
	env2, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env2.Stop() })
	f := &fleet{t: t, ns: ns, gh: githubtest.NewServer(), one: env.Client, two: env2.Client, base: time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)}
	t.Cleanup(f.gh.Close)
	f.summary = filepath.Join(t.TempDir(), "summary.md")
	repo := f.gh.Repo("acme", "manifests")
	for i, spec := range []githubtest.CommitSpec{
		{Message: "initial", Files: map[string]string{"app.yaml": "v0"}},
		{Message: "add web\n\nwith a body", Files: map[string]string{"app.yaml": "v1"}},
		{Message: "scale web", Files: map[string]string{"app.yaml": "v2"}},
		{Message: "experiment", Files: map[string]string{"app.yaml": "x"}, Branch: "feature"},
	} {
		spec.AuthorName, spec.AuthorTime = "Ada", f.at(100*i)
		if i == 3 {
			spec.Parents, spec.AuthorTime = []string{f.c[1]}, f.at(110)
		}
		f.c[i] = repo.Commit(spec)
	}
	down := &rest.Config{Host: "https://127.0.0.1:1"}
	f.kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	if err := testenv.WriteContexts(f.kubeconfig, testenv.Context{Name: "one", Config: env.Config, Namespace: ns},
		testenv.Context{Name: "two", Config: env2.Config, Namespace: ns}, testenv.Context{Name: "down", Config: down, Namespace: ns}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []client.Client{f.one, f.two} {
		if err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fleet) at(sec int) time.Time { return f.base.Add(time.Duration(sec) * time.Second) }

// source creates the GitRepository manifests (branch main) in c, fetched at commit sha at sec.
func (f *fleet) source(c client.Client, sha string, sec int) {
	f.t.Helper()
	gr := &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "manifests"},
		Spec: sourcev1.GitRepositorySpec{URL: "https://github.com/acme/manifests.git", Interval: metav1.Duration{Duration: time.Minute},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"}}}
	ctx := context.Background()
	if err := c.Create(ctx, gr); err != nil {
		f.t.Fatal(err)
	}
	fluxstatus.Fetched(gr, sha, f.at(sec))
	if err := c.Status().Update(ctx, gr); err != nil {
		f.t.Fatal(err)
	}
}

// kustomization creates name in c on the GitRepository, with the status set writes; it returns its UID.
func (f *fleet) kustomization(c client.Client, name string, set func(*kustomizev1.Kustomization)) string {
	f.t.Helper()
	k := &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: kustomizev1.KustomizationSpec{Interval: metav1.Duration{Duration: time.Minute}, Path: "./", Prune: true,
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "manifests"}}}
	ctx := context.Background()
	if err := c.Create(ctx, k); err != nil {
		f.t.Fatal(err)
	}
	set(k)
	if err := c.Status().Update(ctx, k); err != nil {
		f.t.Fatal(err)
	}
	return string(k.UID)
}

// run runs the command line and returns its exit code, stdout and stderr.
func (f *fleet) run(args ...string) (int, string, string) {
	f.t.Helper()
	var out, errOut bytes.Buffer
	all := append(args, "--kubeconfig", f.kubeconfig, "--github-api-url", f.gh.URL, "--git-cache-dir", f.t.TempDir(),
		"--tracker-namespace", f.ns, "--request-timeout", "5s")
	code := app.Run(context.Background(), all, app.Deps{Getenv: func(k string) string {
		if k == "GITHUB_STEP_SUMMARY" {
			return f.summary
		}
		return ""
	}, Stdout: &out, Stderr: &errOut})
	return code, out.String(), errOut.String()
}

// setUp makes the fleet of the where and wait tests:
//   - one: web applied c0, c1, c2 (recorded by the tracker), db applied c1 (not recorded), api applied c1
//     and failing on c2;
//   - two: its source fetched c1 only, web still at c0.
func (f *fleet) setUp() (webTwo string) {
	f.source(f.one, f.c[2], 210)
	f.source(f.two, f.c[1], 120)
	webOne := f.kustomization(f.one, "web", func(k *kustomizev1.Kustomization) { fluxstatus.Applied(k, fluxstatus.Revision(f.c[2]), f.at(250)) })
	f.kustomization(f.one, "api", func(k *kustomizev1.Kustomization) {
		fluxstatus.Applied(k, fluxstatus.Revision(f.c[1]), f.at(150))
		fluxstatus.Failed(k, fluxstatus.Revision(f.c[2]), f.at(260))
	})
	f.kustomization(f.one, "db", func(k *kustomizev1.Kustomization) { fluxstatus.Applied(k, fluxstatus.Revision(f.c[1]), f.at(155)) })
	webTwo = f.kustomization(f.two, "web", func(k *kustomizev1.Kustomization) { fluxstatus.Applied(k, fluxstatus.Revision(f.c[0]), f.at(50)) })
	// The tracker's ledger in one: web's applies, each when Flux applied it.
	led, err := ledger.NewConfigMaps(ledger.ConfigMapsOptions{Client: f.one, Namespace: f.ns, Shards: 4})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := led.Load(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	e := ledger.Entry{Kind: "Kustomization", Namespace: f.ns, Name: "web", Revision: fluxstatus.Revision(f.c[2]),
		Applies: []ledger.Apply{{Digest: f.c[0], At: f.at(60)}, {Digest: f.c[1], At: f.at(160)}, {Digest: f.c[2], At: f.at(250)}}}
	if err := led.Swap(context.Background(), webOne, nil, e); err != nil {
		f.t.Fatal(err)
	}
	return webTwo
}

// The table of where: applied (exact from the ledger, or at or before without it), pending, failing,
// not-fetched, and the unreachable context as one row.
func TestWhereAcrossClusters(t *testing.T) {
	f := newFleet(t, "where")
	f.setUp()
	var table strings.Builder
	for _, c := range []int{1, 2, 3} {
		code, out, stderr := f.run("where", f.c[c][:10], "--context", "one", "--context", "two", "--context", "down")
		if code != 0 {
			t.Fatalf("where %s = exit %d: %s", f.c[c][:7], code, stderr)
		}
		table.WriteString("$ where " + f.c[c][:10] + "\n" + out + "\n")
	}
	wantGolden(t, "where.golden", table.String())

	// JSON, field by field.
	code, out, _ := f.run("where", f.c[1], "--context", "one", "--context", "two", "-o", "json")
	if code != 0 {
		t.Fatalf("where -o json = exit %d", code)
	}
	var w app.Where
	if err := json.Unmarshal([]byte(out), &w); err != nil {
		t.Fatalf("where -o json: %v\n%s", err, out)
	}
	if w.Commit == nil || w.Commit.SHA != f.c[1] || w.Commit.Subject != "add web" || w.Commit.Author != "Ada" || !w.Commit.Committed.Equal(f.at(100)) ||
		w.Commit.Repository != "https://github.com/acme/manifests" {
		t.Errorf("commit %+v", w.Commit)
	}
	byObject := map[string]locate.Placement{}
	for _, p := range w.Placements {
		byObject[p.Context+"/"+p.Name] = p
	}
	if p := byObject["one/web"]; p.State != locate.Applied || !p.AppliedExact || !p.Applied.Equal(f.at(160)) || p.LatencySeconds == nil || *p.LatencySeconds != 60 {
		t.Errorf("one/web %+v, want applied exactly at +160s, 60 s after its commit", p)
	}
	if p := byObject["one/db"]; p.State != locate.Applied || p.AppliedExact || p.Applied == nil || !p.Applied.Equal(f.at(155)) || p.LatencySeconds != nil {
		t.Errorf("one/db %+v, want applied at or before +155s (no ledger entry)", p)
	}
	if p := byObject["one/api"]; p.State != locate.Applied || p.Applied != nil {
		t.Errorf("one/api %+v, want applied, when unknown (Flux's Ready is False now)", p)
	}
	if p := byObject["two/web"]; p.State != locate.Pending || !p.Since.Equal(f.at(120)) || p.Revision != fluxstatus.Revision(f.c[0]) {
		t.Errorf("two/web %+v, want pending since +120s", p)
	}
	if len(w.Placements) != 4 {
		t.Errorf("%d placements, want 4", len(w.Placements))
	}

	if code, _, stderr := f.run("where", "deadbeefdeadbeef", "--context", "one"); code != 3 || !strings.Contains(stderr, "in no repository") {
		t.Errorf("where of an unknown commit = exit %d, %q; want 3", code, stderr)
	}
	if code, _, stderr := f.run("where", f.c[1], "--context", "one", "--context", "two", "--git-read-source-secrets"); code != app.ExitUsage ||
		!strings.Contains(stderr, "reads one cluster's Secrets") {
		t.Errorf("where over two contexts reading source Secrets = exit %d, %q; want %d", code, stderr, app.ExitUsage)
	}
	if code, _, stderr := f.run("where", f.c[1], "--context", "one", "--git-read-source-secrets"); code != 0 {
		t.Errorf("where in one context reading source Secrets = exit %d, %q; want 0", code, stderr)
	}
	if code, _, stderr := f.run("where", "xyz"); code != app.ExitUsage || !strings.Contains(stderr, "invalid commit") {
		t.Errorf("where xyz = exit %d, %q; want %d", code, stderr, app.ExitUsage)
	}
}

// wait's exit codes: landed, failing, timeout, not on a tracked branch, unreadable; and a real wait for an apply.
func TestWaitExitCodes(t *testing.T) {
	f := newFleet(t, "wait")
	webTwo := f.setUp()
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"landed", []string{f.c[1], "--context", "one"}, app.WaitLanded, "landed on 3 object(s)"},
		{"failing", []string{f.c[2], "--context", "one"}, app.WaitFailed, "fails on a revision holding"},
		{"timeout", []string{f.c[1], "--context", "one", "--context", "two", "--timeout", "2s", "--interval", "500ms"}, app.WaitTimeout, "not applied everywhere"},
		{"not on a branch", []string{f.c[3], "--context", "one"}, app.WaitNotFound, "on no branch"},
		{"unreadable", []string{f.c[1], "--context", "down", "--timeout", "2s", "--interval", "500ms"}, app.WaitError, "not applied everywhere"},
		{"usage", []string{f.c[1], "--interval", "-1s"}, app.WaitError, "must be positive"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := f.run(append([]string{"wait"}, tt.args...)...)
			if code != tt.code || !strings.Contains(out+stderr, tt.want) {
				t.Errorf("wait %s = exit %d\nstdout %s\nstderr %s\nwant exit %d and %q", strings.Join(tt.args, " "), code, out, stderr, tt.code, tt.want)
			}
		})
	}

	// two applies c2 (which holds c1) while wait waits: superseded counts as landed.
	go func() {
		time.Sleep(1500 * time.Millisecond)
		var k kustomizev1.Kustomization
		ctx := context.Background()
		if err := f.two.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "web"}, &k); err != nil || string(k.UID) != webTwo {
			return
		}
		fluxstatus.Applied(&k, fluxstatus.Revision(f.c[2]), f.at(300))
		_ = f.two.Status().Update(ctx, &k)
	}()
	code, out, stderr := f.run("wait", f.c[1], "--context", "two", "--timeout", "30s", "--interval", "500ms", "-o", "json", "--github-summary")
	if code != app.WaitLanded {
		t.Fatalf("wait for two's apply = exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "two Kustomization/"+f.ns+"/web: pending") || !strings.Contains(stderr, "two Kustomization/"+f.ns+"/web: applied") {
		t.Errorf("progress lines %q, want pending then applied", stderr)
	}
	var w app.Where
	if err := json.Unmarshal([]byte(out), &w); err != nil || len(w.Placements) != 1 || w.Placements[0].State != locate.Applied ||
		w.Placements[0].Revision != fluxstatus.Revision(f.c[2]) {
		t.Errorf("final state %s (%v), want web applied at c2", out, err)
	}
	if md, err := os.ReadFile(f.summary); err != nil || !strings.Contains(string(md), "landed everywhere") ||
		!strings.Contains(string(md), "| two | Kustomization/"+f.ns+"/web | applied |") {
		t.Errorf("step summary %q (%v), want the landed table", md, err)
	}
}
