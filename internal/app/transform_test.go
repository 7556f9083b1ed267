package app

import (
	"testing"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/kustomize"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestStripKustomizationDropsManagedFieldsAndInventory(t *testing.T) {
	k := &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "a", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kustomize-controller"}}}}
	k.Status.Inventory = &kustomizev1.ResourceInventory{Entries: []kustomizev1.ResourceRef{{ID: "x", Version: "v1"}}}
	k.Status.LastAppliedRevision = "main@sha1:abc"
	out, err := stripKustomization(k)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*kustomizev1.Kustomization)
	if got.ManagedFields != nil || got.Status.Inventory != nil {
		t.Errorf("managedFields %v / inventory %v kept", got.ManagedFields, got.Status.Inventory)
	}
	if got.Status.LastAppliedRevision != "main@sha1:abc" || got.Name != "a" {
		t.Errorf("stripped too much: %+v", got)
	}
}

func TestStripKustomizationKeepsWhatTheTrackerReads(t *testing.T) {
	ready := metav1.Condition{Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Message: "Applied revision: main@sha1:abc"}
	k := &kustomizev1.Kustomization{Spec: kustomizev1.KustomizationSpec{
		Wait: true, HealthChecks: []meta.NamespacedObjectKindReference{{Kind: "Deployment", Name: "app"}},
		SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "repo"},
		Patches:   []kustomize.Patch{{Patch: "a large patch"}}, PostBuild: &kustomizev1.PostBuild{Substitute: map[string]string{"a": "b"}},
	}}
	k.Status.Conditions = []metav1.Condition{{Type: meta.HealthyCondition, Status: metav1.ConditionTrue}, ready, {Type: meta.ReconcilingCondition}}
	out, err := stripKustomization(k)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*kustomizev1.Kustomization)
	if len(got.Status.Conditions) != 1 || got.Status.Conditions[0] != ready {
		t.Errorf("conditions %+v, want Ready only", got.Status.Conditions)
	}
	if got.Spec.Patches != nil || got.Spec.PostBuild != nil {
		t.Errorf("patches %v / postBuild %v kept", got.Spec.Patches, got.Spec.PostBuild)
	}
	if !got.Spec.Wait || len(got.Spec.HealthChecks) != 1 || got.Spec.SourceRef.Name != "repo" {
		t.Errorf("stripped what the tracker reads: %+v", got.Spec)
	}
}

func TestStripSourceKeepsWhatTheTrackerReads(t *testing.T) {
	artifact := &meta.Artifact{Revision: "main@sha1:abc", Metadata: map[string]string{"k": "v"}}
	g := &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"a": "b"}, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "m"}}},
		Spec: sourcev1.GitRepositorySpec{URL: "https://example.com/r", Reference: &sourcev1.GitRepositoryRef{Branch: "main"},
			SecretRef: &meta.LocalObjectReference{Name: "s"}, Ignore: new(string)},
		Status: sourcev1.GitRepositoryStatus{Artifact: artifact, Conditions: []metav1.Condition{{Type: meta.ReadyCondition}}}}
	out, err := stripSource(g)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*sourcev1.GitRepository)
	if got.ManagedFields != nil || got.Spec.Ignore != nil || got.Status.Conditions != nil {
		t.Errorf("kept managedFields %v, ignore %v, conditions %v", got.ManagedFields, got.Spec.Ignore, got.Status.Conditions)
	}
	if got.Spec.URL != "https://example.com/r" || got.Spec.Reference.Branch != "main" || got.Spec.SecretRef.Name != "s" ||
		got.Status.Artifact != artifact || got.Annotations["a"] != "b" {
		t.Errorf("stripped what the tracker reads: %+v", got)
	}
	o := &sourcev1.OCIRepository{Spec: sourcev1.OCIRepositorySpec{URL: "oci://r"}, Status: sourcev1.OCIRepositoryStatus{Artifact: artifact,
		Conditions: []metav1.Condition{{Type: meta.ReadyCondition}}}}
	out, err = stripSource(o)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.(*sourcev1.OCIRepository); got.Status.Conditions != nil || got.Status.Artifact != artifact || got.Spec.URL != "oci://r" {
		t.Errorf("OCIRepository stripped to %+v", got)
	}
}
