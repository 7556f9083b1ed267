package app_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/flux-commit-tracker/flux-commit-tracker/test/apptest"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/fluxstatus"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/testenv"
)

// The HelmRelease helpers write statuses as helm-controller v1.4 and source-controller v1.x write them (see
// package fluxstatus), for a release whose chart a HelmChart builds from the scenario's GitRepository.

// createHelmRelease creates the HelmRelease name and the HelmChart helm-controller creates for it.
func (s *scenario) createHelmRelease(name string) {
	s.t.Helper()
	hr, chart := fluxstatus.HelmRelease(s.ns, name, "manifests")
	for _, obj := range []client.Object{hr, chart} {
		if err := env.Client.Create(context.Background(), obj); err != nil {
			s.t.Fatal(err)
		}
	}
}

// fetch writes the GitRepository status source-controller writes after fetching sha at sec.
func (s *scenario) fetch(sha string, sec int) {
	s.t.Helper()
	s.updateStatus(&sourcev1.GitRepository{}, "manifests", func(o client.Object) { fluxstatus.Fetched(o.(*sourcev1.GitRepository), sha, s.at(sec)) })
}

// buildChart writes the HelmChart status source-controller writes after building the chart from sha at sec.
func (s *scenario) buildChart(name, sha string, sec int) {
	s.t.Helper()
	s.updateStatus(&sourcev1.HelmChart{}, s.ns+"-"+name, func(o client.Object) { fluxstatus.ChartBuilt(o.(*sourcev1.HelmChart), sha, s.at(sec)) })
}

// release writes the HelmRelease status helm-controller writes once release v<version> of the chart built from
// sha is deployed, Ready at sec.
func (s *scenario) release(name string, version int, sha string, sec int) {
	s.t.Helper()
	s.updateStatus(&helmv2.HelmRelease{}, name, func(o client.Object) { fluxstatus.Released(o.(*helmv2.HelmRelease), version, sha, s.at(sec)) })
}

// failUpgrade writes the status helm-controller writes when the upgrade to release v<version> of the chart built
// from sha fails at sec.
func (s *scenario) failUpgrade(name string, version int, sha string, sec int) {
	s.t.Helper()
	s.updateStatus(&helmv2.HelmRelease{}, name, func(o client.Object) { fluxstatus.UpgradeFailed(o.(*helmv2.HelmRelease), version, sha, s.at(sec)) })
}

// updateStatus reads the object name into obj, lets set change it and writes its status.
func (s *scenario) updateStatus(obj client.Object, name string, set func(client.Object)) {
	s.t.Helper()
	ctx := context.Background()
	if err := env.Client.Get(ctx, keyOf(s.ns, name), obj); err != nil {
		s.t.Fatal(err)
	}
	set(obj)
	if err := env.Client.Status().Update(ctx, obj); err != nil {
		s.t.Fatal(err)
	}
}

func TestHelmReleaseFromGitRepository(t *testing.T) {
	s := newScenario(t)
	c0 := s.commit(0, map[string]string{"charts/app/Chart.yaml": "version: 0.1.0"})
	s.fetch(c0, 2)
	s.createHelmRelease("app")
	s.buildChart("app", c0, 3)
	s.release("app", 1, c0, 10)
	tr := s.startTracker()
	eventually(t, 10*time.Second, "baseline in ledger", func() bool { return s.ledgerRevision("app") == "main@sha1:"+c0 })

	// A new commit, fetched and packaged; the release has not been upgraded yet: nothing to record.
	c1 := s.commit(100, map[string]string{"charts/app/values.yaml": "replicas: 2"})
	s.fetch(c1, 110)
	s.buildChart("app", c1, 111)
	consistently(t, 2*time.Second, "nothing recorded before the release", func() bool { return len(tr.Applied()) == 0 })

	// helm-controller upgrades: Ready=True names release v2 of 0.1.0+<c1>.
	s.release("app", 2, c1, 142)
	wantCommits(t, tr, map[string]float64{c1: 42})
	labels := []string{`flux_kind="HelmRelease"`, `flux_name="app"`, `vcs_repository_url_full="https://github.com/acme/manifests"`}
	if got := tr.Metric(reconcileCount, labels...); got != 1 {
		t.Errorf("reconcile count = %v, want 1", got)
	}
	if got := tr.Metric(reconcileSum, labels...); got != 42 {
		t.Errorf("reconcile sum = %v, want 42", got)
	}
	if got := tr.Metric("flux_commit_tracker_flux_fetch_time_seconds_sum", labels...); got != 10 {
		t.Errorf("fetch sum = %v, want 10 (fetched at 110, committed at 100)", got)
	}
	if got := s.ledgerRevision("app"); got != "main@sha1:"+c1 {
		t.Errorf("ledger revision = %q, want c1", got)
	}
	tr.Stop()

	// While the tracker is down, two commits go out in one release.
	c2 := s.commit(200, map[string]string{"charts/app/values.yaml": "replicas: 3"})
	c3 := s.commit(210, map[string]string{"charts/app/values.yaml": "replicas: 4"})
	s.fetch(c3, 215)
	s.buildChart("app", c3, 216)
	s.release("app", 3, c3, 250)
	second := s.startTracker()
	wantCommits(t, second, map[string]float64{c2: 50, c3: 40})
	second.Stop()

	// Nothing new: nothing recorded twice.
	third := s.startTracker()
	eventually(t, 10*time.Second, "ledger loaded", func() bool { return third.Logged("ledger loaded") })
	consistently(t, 2*time.Second, "no commit recorded again", func() bool { return len(third.Applied()) == 0 })
	if got := third.Metric(reconcileCount, labels...); got != 0 {
		t.Errorf("third run reconcile count = %v, want 0", got)
	}
}

func TestHelmReleaseFailedUpgrade(t *testing.T) {
	s := newScenario(t)
	c0 := s.commit(0, map[string]string{"charts/app/Chart.yaml": "version: 0.1.0"})
	s.fetch(c0, 2)
	s.createHelmRelease("web")
	s.buildChart("web", c0, 3)
	s.release("web", 1, c0, 10)
	tr := s.startTracker()
	eventually(t, 10*time.Second, "baseline in ledger", func() bool { return s.ledgerRevision("web") == "main@sha1:"+c0 })
	labels := []string{`flux_kind="HelmRelease"`, `flux_name="web"`}

	// c1 is packaged and the upgrade fails: the failed release tops the history, v1 stays deployed.
	c1 := s.commit(100, map[string]string{"charts/app/values.yaml": "broken"})
	s.fetch(c1, 105)
	s.buildChart("web", c1, 106)
	s.failUpgrade("web", 2, c1, 110)
	eventually(t, 10*time.Second, "stuck release on the gauges", func() bool {
		return tr.Metric("flux_commit_tracker_failing_revision_age_seconds", labels...) >= time.Since(s.at(110)).Seconds()-2 &&
			tr.Metric("flux_commit_tracker_pending_commit_age_seconds", labels...) >= time.Since(s.at(100)).Seconds()-2
	})
	if n := len(tr.Applied()); n != 0 {
		t.Fatalf("failed upgrade recorded %d commits", n)
	}

	// Fixed by c2: recorded with c1, once; the gauges drop to 0.
	c2 := s.commit(150, map[string]string{"charts/app/values.yaml": "fixed"})
	s.fetch(c2, 155)
	s.buildChart("web", c2, 156)
	s.release("web", 3, c2, 170)
	wantCommits(t, tr, map[string]float64{c1: 70, c2: 20})
	eventually(t, 10*time.Second, "gauges back to 0", func() bool {
		return tr.Metric("flux_commit_tracker_failing_revision_age_seconds", labels...) == 0 &&
			tr.Metric("flux_commit_tracker_pending_commit_age_seconds", labels...) == 0
	})
}

// TestWithoutHelmController: a cluster without the HelmRelease CRD still gets its Kustomizations tracked.
func TestWithoutHelmController(t *testing.T) {
	crds := t.TempDir()
	entries, err := os.ReadDir(os.Getenv("FLUX_CRDS_DIR"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "helm.toolkit.fluxcd.io") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(os.Getenv("FLUX_CRDS_DIR"), e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(crds, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	noHelm := &envtest.Environment{CRDDirectoryPaths: []string{crds}, ErrorIfCRDPathMissing: true, Scheme: env.Scheme}
	cfg, err := noHelm.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = noHelm.Stop() })
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := testenv.WriteKubeconfig(cfg, kc, ""); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tracker"}}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}

	tr := apptest.Start(t, []string{"--kubeconfig", kc, "--namespace", "tracker", "--cluster-name", "test-cluster",
		"--github-api-url", "http://127.0.0.1:1", "--git-cache-dir", t.TempDir()}, map[string]string{"GITHUB_TOKEN": "test-token"})
	eventually(t, 10*time.Second, "ledger loaded", func() bool { return tr.Logged("ledger loaded") })
	if !tr.Logged("HelmReleases not tracked: the cluster serves no helm.toolkit.fluxcd.io/v2 HelmRelease or source.toolkit.fluxcd.io/v1 HelmChart") {
		t.Errorf("no log saying HelmReleases are not tracked:\n%s", tr.String())
	}
}
