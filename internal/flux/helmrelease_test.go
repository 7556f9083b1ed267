package flux

import (
	"fmt"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

var (
	hrT0  = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	shaC1 = strings.Repeat("c1", 20)
	shaC2 = strings.Repeat("c2", 20)
	shaC3 = strings.Repeat("c3", 20)
)

func hrAt(sec int) time.Time { return hrT0.Add(time.Duration(sec) * time.Second) }

// snapshot is a history entry as helm-controller v1.4 writes it.
func snapshot(version int, chartVersion, status string, deployedSec int) *helmv2.Snapshot {
	return &helmv2.Snapshot{
		APIVersion: "v2", Digest: fmt.Sprintf("sha256:%064d", version), Name: "podinfo", Namespace: "podinfo",
		Version: version, Status: status, ChartName: "podinfo", ChartVersion: chartVersion, AppVersion: "6.5.0",
		ConfigDigest: "sha256:" + strings.Repeat("e", 64), FirstDeployed: metav1.NewTime(hrAt(0)), LastDeployed: metav1.NewTime(hrAt(deployedSec)),
	}
}

func cond(typ string, status metav1.ConditionStatus, reason, msg string, sec int) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, LastTransitionTime: metav1.NewTime(hrAt(sec)), ObservedGeneration: 1}
}

// upgraded returns a HelmRelease after helm-controller upgraded it to release v2 with chartVersion, Ready at 100
// (v1 superseded), chart from a GitRepository through its HelmChart template.
func upgraded(chartVersion string) *helmv2.HelmRelease {
	const version, sec = 2, 100
	hr := &helmv2.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "podinfo", Name: "podinfo", UID: "hr-uid", Generation: 1},
		Spec: helmv2.HelmReleaseSpec{Chart: &helmv2.HelmChartTemplate{Spec: helmv2.HelmChartTemplateSpec{
			Chart: "./charts/podinfo", ReconcileStrategy: sourcev1.ReconcileStrategyRevision,
			SourceRef: helmv2.CrossNamespaceObjectReference{Kind: KindGitRepository, Name: "manifests", Namespace: "flux-system"},
		}}},
	}
	msg := fmt.Sprintf("Helm upgrade succeeded for release podinfo/podinfo.v%d with chart podinfo@%s", version, chartVersion)
	hr.Status = helmv2.HelmReleaseStatus{
		ObservedGeneration: 1, LastAttemptedGeneration: 1, HelmChart: "flux-system/podinfo-podinfo", StorageNamespace: "podinfo",
		History: helmv2.Snapshots{snapshot(version, chartVersion, "deployed", sec-2), snapshot(version-1, "6.4.0+"+shaC1[:12], "superseded", 0)},
		Conditions: []metav1.Condition{
			cond(meta.ReadyCondition, metav1.ConditionTrue, helmv2.UpgradeSucceededReason, msg, sec),
			cond(helmv2.ReleasedCondition, metav1.ConditionTrue, helmv2.UpgradeSucceededReason, msg, sec),
		},
		LastAttemptedReleaseAction: helmv2.ReleaseActionUpgrade, LastAttemptedRevision: chartVersion,
		LastAttemptedConfigDigest: "sha256:" + strings.Repeat("e", 64),
	}
	return hr
}

func gitRepo(sha string, fetchedSec int) *sourcev1.GitRepository {
	return &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "manifests"},
		Spec: sourcev1.GitRepositorySpec{URL: "https://github.com/acme/manifests",
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"}},
		Status: sourcev1.GitRepositoryStatus{Artifact: &meta.Artifact{
			Revision: "main@sha1:" + sha, Digest: "sha256:" + strings.Repeat("a", 64), LastUpdateTime: metav1.NewTime(hrAt(fetchedSec)),
		}},
	}
}

// helmChart is the HelmChart source-controller keeps for the template: observed the source at observedSHA and
// stored chartVersion at builtSec.
func helmChart(strategy, observedSHA, chartVersion string, builtSec int) *sourcev1.HelmChart {
	return &sourcev1.HelmChart{
		ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "podinfo-podinfo"},
		Spec: sourcev1.HelmChartSpec{Chart: "./charts/podinfo", ReconcileStrategy: strategy,
			SourceRef: sourcev1.LocalHelmChartSourceReference{Kind: KindGitRepository, Name: "manifests"}},
		Status: sourcev1.HelmChartStatus{
			ObservedSourceArtifactRevision: "main@sha1:" + observedSHA, ObservedChartName: "podinfo",
			Artifact: &meta.Artifact{Revision: chartVersion, Digest: "sha256:" + strings.Repeat("b", 64), LastUpdateTime: metav1.NewTime(hrAt(builtSec))},
		},
	}
}

func TestFromHelmReleaseRevisionStrategy(t *testing.T) {
	v2 := "6.5.0+" + shaC2[:12]
	hr := upgraded(v2)
	chart := helmChart(sourcev1.ReconcileStrategyRevision, shaC2, v2, 90)

	d := FromHelmRelease(hr, gitRepo(shaC2, 80), chart)
	want := Deployment{UID: "hr-uid", Kind: KindHelmRelease, Namespace: "podinfo", Name: "podinfo",
		SourceKind: KindGitRepository, SourceNamespace: "flux-system", SourceName: "manifests",
		RepositoryURL: "https://github.com/acme/manifests", SourceRef: GitRef{Branch: "main"}, Revision: "main@sha1:" + shaC2, Applied: hrAt(100),
		SourceRevision: "main@sha1:" + shaC2, SourceFetched: hrAt(80), Fetched: hrAt(80), AttemptedRevision: "main@sha1:" + shaC2,
		Message: "Helm upgrade succeeded for release podinfo/podinfo.v2 with chart podinfo@6.5.0+" + shaC2[:12]}
	if d != want {
		t.Errorf("release of the chart built from c2:\n got %+v\nwant %+v", d, want)
	}

	// The GitRepository moved on; the HelmChart still names the release's commit.
	d = FromHelmRelease(hr, gitRepo(shaC3, 120), chart)
	if d.Revision != "main@sha1:"+shaC2 || !d.Fetched.IsZero() || d.SourceRevision != "main@sha1:"+shaC3 {
		t.Errorf("source ahead of the release: %+v", d)
	}

	// The HelmChart moved on too (built c3, the release not upgraded yet): nothing until the release catches up.
	d = FromHelmRelease(hr, gitRepo(shaC3, 120), helmChart(sourcev1.ReconcileStrategyRevision, shaC3, "6.5.0+"+shaC3[:12], 125))
	if d.Revision != "" || !d.Applied.IsZero() {
		t.Errorf("chart ahead of the release: %+v", d)
	}

	// Values files add the HelmChart generation to the build metadata.
	v2g := v2 + ".3"
	d = FromHelmRelease(upgraded(v2g), gitRepo(shaC2, 80), helmChart(sourcev1.ReconcileStrategyRevision, shaC2, v2g, 90))
	if d.Revision != "main@sha1:"+shaC2 || !d.Applied.Equal(hrAt(100)) {
		t.Errorf("chart version with generation: %+v", d)
	}

	// Not in the cache yet: the source reference comes from the template.
	d = FromHelmRelease(hr, nil, nil)
	if d.Revision != "" || d.SourceKind != KindGitRepository || d.SourceNamespace != "flux-system" || d.SourceName != "manifests" || d.RepositoryURL != "" {
		t.Errorf("no chart or source: %+v", d)
	}
}

func TestFromHelmReleaseFailedUpgrade(t *testing.T) {
	v2, v3 := "6.5.0+"+shaC2[:12], "6.5.0+"+shaC3[:12]
	hr := upgraded(v2)
	// helm-controller v1.4 after a failed upgrade without remediation: the failed release tops the history.
	failed := snapshot(3, v3, "failed", 200)
	hr.Status.History = append(helmv2.Snapshots{failed}, hr.Status.History...)
	msg := "Helm upgrade failed for release podinfo/podinfo with chart podinfo@" + v3 + ": context deadline exceeded"
	hr.Status.Conditions = []metav1.Condition{
		cond(meta.ReadyCondition, metav1.ConditionFalse, helmv2.UpgradeFailedReason, msg, 205),
		cond(helmv2.ReleasedCondition, metav1.ConditionFalse, helmv2.UpgradeFailedReason, msg, 205),
	}
	hr.Status.LastAttemptedRevision, hr.Status.Failures = v3, 1
	chart := helmChart(sourcev1.ReconcileStrategyRevision, shaC3, v3, 190)

	d := FromHelmRelease(hr, gitRepo(shaC3, 180), chart)
	if d.Revision != "" || d.AttemptedRevision != "main@sha1:"+shaC3 || !d.FailingSince.Equal(hrAt(205)) {
		t.Errorf("failed upgrade: %+v", d)
	}
	if got := RecordedHelmReleaseRevision(hr, "main@sha1:"+shaC2); got != "main@sha1:"+shaC2 {
		t.Errorf("recorded c2 not kept for the deployed release: %q", got)
	}
	if got := RecordedHelmReleaseRevision(hr, "main@sha1:"+shaC1); got != "" {
		t.Errorf("recorded c1 kept for a release of c2: %q", got)
	}

	// Remediated by a rollback: a new deployed release of the old chart; Ready=False.
	rollback := snapshot(4, v2, "deployed", 210)
	failed.Status = "superseded"
	hr.Status.History[1].Status = "superseded"
	hr.Status.History = append(helmv2.Snapshots{rollback}, hr.Status.History...)
	d = FromHelmRelease(hr, gitRepo(shaC3, 180), chart)
	if d.Revision != "" || d.FailingSince.IsZero() {
		t.Errorf("after rollback: %+v", d)
	}
}

func TestFromHelmReleaseChartVersionStrategy(t *testing.T) {
	// Default strategy: the chart version names no commit.
	hr := upgraded("6.5.0") // deployed at 98
	chart := helmChart(sourcev1.ReconcileStrategyChartVersion, shaC2, "6.5.0", 90)
	tests := []struct {
		name  string
		src   *sourcev1.GitRepository
		chart *sourcev1.HelmChart
		want  string
	}{
		{"chart built from the fetched commit", gitRepo(shaC2, 85), chart, "main@sha1:" + shaC2},
		{"built the second it was fetched", gitRepo(shaC2, 90), chart, "main@sha1:" + shaC2},
		{"artifact reused for a later commit", gitRepo(shaC3, 150), helmChart("", shaC3, "6.5.0", 90), ""},
		{"source ahead of the chart", gitRepo(shaC3, 150), chart, ""},
		{"chart rebuilt after the release", gitRepo(shaC2, 85), helmChart("", shaC2, "6.5.0", 99), ""},
		{"chart version bumped, release behind", gitRepo(shaC3, 150), helmChart("", shaC3, "6.6.0", 151), ""},
		{"no source", nil, chart, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FromHelmRelease(hr, tt.src, tt.chart).Revision; got != tt.want {
				t.Errorf("Revision = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFromHelmReleaseChartRef(t *testing.T) {
	hr := upgraded("6.5.0+" + shaC2[:12])
	hr.Spec.Chart = nil
	hr.Spec.ChartRef = &helmv2.CrossNamespaceSourceReference{Kind: KindHelmChart, Name: "podinfo", Namespace: "charts"}
	if key, ok := HelmChartOf(hr); !ok || key != (types.NamespacedName{Namespace: "charts", Name: "podinfo"}) {
		t.Errorf("HelmChartOf(chartRef) = %v, %v", key, ok)
	}
	chart := helmChart(sourcev1.ReconcileStrategyRevision, shaC2, "6.5.0+"+shaC2[:12], 90)
	chart.Namespace, chart.Name = "charts", "podinfo"
	d := FromHelmRelease(hr, gitRepo(shaC2, 80), chart)
	if d.Revision != "main@sha1:"+shaC2 || d.SourceNamespace != "charts" || d.SourceName != "manifests" {
		t.Errorf("chartRef to a HelmChart: %+v", d)
	}

	// A HelmChart from a HelmRepository names no commit.
	chart.Spec.SourceRef.Kind = sourcev1.HelmRepositoryKind
	if d := FromHelmRelease(hr, nil, chart); d.Revision != "" || d.SourceKind != sourcev1.HelmRepositoryKind {
		t.Errorf("HelmRepository chart: %+v", d)
	}
}

func TestFromHelmReleaseOCI(t *testing.T) {
	digest2 := "sha256:" + strings.Repeat("2d", 32)
	v := "6.5.0+" + strings.Repeat("2d", 6)
	hr := upgraded(v)
	hr.Spec.Chart = nil
	hr.Spec.ChartRef = &helmv2.CrossNamespaceSourceReference{Kind: KindOCIRepository, Name: "podinfo"}
	hr.Status.HelmChart = ""
	hr.Status.History[0].OCIDigest = digest2
	hr.Status.LastAttemptedRevisionDigest = digest2
	if _, ok := HelmChartOf(hr); ok {
		t.Error("HelmChartOf(OCIRepository chartRef) found a HelmChart")
	}
	oci := &sourcev1.OCIRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: "podinfo", Name: "podinfo", Annotations: map[string]string{AnnotationProvider: "git"}},
		Spec:       sourcev1.OCIRepositorySpec{URL: "oci://ghcr.io/acme/charts/podinfo"},
		Status: sourcev1.OCIRepositoryStatus{Artifact: &meta.Artifact{
			Revision: "6.5.0@" + digest2, Digest: "sha256:" + strings.Repeat("f", 64), LastUpdateTime: metav1.NewTime(hrAt(90)),
			Metadata: map[string]string{OCIRevisionKey: "main@sha1:" + shaC2, OCISourceKey: "https://github.com/acme/charts"},
		}},
	}
	d := FromHelmReleaseOCI(hr, oci)
	want := Deployment{UID: "hr-uid", Kind: KindHelmRelease, Namespace: "podinfo", Name: "podinfo",
		SourceKind: KindOCIRepository, SourceNamespace: "podinfo", SourceName: "podinfo",
		RepositoryURL: "https://github.com/acme/charts", Provider: "git", Revision: "main@sha1:" + shaC2, Applied: hrAt(100),
		SourceRevision: "main@sha1:" + shaC2, SourceFetched: hrAt(90), Fetched: hrAt(90), AttemptedRevision: "main@sha1:" + shaC2,
		Message: "Helm upgrade succeeded for release podinfo/podinfo.v2 with chart podinfo@6.5.0+2d2d2d2d2d2d"}
	if d != want {
		t.Errorf("OCI chart:\n got %+v\nwant %+v", d, want)
	}

	// The OCIRepository has a newer artifact the release has not applied yet.
	next := oci.DeepCopy()
	next.Status.Artifact.Revision = "6.5.1@sha256:" + strings.Repeat("3d", 32)
	next.Status.Artifact.Metadata[OCIRevisionKey] = "main@sha1:" + shaC3
	if d := FromHelmReleaseOCI(hr, next); d.Revision != "" || d.SourceRevision != "main@sha1:"+shaC3 {
		t.Errorf("OCI source ahead: %+v", d)
	}
	// No revision annotation: nothing to name.
	bare := oci.DeepCopy()
	bare.Status.Artifact.Metadata = nil
	if d := FromHelmReleaseOCI(hr, bare); d.Revision != "" {
		t.Errorf("OCI artifact without revision annotation: %+v", d)
	}
}

func TestFromHelmReleaseAnnotations(t *testing.T) {
	hr := upgraded("6.5.0+" + shaC2[:12])
	src := gitRepo(shaC2, 80)
	src.Annotations = map[string]string{AnnotationRepository: "acme/src", AnnotationExporterInfoPath: "ci/info.json"}
	chart := helmChart(sourcev1.ReconcileStrategyRevision, shaC2, "6.5.0+"+shaC2[:12], 90)
	d := FromHelmRelease(hr, src, chart)
	if d.RepositoryOverride != "acme/src" || d.ExporterInfoPath != "ci/info.json" || !d.HasExporterInfoPath {
		t.Errorf("source annotations: %+v", d)
	}
	hr.Annotations = map[string]string{AnnotationRepository: "acme/own", AnnotationExporterInfoPath: "", AnnotationProvider: "git"}
	d = FromHelmRelease(hr, src, chart)
	if d.RepositoryOverride != "acme/own" || d.ExporterInfoPath != "" || !d.HasExporterInfoPath || d.Provider != "git" {
		t.Errorf("HelmRelease annotations not preferred: %+v", d)
	}
}

func TestReleaseAppliedTime(t *testing.T) {
	v := "6.5.0+" + shaC2[:12]
	rel := snapshot(2, v, "deployed", 98)
	ready := func(status metav1.ConditionStatus, msg string) metav1.Condition {
		return cond(meta.ReadyCondition, status, "X", msg, 100)
	}
	released := func(msg string) metav1.Condition {
		return cond(helmv2.ReleasedCondition, metav1.ConditionTrue, helmv2.UpgradeSucceededReason, msg, 90)
	}
	upgrade := "Helm upgrade succeeded for release podinfo/podinfo.v2 with chart podinfo@" + v
	tests := []struct {
		name  string
		conds []metav1.Condition
		want  time.Time
	}{
		{"upgrade", []metav1.Condition{ready(metav1.ConditionTrue, upgrade), released(upgrade)}, hrAt(100)},
		{"install", []metav1.Condition{ready(metav1.ConditionTrue, "Helm install succeeded for release podinfo/podinfo.v2 with chart podinfo@"+v)}, hrAt(100)},
		{"tests passed", []metav1.Condition{ready(metav1.ConditionTrue, "Helm test succeeded for release podinfo/podinfo.v2 with chart podinfo@"+v+": 1 test hook completed successfully"), released(upgrade)}, hrAt(100)},
		{"reconciling again: Released", []metav1.Condition{ready(metav1.ConditionUnknown, "Running 'upgrade' action with timeout of 5m0s"), released(upgrade)}, hrAt(90)},
		{"Ready names release v20", []metav1.Condition{ready(metav1.ConditionTrue, "Helm upgrade succeeded for release podinfo/podinfo.v20 with chart podinfo@"+v)}, time.Time{}},
		{"Ready names the chart without metadata", []metav1.Condition{ready(metav1.ConditionTrue, "Helm upgrade succeeded for release podinfo/podinfo.v2 with chart podinfo@6.5.0")}, time.Time{}},
		{"Ready names a longer chart name", []metav1.Condition{ready(metav1.ConditionTrue, "Helm upgrade succeeded for release podinfo/podinfo.v2 with chart my-podinfo@"+v)}, time.Time{}},
		{"failed", []metav1.Condition{ready(metav1.ConditionFalse, "Helm upgrade failed for release podinfo/podinfo.v2 with chart podinfo@"+v+": boom")}, time.Time{}},
		{"no conditions", nil, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ReleaseAppliedTime(tt.conds, rel); !got.Equal(tt.want) {
				t.Errorf("ReleaseAppliedTime() = %v, want %v", got, tt.want)
			}
		})
	}
	if got := ReleaseAppliedTime([]metav1.Condition{ready(metav1.ConditionTrue, upgrade)}, nil); !got.IsZero() {
		t.Errorf("no release: %v", got)
	}
}

func TestVersionCommit(t *testing.T) {
	for in, want := range map[string]string{
		"6.5.0+0123456789ab":   "0123456789ab",
		"6.5.0+0123456789AB.3": "0123456789ab",
		"6.5.0":                "",
		"6.5.0+3":              "",
		"6.5.0+0123456789abc":  "",
		"6.5.0+0123456789ag":   "",
		"6.5.0-rc.1+build.1":   "",
	} {
		if got := versionCommit(in); got != want {
			t.Errorf("versionCommit(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestContainsWord(t *testing.T) {
	for _, tt := range []struct {
		s, word string
		want    bool
	}{
		{"release ns/a.v1 with chart", "ns/a.v1", true},
		{"release ns/a.v10 with chart", "ns/a.v1", false},
		{"release ns/a.v10 and ns/a.v1.", "ns/a.v1", true},
		{"chart a@1.0.0+abc", "a@1.0.0", false},
		{"chart a@1.0.0: ok", "a@1.0.0", true},
		{"chart xa@1.0.0", "a@1.0.0", false},
		{"anything", "", false},
	} {
		if got := containsWord(tt.s, tt.word); got != tt.want {
			t.Errorf("containsWord(%q, %q) = %v, want %v", tt.s, tt.word, got, tt.want)
		}
	}
}
