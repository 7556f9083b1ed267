package app_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/apptest"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/testenv"
)

// The HelmRelease helpers write statuses as helm-controller v1.4 and source-controller v1.x write them, for a
// release whose chart (./charts/app, version 0.1.0) a HelmChart builds from the scenario's GitRepository with
// reconcileStrategy Revision, so the chart version carries the commit: 0.1.0+<first 12 hex>.

// createHelmRelease creates the HelmRelease name and the HelmChart helm-controller creates for it.
func (s *scenario) createHelmRelease(name string) {
	s.t.Helper()
	ctx := context.Background()
	hr := &helmv2.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: name},
		Spec: helmv2.HelmReleaseSpec{
			Interval: metav1.Duration{Duration: time.Minute},
			Chart: &helmv2.HelmChartTemplate{Spec: helmv2.HelmChartTemplateSpec{
				Chart: "./charts/app", ReconcileStrategy: sourcev1.ReconcileStrategyRevision,
				SourceRef: helmv2.CrossNamespaceObjectReference{Kind: sourcev1.GitRepositoryKind, Name: "manifests"},
			}},
		},
	}
	if err := env.Client.Create(ctx, hr); err != nil {
		s.t.Fatal(err)
	}
	chart := &sourcev1.HelmChart{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: hr.GetHelmChartName(),
			Labels: map[string]string{"helm.toolkit.fluxcd.io/name": name, "helm.toolkit.fluxcd.io/namespace": s.ns}},
		Spec: sourcev1.HelmChartSpec{
			Chart: "./charts/app", Version: "*", Interval: metav1.Duration{Duration: time.Minute},
			ReconcileStrategy: sourcev1.ReconcileStrategyRevision,
			SourceRef:         sourcev1.LocalHelmChartSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "manifests"},
		},
	}
	if err := env.Client.Create(ctx, chart); err != nil {
		s.t.Fatal(err)
	}
}

func chartVersion(sha string) string { return "0.1.0+" + sha[:12] }

func artifact(kind, revision string, at time.Time) *meta.Artifact {
	path := fmt.Sprintf("%s/x/%s.tar.gz", strings.ToLower(kind), strings.ReplaceAll(revision, ":", "-"))
	return &meta.Artifact{Revision: revision, Path: path, URL: "http://source-controller.flux-system.svc/" + path,
		Digest: "sha256:" + strings.Repeat("0", 64), LastUpdateTime: metav1.NewTime(at), Size: new(int64)}
}

// fetch writes the GitRepository status source-controller writes after fetching sha at sec.
func (s *scenario) fetch(sha string, sec int) {
	s.t.Helper()
	ctx := context.Background()
	var gr sourcev1.GitRepository
	if err := env.Client.Get(ctx, keyOf(s.ns, "manifests"), &gr); err != nil {
		s.t.Fatal(err)
	}
	rev := "main@sha1:" + sha
	gr.Status.ObservedGeneration = gr.Generation
	gr.Status.Artifact = artifact(sourcev1.GitRepositoryKind, rev, s.at(sec))
	gr.Status.Conditions = []metav1.Condition{{Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Reason: meta.SucceededReason,
		Message: "stored artifact for revision '" + rev + "'", LastTransitionTime: metav1.NewTime(s.at(sec)), ObservedGeneration: gr.Generation}}
	if err := env.Client.Status().Update(ctx, &gr); err != nil {
		s.t.Fatal(err)
	}
}

// buildChart writes the HelmChart status source-controller writes after building the chart from sha at sec.
func (s *scenario) buildChart(name, sha string, sec int) {
	s.t.Helper()
	ctx := context.Background()
	var chart sourcev1.HelmChart
	if err := env.Client.Get(ctx, keyOf(s.ns, s.ns+"-"+name), &chart); err != nil {
		s.t.Fatal(err)
	}
	v := chartVersion(sha)
	chart.Status.ObservedGeneration = chart.Generation
	chart.Status.ObservedSourceArtifactRevision = "main@sha1:" + sha
	chart.Status.ObservedChartName = "app"
	chart.Status.Artifact = artifact(sourcev1.HelmChartKind, v, s.at(sec))
	chart.Status.Conditions = []metav1.Condition{{Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Reason: "ChartPackageSucceeded",
		Message: "packaged 'app' chart with version '" + v + "'", LastTransitionTime: metav1.NewTime(s.at(sec)), ObservedGeneration: chart.Generation}}
	if err := env.Client.Status().Update(ctx, &chart); err != nil {
		s.t.Fatal(err)
	}
}

// release writes the HelmRelease status helm-controller writes once release v<version> of the chart built from
// sha is deployed (installed for v1, upgraded after), Ready at sec; earlier deployed releases are superseded.
func (s *scenario) release(name string, version int, sha string, sec int) {
	s.t.Helper()
	s.writeRelease(name, version, sha, "deployed", func(hr *helmv2.HelmRelease, rel *helmv2.Snapshot) {
		action, verb, reason := helmv2.ReleaseActionUpgrade, "upgrade", helmv2.UpgradeSucceededReason
		if version == 1 {
			action, verb, reason = helmv2.ReleaseActionInstall, "install", helmv2.InstallSucceededReason
		}
		msg := fmt.Sprintf("Helm %s succeeded for release %s with chart %s", verb, rel.FullReleaseName(), rel.VersionedChartName())
		hr.Status.LastAttemptedReleaseAction = action
		hr.Status.Failures = 0
		hr.Status.Conditions = []metav1.Condition{
			{Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Reason: reason, Message: msg, LastTransitionTime: metav1.NewTime(s.at(sec)), ObservedGeneration: hr.Generation},
			{Type: helmv2.ReleasedCondition, Status: metav1.ConditionTrue, Reason: reason, Message: msg, LastTransitionTime: metav1.NewTime(s.at(sec)), ObservedGeneration: hr.Generation},
		}
	}, sec)
}

// failUpgrade writes the status helm-controller writes when the upgrade to release v<version> of the chart built
// from sha fails at sec (no remediation).
func (s *scenario) failUpgrade(name string, version int, sha string, sec int) {
	s.t.Helper()
	s.writeRelease(name, version, sha, "failed", func(hr *helmv2.HelmRelease, rel *helmv2.Snapshot) {
		msg := fmt.Sprintf("Helm upgrade failed for release %s/%s with chart %s: context deadline exceeded", rel.Namespace, rel.Name, rel.VersionedChartName())
		hr.Status.LastAttemptedReleaseAction = helmv2.ReleaseActionUpgrade
		hr.Status.Failures, hr.Status.UpgradeFailures = 1, 1
		hr.Status.Conditions = []metav1.Condition{
			{Type: meta.ReadyCondition, Status: metav1.ConditionFalse, Reason: helmv2.UpgradeFailedReason, Message: msg, LastTransitionTime: metav1.NewTime(s.at(sec)), ObservedGeneration: hr.Generation},
			{Type: helmv2.ReleasedCondition, Status: metav1.ConditionFalse, Reason: helmv2.UpgradeFailedReason, Message: msg, LastTransitionTime: metav1.NewTime(s.at(sec)), ObservedGeneration: hr.Generation},
		}
	}, sec)
}

func (s *scenario) writeRelease(name string, version int, sha, status string, conds func(*helmv2.HelmRelease, *helmv2.Snapshot), sec int) {
	s.t.Helper()
	ctx := context.Background()
	var hr helmv2.HelmRelease
	if err := env.Client.Get(ctx, keyOf(s.ns, name), &hr); err != nil {
		s.t.Fatal(err)
	}
	rel := &helmv2.Snapshot{
		APIVersion: "v2", Digest: fmt.Sprintf("sha256:%064d", version), Name: name, Namespace: s.ns, Version: version,
		Status: status, ChartName: "app", ChartVersion: chartVersion(sha), AppVersion: "1.0.0",
		ConfigDigest: "sha256:" + strings.Repeat("c", 64), FirstDeployed: metav1.NewTime(s.at(sec - 2)), LastDeployed: metav1.NewTime(s.at(sec - 2)),
	}
	if len(hr.Status.History) > 0 {
		rel.FirstDeployed = hr.Status.History[len(hr.Status.History)-1].FirstDeployed
	}
	for _, prev := range hr.Status.History {
		if status == "deployed" && prev.Status == "deployed" {
			prev.Status = "superseded"
		}
	}
	hr.Status.History = append(helmv2.Snapshots{rel}, hr.Status.History...)
	hr.Status.ObservedGeneration, hr.Status.LastAttemptedGeneration = hr.Generation, hr.Generation
	hr.Status.HelmChart = s.ns + "/" + hr.GetHelmChartName()
	hr.Status.StorageNamespace = s.ns
	hr.Status.LastAttemptedRevision = rel.ChartVersion
	hr.Status.LastAttemptedConfigDigest = rel.ConfigDigest
	conds(&hr, rel)
	if err := env.Client.Status().Update(ctx, &hr); err != nil {
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
