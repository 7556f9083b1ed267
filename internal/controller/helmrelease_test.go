package controller

import (
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

func helmRelease(t0 time.Time) *helmv2.HelmRelease {
	msg := "Helm upgrade succeeded for release apps/web.v2 with chart web@1.0.0+0123456789ab"
	hr := &helmv2.HelmRelease{Spec: helmv2.HelmReleaseSpec{Chart: &helmv2.HelmChartTemplate{Spec: helmv2.HelmChartTemplateSpec{
		Chart: "./chart", SourceRef: helmv2.CrossNamespaceObjectReference{Kind: sourcev1.GitRepositoryKind, Name: "repo"},
	}}}}
	hr.Status.History = helmv2.Snapshots{
		{Version: 2, Status: "deployed", ChartName: "web", ChartVersion: "1.0.0+0123456789ab", LastDeployed: metav1.NewTime(t0)},
		{Version: 1, Status: "superseded", ChartName: "web", ChartVersion: "1.0.0+aaaaaaaaaaaa"},
	}
	hr.Status.LastAttemptedRevision = "1.0.0+0123456789ab"
	hr.Status.Conditions = []metav1.Condition{
		{Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Message: msg, LastTransitionTime: metav1.NewTime(t0)},
		{Type: helmv2.ReleasedCondition, Status: metav1.ConditionTrue, Message: msg, LastTransitionTime: metav1.NewTime(t0)},
	}
	return hr
}

func TestReleaseChanged(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	base := helmRelease(t0)
	tests := []struct {
		name string
		mut  func(hr *helmv2.HelmRelease)
		want bool
	}{
		{"nothing changed", func(*helmv2.HelmRelease) {}, false},
		{"only the reconcile request handled", func(hr *helmv2.HelmRelease) { hr.Status.LastHandledReconcileAt = "now" }, false},
		{"failure count", func(hr *helmv2.HelmRelease) { hr.Status.Failures = 2 }, false},
		{"history order", func(hr *helmv2.HelmRelease) {
			hr.Status.History[0], hr.Status.History[1] = hr.Status.History[1], hr.Status.History[0]
		}, false},
		{"new release", func(hr *helmv2.HelmRelease) {
			hr.Status.History = append(helmv2.Snapshots{{Version: 3, Status: "deployed", ChartVersion: "1.0.0+bbbbbbbbbbbb"}}, hr.Status.History...)
		}, true},
		{"release failed", func(hr *helmv2.HelmRelease) { hr.Status.History[0].Status = "failed" }, true},
		{"new attempted revision", func(hr *helmv2.HelmRelease) { hr.Status.LastAttemptedRevision = "1.0.1" }, true},
		{"new attempted digest", func(hr *helmv2.HelmRelease) { hr.Status.LastAttemptedRevisionDigest = "sha256:ab" }, true},
		{"ready message", func(hr *helmv2.HelmRelease) { hr.Status.Conditions[0].Message = "Running 'upgrade' action" }, true},
		{"ready status", func(hr *helmv2.HelmRelease) { hr.Status.Conditions[0].Status = metav1.ConditionUnknown }, true},
		{"released transition time", func(hr *helmv2.HelmRelease) {
			hr.Status.Conditions[1].LastTransitionTime = metav1.NewTime(t0.Add(time.Second))
		}, true},
		{"annotation", func(hr *helmv2.HelmRelease) { hr.Annotations = map[string]string{"x": "y"} }, true},
		{"chart source", func(hr *helmv2.HelmRelease) {
			hr.Spec.Chart = nil
			hr.Spec.ChartRef = &helmv2.CrossNamespaceSourceReference{Kind: sourcev1.OCIRepositoryKind, Name: "oci"}
		}, true},
		{"values", func(hr *helmv2.HelmRelease) { hr.Spec.Chart.Spec.ValuesFiles = []string{"v.yaml"} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := base.DeepCopy()
			tt.mut(n)
			if got := (releaseChanged{}).Update(event.UpdateEvent{ObjectOld: base, ObjectNew: n}); got != tt.want {
				t.Errorf("Update() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestChartChanged(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	old := &sourcev1.HelmChart{Spec: sourcev1.HelmChartSpec{SourceRef: sourcev1.LocalHelmChartSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "repo"}}}
	old.Status.ObservedSourceArtifactRevision = "main@sha1:a"
	old.Status.Artifact = &meta.Artifact{Revision: "1.0.0", LastUpdateTime: metav1.NewTime(t0)}
	status := old.DeepCopy()
	status.Status.ObservedGeneration = 3
	observed := old.DeepCopy()
	observed.Status.ObservedSourceArtifactRevision = "main@sha1:b"
	rebuilt := old.DeepCopy()
	rebuilt.Status.Artifact.LastUpdateTime = metav1.NewTime(t0.Add(time.Minute))
	bumped := old.DeepCopy()
	bumped.Status.Artifact.Revision = "1.0.1"
	strategy := old.DeepCopy()
	strategy.Spec.ReconcileStrategy = sourcev1.ReconcileStrategyRevision
	for name, tc := range map[string]struct {
		n    *sourcev1.HelmChart
		want bool
	}{"status only": {status, false}, "observed source": {observed, true}, "rebuilt": {rebuilt, true}, "new version": {bumped, true}, "strategy": {strategy, true}} {
		if got := (chartChanged{}).Update(event.UpdateEvent{ObjectOld: old, ObjectNew: tc.n}); got != tc.want {
			t.Errorf("%s: Update() = %v, want %v", name, got, tc.want)
		}
	}
}

func TestOCIChanged(t *testing.T) {
	old := &sourcev1.OCIRepository{}
	old.Status.Artifact = &meta.Artifact{Revision: "1.0.0@sha256:a", Metadata: map[string]string{"org.opencontainers.image.revision": "main@sha1:a"}}
	status := old.DeepCopy()
	status.Status.ObservedGeneration = 2
	artifact := old.DeepCopy()
	artifact.Status.Artifact.Revision = "1.0.0@sha256:b"
	commit := old.DeepCopy()
	commit.Status.Artifact.Metadata["org.opencontainers.image.revision"] = "main@sha1:b"
	for name, tc := range map[string]struct {
		n    *sourcev1.OCIRepository
		want bool
	}{"status only": {status, false}, "artifact": {artifact, true}, "commit": {commit, true}} {
		if got := (ociChanged{}).Update(event.UpdateEvent{ObjectOld: old, ObjectNew: tc.n}); got != tc.want {
			t.Errorf("%s: Update() = %v, want %v", name, got, tc.want)
		}
	}
}

func TestDiscoverHelmAPIs(t *testing.T) {
	helm := helmv2.GroupVersion.WithKind(helmv2.HelmReleaseKind)
	chart := sourcev1.GroupVersion.WithKind(sourcev1.HelmChartKind)
	oci := sourcev1.GroupVersion.WithKind(sourcev1.OCIRepositoryKind)
	mapper := func(kinds ...schema.GroupVersionKind) apimeta.RESTMapper {
		m := apimeta.NewDefaultRESTMapper(nil)
		for _, k := range kinds {
			m.Add(k, apimeta.RESTScopeNamespace)
		}
		return m
	}
	tests := []struct {
		name    string
		mapper  apimeta.RESTMapper
		want    HelmAPIs
		enabled bool
	}{
		{"no helm-controller", mapper(chart, oci), HelmAPIs{HelmChart: true, OCIRepository: true}, false},
		{"Flux 2.3 to 2.5", mapper(helm, chart), HelmAPIs{HelmRelease: true, HelmChart: true}, true},
		{"everything", mapper(helm, chart, oci), HelmAPIs{HelmRelease: true, HelmChart: true, OCIRepository: true}, true},
		{"HelmRelease v2beta1 only", mapper(schema.GroupVersionKind{Group: helm.Group, Version: "v2beta1", Kind: helm.Kind}, chart), HelmAPIs{HelmChart: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DiscoverHelmAPIs(tt.mapper)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || got.Enabled() != tt.enabled {
				t.Errorf("DiscoverHelmAPIs() = %+v (enabled %v), want %+v (enabled %v)", got, got.Enabled(), tt.want, tt.enabled)
			}
		})
	}
}
