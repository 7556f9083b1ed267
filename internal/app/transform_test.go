package app

import (
	"testing"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
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
