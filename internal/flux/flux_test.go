package flux

import (
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestAppliedTime(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	rev := "main@sha1:0123456789abcdef0123456789abcdef01234567"
	ready := func(status metav1.ConditionStatus, msg string) []metav1.Condition {
		return []metav1.Condition{
			{Type: "Healthy", Status: metav1.ConditionTrue, Message: msg, LastTransitionTime: metav1.NewTime(t0.Add(-time.Hour))},
			{Type: meta.ReadyCondition, Status: status, Message: msg, LastTransitionTime: metav1.NewTime(t0)},
		}
	}
	tests := []struct {
		name  string
		conds []metav1.Condition
		rev   string
		want  time.Time
	}{
		{"ready for this revision", ready(metav1.ConditionTrue, "Applied revision: "+rev), rev, t0},
		{"ready for another revision", ready(metav1.ConditionTrue, "Applied revision: main@sha1:ffff"), rev, time.Time{}},
		{"not ready", ready(metav1.ConditionFalse, "Applied revision: "+rev), rev, time.Time{}},
		{"reconciling", ready(metav1.ConditionUnknown, "Reconciliation in progress"), rev, time.Time{}},
		{"no conditions", nil, rev, time.Time{}},
		{"no revision", ready(metav1.ConditionTrue, "Applied revision: "), "", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AppliedTime(tt.conds, tt.rev); !got.Equal(tt.want) {
				t.Errorf("AppliedTime() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFromKustomization(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	k := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web", UID: "u1"},
		Spec:       kustomizev1.KustomizationSpec{SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: KindGitRepository, Name: "repo", Namespace: "flux-system"}},
	}
	k.Status.LastAppliedRevision = "main@sha1:abc"
	k.Status.Conditions = []metav1.Condition{{Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Message: "Applied revision: main@sha1:abc", LastTransitionTime: metav1.NewTime(t0)}}
	src := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{AnnotationRepository: "acme/src", AnnotationExporterInfoPath: "ci/info.json"}},
		Spec:       sourcev1.GitRepositorySpec{URL: "ssh://git@github.com/acme/manifests"},
	}

	d := FromKustomization(k, src)
	want := Deployment{UID: "u1", Kind: KindKustomization, Namespace: "apps", Name: "web", SourceKind: KindGitRepository,
		SourceNamespace: "flux-system", SourceName: "repo", RepositoryURL: "ssh://git@github.com/acme/manifests",
		RepositoryOverride: "acme/src", ExporterInfoPath: "ci/info.json", HasExporterInfoPath: true, Revision: "main@sha1:abc", Applied: t0,
		Message: "Applied revision: main@sha1:abc"}
	if d != want {
		t.Errorf("from source annotations:\n got %+v\nwant %+v", d, want)
	}

	// The Kustomization's own annotations win; an empty path disables exporter-info.
	k.Annotations = map[string]string{AnnotationRepository: "acme/own", AnnotationExporterInfoPath: ""}
	d = FromKustomization(k, src)
	if d.RepositoryOverride != "acme/own" || d.ExporterInfoPath != "" || !d.HasExporterInfoPath {
		t.Errorf("Kustomization annotations not preferred: %+v", d)
	}

	// OCI sources name the commit in the origin revision; the source namespace defaults to the object's.
	k.Spec.SourceRef = kustomizev1.CrossNamespaceSourceReference{Kind: KindOCIRepository, Name: "oci"}
	k.Status.LastAppliedRevision = "v1.0.0@sha256:" + "ab"
	k.Status.LastAppliedOriginRevision = "main@sha1:def"
	d = FromKustomization(k, nil)
	if d.Revision != "main@sha1:def" || d.SourceNamespace != "apps" || d.RepositoryURL != "" {
		t.Errorf("OCI source: %+v", d)
	}
}

// TestSourceRef: the GitRepository's spec.ref is carried on the Deployment, so the git mirror fetches only it.
func TestSourceRef(t *testing.T) {
	k := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web"},
		Spec:       kustomizev1.KustomizationSpec{SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: KindGitRepository, Name: "repo"}},
	}
	src := &sourcev1.GitRepository{Spec: sourcev1.GitRepositorySpec{URL: "https://git.example.com/manifests",
		Reference: &sourcev1.GitRepositoryRef{Branch: "release", Tag: "v1", SemVer: ">=1.0", Name: "refs/pull/1/head", Commit: "abc"}}}
	want := GitRef{Branch: "release", Tag: "v1", SemVer: ">=1.0", Name: "refs/pull/1/head", Commit: "abc"}
	if got := FromKustomization(k, src).SourceRef; got != want {
		t.Errorf("Kustomization SourceRef = %+v, want %+v", got, want)
	}
	src.Spec.Reference = nil
	if got := FromKustomization(k, src).SourceRef; !got.IsZero() {
		t.Errorf("no spec.ref gave %+v", got)
	}
}
