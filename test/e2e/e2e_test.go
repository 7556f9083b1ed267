// Package e2e proves the tracker against the real Flux source- and kustomize-controllers: every expected sample is
// checked against ground truth, the commit times written to git and Flux's own Ready transition times.
package e2e

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flux-commit-tracker/flux-commit-tracker/test/apptest"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/stack"
)

var flux *stack.Stack

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv("FLUX_BIN_DIR") == "" {
		fmt.Fprintln(os.Stderr, "e2e: FLUX_BIN_DIR is not set: run `make test` or `make e2e`, which build the Flux controllers")
		return 0
	}
	// The stack lives as long as this context: until the tests are done.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var err error
	// A long interval: every apply comes from a reconcile request, so each test knows which revision Flux sees.
	flux, err = stack.Start(ctx, stack.Options{Interval: 10 * time.Minute})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: start stack:", err)
		return 1
	}
	defer func() {
		if err := flux.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: stop stack:", err)
		}
	}()
	return m.Run()
}

// world is one namespace with its own repository, GitRepository and Kustomizations.
type world struct {
	t    *testing.T
	ctx  context.Context
	ns   string
	repo *stack.Repo
	// times are the commit times written to git, by SHA.
	times map[string]time.Time
}

func newWorld(t *testing.T, kustomizations ...string) *world {
	t.Helper()
	return newWorldFrom(t, (*stack.Repo).URL, nil, kustomizations...)
}

// newWorldFrom is newWorld whose GitRepository fetches from urlOf(repo), set up by gitOpts.
func newWorldFrom(t *testing.T, urlOf func(*stack.Repo) string, gitOpts []func(*sourcev1.GitRepository), kustomizations ...string) *world {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-"}}
	if err := flux.Client().Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	repo, err := flux.NewRepo(ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, ctx: ctx, ns: ns.Name, repo: repo, times: map[string]time.Time{}}
	c0 := w.commit("initial", "0", nil)
	if err := flux.CreateGitRepository(ctx, w.ns, "manifests", urlOf(repo), gitOpts...); err != nil {
		t.Fatal(err)
	}
	for _, k := range kustomizations {
		if err := flux.CreateKustomization(ctx, w.ns, k, "manifests", "./"+k); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range kustomizations {
		w.waitApplied(k, c0)
	}
	return w
}

// commit writes version into every object's ConfigMap (plus extra files) with a commit time a few seconds ago,
// whole seconds like git.
func (w *world) commit(msg, version string, extra map[string]string) string {
	w.t.Helper()
	files := map[string]string{}
	for _, k := range []string{"app", "web", "db"} {
		files[k+"/configmap.yaml"] = stack.ConfigMapManifest(w.ns, k, map[string]string{"version": version})
	}
	for p, c := range extra {
		files[p] = c
	}
	when := time.Now().Add(-3 * time.Second).Truncate(time.Second)
	sha, err := w.repo.Commit(msg, files, when)
	if err != nil {
		w.t.Fatal(err)
	}
	w.times[sha] = when
	return sha
}

func (w *world) reconcile() {
	w.t.Helper()
	if err := flux.RequestReconcile(w.ctx, w.ns, "manifests"); err != nil {
		w.t.Fatal(err)
	}
}

// waitApplied waits for Flux to apply sha to k and returns Flux's Ready transition time, the truth of "applied".
func (w *world) waitApplied(k, sha string) time.Time {
	w.t.Helper()
	ks, err := flux.WaitApplied(w.ctx, w.ns, k, sha)
	if err != nil {
		w.t.Fatal(err)
	}
	return apimeta.FindStatusCondition(ks.Status.Conditions, meta.ReadyCondition).LastTransitionTime.Time
}

// waitFailing waits for Flux to fail k on sha: Ready=False with sha its last attempted revision.
func (w *world) waitFailing(k, sha string) {
	w.t.Helper()
	apptest.Eventually(w.t, 30*time.Second, "Flux fails "+k+" on "+sha[:7], func() bool {
		var ks kustomizev1.Kustomization
		if err := flux.Client().Get(w.ctx, client.ObjectKey{Namespace: w.ns, Name: k}, &ks); err != nil {
			return false
		}
		ready := apimeta.FindStatusCondition(ks.Status.Conditions, meta.ReadyCondition)
		return ks.Status.LastAttemptedRevision == stack.Revision(sha) && ready != nil && ready.Status == metav1.ConditionFalse
	})
}

func (w *world) startTracker() *apptest.Tracker {
	w.t.Helper()
	return w.startTrackerWith(nil)
}

// startTrackerWith is startTracker with env as the tracker's environment and extra flags.
func (w *world) startTrackerWith(env map[string]string, extra ...string) *apptest.Tracker {
	w.t.Helper()
	return apptest.Start(w.t, append([]string{
		"--kubeconfig", flux.Kubeconfig(), "--namespace", w.ns, "--watch-namespace", w.ns,
		"--git-cache-dir", w.t.TempDir(), "--cluster-name", "e2e", "--log-level", "debug",
	}, extra...), env)
}

// want checks that exactly the given commits were recorded for k, each once, each at Flux's Ready transition
// time: the measured reconcile time is within 1 s of applied − committed.
func (w *world) want(tr *apptest.Tracker, k string, applied map[string]time.Time) {
	w.t.Helper()
	apptest.Eventually(w.t, 30*time.Second, fmt.Sprintf("%d commits recorded for %s", len(applied), k), func() bool {
		return len(w.recorded(tr, k)) >= len(applied)
	})
	got := w.recorded(tr, k)
	if len(got) != len(applied) {
		w.t.Fatalf("%s: recorded %d commits, want %d: %+v", k, len(got), len(applied), got)
	}
	for _, c := range got {
		at, ok := applied[c.Commit]
		if !ok {
			w.t.Errorf("%s: recorded unexpected commit %s", k, c.Commit)
			continue
		}
		truth := at.Sub(w.times[c.Commit]).Seconds()
		if math.Abs(c.ReconcileSeconds-truth) > 1 {
			w.t.Errorf("%s: commit %s reconcile %.3fs, truth %.3fs (Ready at %s, committed %s)", k, c.Commit, c.ReconcileSeconds, truth, at, w.times[c.Commit])
		}
		if !c.AppliedFromFlux {
			w.t.Errorf("%s: commit %s applied time not from Flux's Ready condition", k, c.Commit)
		}
		delete(applied, c.Commit)
	}
}

func (w *world) recorded(tr *apptest.Tracker, k string) []apptest.CommitLog {
	var out []apptest.CommitLog
	for _, c := range tr.Applied() {
		if c.Name == k {
			out = append(out, c)
		}
	}
	return out
}

func TestOneCommit(t *testing.T) {
	w := newWorld(t, "app")
	tr := w.startTracker()
	apptest.Eventually(t, 20*time.Second, "baseline", func() bool { return tr.Logged("first sight of object: revision kept as baseline, nothing recorded") })

	c1 := w.commit("one", "1", nil)
	w.reconcile()
	applied := w.waitApplied("app", c1)
	w.want(tr, "app", map[string]time.Time{c1: applied})
	if got := tr.Metric("flux_commit_tracker_flux_reconcile_time_seconds_count", `flux_name="app"`); got != 1 {
		t.Errorf("reconcile samples = %v, want 1", got)
	}

	// The fetched stage: source-controller's artifact time for the revision splits commit → applied in two.
	var src sourcev1.GitRepository
	if err := flux.Client().Get(w.ctx, client.ObjectKey{Namespace: w.ns, Name: "manifests"}, &src); err != nil {
		t.Fatal(err)
	}
	if src.Status.Artifact == nil || src.Status.Artifact.Revision != stack.Revision(c1) {
		t.Fatalf("source artifact %+v, want revision %s", src.Status.Artifact, c1)
	}
	fetched := src.Status.Artifact.LastUpdateTime.Time
	for metric, truth := range map[string]float64{
		"flux_commit_tracker_flux_fetch_time_seconds_sum": fetched.Sub(w.times[c1]).Seconds(),
		"flux_commit_tracker_flux_apply_time_seconds_sum": applied.Sub(fetched).Seconds(),
	} {
		if got := tr.Metric(metric, `flux_name="app"`); math.Abs(got-truth) > 1 {
			t.Errorf("%s = %v, truth %v (fetched %s)", metric, got, truth, fetched)
		}
	}
}

func TestBatchOfCommitsInOneReconcile(t *testing.T) {
	w := newWorld(t, "app", "web")
	tr := w.startTracker()
	apptest.Eventually(t, 20*time.Second, "baselines", func() bool { return strings.Count(tr.String(), "first sight of object") == 2 })

	c1 := w.commit("one", "1", nil)
	c2 := w.commit("two", "2", nil)
	c3 := w.commit("three", "3", nil)
	w.reconcile()
	for _, k := range []string{"app", "web"} {
		at := w.waitApplied(k, c3)
		w.want(tr, k, map[string]time.Time{c1: at, c2: at, c3: at})
	}
	// One fetch mirrors the repository at the baselines, one brings the new revision, for both objects.
	if got := tr.Metric("flux_commit_tracker_git_calls_total", `outcome="success"`); got != 2 {
		t.Errorf("git fetches = %v, want 2 (baseline, new revision) for two objects", got)
	}
}

func TestRestartCatchesUpAndRecordsNothingTwice(t *testing.T) {
	w := newWorld(t, "app")
	first := w.startTracker()
	apptest.Eventually(t, 20*time.Second, "baseline", func() bool { return first.Logged("first sight of object: revision kept as baseline, nothing recorded") })
	c1 := w.commit("one", "1", nil)
	w.reconcile()
	w.want(first, "app", map[string]time.Time{c1: w.waitApplied("app", c1)})
	first.Stop()

	// Applied while the tracker is down.
	c2 := w.commit("two", "2", nil)
	w.reconcile()
	at2 := w.waitApplied("app", c2)

	second := w.startTracker()
	w.want(second, "app", map[string]time.Time{c2: at2})
	c3 := w.commit("three", "3", nil)
	w.reconcile()
	at3 := w.waitApplied("app", c3)
	w.want(second, "app", map[string]time.Time{c2: at2, c3: at3})
}

func TestBrokenManifestThenFix(t *testing.T) {
	w := newWorld(t, "app")
	tr := w.startTracker()
	apptest.Eventually(t, 20*time.Second, "baseline", func() bool { return tr.Logged("first sight of object: revision kept as baseline, nothing recorded") })

	broken := w.commit("broken", "1", map[string]string{"app/broken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: [not, a, map]\n"})
	w.reconcile()
	w.waitFailing("app", broken)
	apptest.Consistently(t, 2*time.Second, "nothing recorded while Flux fails", func() bool { return len(tr.Applied()) == 0 })

	fix := w.commit("fix", "2", map[string]string{"app/broken.yaml": ""})
	w.reconcile()
	at := w.waitApplied("app", fix)
	w.want(tr, "app", map[string]time.Time{broken: at, fix: at})
}

func TestForcePushToOlderCommitRecordsNothing(t *testing.T) {
	w := newWorld(t, "app")
	tr := w.startTracker()
	apptest.Eventually(t, 20*time.Second, "baseline", func() bool { return tr.Logged("first sight of object: revision kept as baseline, nothing recorded") })
	c1 := w.commit("one", "1", nil)
	c2 := w.commit("two", "2", nil)
	w.reconcile()
	at := w.waitApplied("app", c2)
	w.want(tr, "app", map[string]time.Time{c1: at, c2: at})

	if err := w.repo.ForcePush(c1); err != nil {
		t.Fatal(err)
	}
	w.reconcile()
	w.waitApplied("app", c1)
	apptest.Eventually(t, 20*time.Second, "rollback counted", func() bool {
		return tr.Metric("flux_commit_tracker_range_not_recorded_total", `status="behind"`) == 1
	})
	if got := len(w.recorded(tr, "app")); got != 2 {
		t.Errorf("recorded %d commits after the force-push, want still 2", got)
	}
}

func TestExporterInfoFromTheCommitTree(t *testing.T) {
	w := newWorld(t, "app")
	tr := w.startTracker()
	apptest.Eventually(t, 20*time.Second, "baseline", func() bool { return tr.Logged("first sight of object: revision kept as baseline, nothing recorded") })

	upstream := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	info := fmt.Sprintf(`{"commit":"1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a","commits_since_last_export":[{"hash":"1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a","message":"feat","author":"A","email":"a@example.com","time":%q}],"export_build_link":"https://ci.example.com/1"}`,
		upstream.Format(time.RFC3339))
	c1 := w.commit("export", "1", map[string]string{"exporter-info.json": info})
	w.reconcile()
	at := w.waitApplied("app", c1)
	w.want(tr, "app", map[string]time.Time{c1: at})

	wantExport := w.times[c1].Sub(upstream).Seconds()
	if got := tr.Metric("flux_commit_tracker_kube_manifests_exporter_export_time_seconds_sum", `flux_name="app"`); got != wantExport {
		t.Errorf("export time = %v, want %v (manifests commit − upstream commit)", got, wantExport)
	}
	wantE2E := at.Sub(upstream).Seconds()
	if got := tr.Metric("flux_commit_tracker_e2e_export_time_seconds_sum", `flux_name="app"`); math.Abs(got-wantE2E) > 1 {
		t.Errorf("e2e time = %v, want %v (applied − upstream commit)", got, wantE2E)
	}
}
