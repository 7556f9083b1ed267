package controller

import (
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

func kustomization(rev, msg string, at time.Time) *kustomizev1.Kustomization {
	k := &kustomizev1.Kustomization{}
	k.Status.LastAppliedRevision = rev
	k.Status.Conditions = []metav1.Condition{{Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Message: msg, LastTransitionTime: metav1.NewTime(at)}}
	return k
}

func TestAppliedChanged(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	base := kustomization("main@sha1:a", "Applied revision: main@sha1:a", t0)
	tests := []struct {
		name string
		mut  func(k *kustomizev1.Kustomization)
		want bool
	}{
		{"nothing changed", func(*kustomizev1.Kustomization) {}, false},
		{"only the reconcile request handled", func(k *kustomizev1.Kustomization) { k.Status.LastHandledReconcileAt = "now" }, false},
		{"new applied revision", func(k *kustomizev1.Kustomization) { k.Status.LastAppliedRevision = "main@sha1:b" }, true},
		{"new attempted revision", func(k *kustomizev1.Kustomization) { k.Status.LastAttemptedRevision = "main@sha1:c" }, true},
		{"new origin revision", func(k *kustomizev1.Kustomization) { k.Status.LastAppliedOriginRevision = "main@sha1:b" }, true},
		{"ready message", func(k *kustomizev1.Kustomization) { k.Status.Conditions[0].Message = "Applied revision: main@sha1:b" }, true},
		{"ready transition time", func(k *kustomizev1.Kustomization) {
			k.Status.Conditions[0].LastTransitionTime = metav1.NewTime(t0.Add(time.Second))
		}, true},
		{"ready lost", func(k *kustomizev1.Kustomization) { k.Status.Conditions = nil }, true},
		{"annotation", func(k *kustomizev1.Kustomization) { k.Annotations = map[string]string{"x": "y"} }, true},
		{"source", func(k *kustomizev1.Kustomization) { k.Spec.SourceRef.Name = "other" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := base.DeepCopy()
			tt.mut(n)
			if got := (appliedChanged{}).Update(event.UpdateEvent{ObjectOld: base, ObjectNew: n}); got != tt.want {
				t.Errorf("Update() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSourceChanged(t *testing.T) {
	old := &sourcev1.GitRepository{Spec: sourcev1.GitRepositorySpec{URL: "https://github.com/o/r"}}
	old.Status.Artifact = &meta.Artifact{Revision: "main@sha1:a"}
	status := old.DeepCopy()
	status.Status.ObservedGeneration = 7
	fetched := old.DeepCopy()
	fetched.Status.Artifact = &meta.Artifact{Revision: "main@sha1:b"}
	url := old.DeepCopy()
	url.Spec.URL = "https://github.com/o/other"
	ann := old.DeepCopy()
	ann.Annotations = map[string]string{"flux-commit-tracker.io/repository": "o/r2"}
	for name, tc := range map[string]struct {
		n    *sourcev1.GitRepository
		want bool
	}{"status only": {status, false}, "url": {url, true}, "annotation": {ann, true}, "new artifact": {fetched, true}} {
		if got := (sourceChanged{}).Update(event.UpdateEvent{ObjectOld: old, ObjectNew: tc.n}); got != tc.want {
			t.Errorf("%s: Update() = %v, want %v", name, got, tc.want)
		}
	}
}
