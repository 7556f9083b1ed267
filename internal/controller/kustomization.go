// Package controller wires the tracker into controller-runtime: it watches Flux Kustomizations and HelmReleases
// and the sources they use, and hands each applied revision to the tracker. It never writes Flux objects.
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/flux"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// sourceRefIndex indexes Kustomizations by "Kind/namespace/name" of their source.
const sourceRefIndex = ".spec.sourceRef"

// sourceWait is how long to wait for a source that is not in the cache yet.
const sourceWait = 5 * time.Second

// Processor is what the reconciler hands each Kustomization to; *tracker.Tracker implements it.
type Processor interface {
	Process(ctx context.Context, d flux.Deployment) (tracker.Result, error)
	Forget(ctx context.Context, kind, namespace, name string) error
}

// KustomizationReconciler feeds applied Kustomization revisions to the tracker.
type KustomizationReconciler struct {
	Client    client.Client
	Processor Processor
	Logger    *slog.Logger
	// Ready gates reconciles until the ledger is loaded; nil means ready.
	Ready <-chan struct{}
	// Workers is the number of objects reconciled at once.
	Workers int
}

// SetupWithManager registers the indexes and the controller.
func (r *KustomizationReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &kustomizev1.Kustomization{}, sourceRefIndex, func(o client.Object) []string {
		k := o.(*kustomizev1.Kustomization)
		return []string{sourceKey(k)}
	}); err != nil {
		return fmt.Errorf("index Kustomizations by source: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("kustomization").
		For(&kustomizev1.Kustomization{}, builder.WithPredicates(appliedChanged{})).
		Watches(&sourcev1.GitRepository{}, handler.EnqueueRequestsFromMapFunc(r.forSource(sourcev1.GitRepositoryKind)), builder.WithPredicates(sourceChanged{})).
		Watches(&sourcev1.OCIRepository{}, handler.EnqueueRequestsFromMapFunc(r.forSource(sourcev1.OCIRepositoryKind)), builder.WithPredicates(sourceChanged{})).
		WithOptions(workerOptions(r.Workers)).
		Complete(r)
}

// Reconcile hands the Kustomization's applied revision to the tracker.
func (r *KustomizationReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if err := waitReady(ctx, r.Ready); err != nil {
		return ctrl.Result{}, err
	}
	var k kustomizev1.Kustomization
	if found, err := getOrForget(ctx, r.Client, r.Processor, flux.KindKustomization, req, &k); !found {
		return ctrl.Result{}, err
	}

	d, err := flux.LoadKustomization(ctx, r.Client, &k)
	if errors.Is(err, flux.ErrSourceMissing) {
		// Not ready is not an error: the source event re-enqueues this object too.
		r.Logger.DebugContext(ctx, "source not found yet", "namespace", k.Namespace, "name", k.Name, "error", err)
		return ctrl.Result{RequeueAfter: sourceWait}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	return process(ctx, r.Processor, d)
}

// forSource enqueues the Kustomizations that use a source of kind.
func (r *KustomizationReconciler) forSource(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		return r.usersOf(ctx, fmt.Sprintf("%s/%s/%s", kind, o.GetNamespace(), o.GetName()))
	}
}

// usersOf lists the Kustomizations whose source key is key.
func (r *KustomizationReconciler) usersOf(ctx context.Context, key string) []reconcile.Request {
	var list kustomizev1.KustomizationList
	if err := r.Client.List(ctx, &list, client.MatchingFields{sourceRefIndex: key}); err != nil {
		r.Logger.ErrorContext(ctx, "list Kustomizations for source", "source", key, "error", err)
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, k := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: k.Namespace, Name: k.Name}})
	}
	return reqs
}

func sourceKey(k *kustomizev1.Kustomization) string {
	ns := k.Spec.SourceRef.Namespace
	if ns == "" {
		ns = k.Namespace
	}
	return fmt.Sprintf("%s/%s/%s", k.Spec.SourceRef.Kind, ns, k.Spec.SourceRef.Name)
}

// appliedChanged passes Kustomization events that can change what the tracker records.
type appliedChanged struct{ predicate.Funcs }

func (appliedChanged) Create(event.CreateEvent) bool   { return true }
func (appliedChanged) Delete(event.DeleteEvent) bool   { return true }
func (appliedChanged) Generic(event.GenericEvent) bool { return false }
func (appliedChanged) Update(e event.UpdateEvent) bool {
	o, okOld := e.ObjectOld.(*kustomizev1.Kustomization)
	n, okNew := e.ObjectNew.(*kustomizev1.Kustomization)
	if !okOld || !okNew {
		return false
	}
	return o.Status.LastAppliedRevision != n.Status.LastAppliedRevision ||
		o.Status.LastAppliedOriginRevision != n.Status.LastAppliedOriginRevision ||
		o.Status.LastAttemptedRevision != n.Status.LastAttemptedRevision ||
		!readyEqual(o, n) ||
		!mapsEqual(o.Annotations, n.Annotations) ||
		o.Spec.SourceRef != n.Spec.SourceRef
}

func readyEqual(a, b *kustomizev1.Kustomization) bool {
	ra := apimeta.FindStatusCondition(a.Status.Conditions, meta.ReadyCondition)
	rb := apimeta.FindStatusCondition(b.Status.Conditions, meta.ReadyCondition)
	if ra == nil || rb == nil {
		return ra == rb
	}
	return ra.Status == rb.Status && ra.Message == rb.Message && ra.LastTransitionTime.Equal(&rb.LastTransitionTime)
}

// sourceChanged passes source events that change the repository the tracker reads or the revision it fetched
// (what its objects will apply next).
type sourceChanged struct{ predicate.Funcs }

func (sourceChanged) Create(event.CreateEvent) bool   { return true }
func (sourceChanged) Delete(event.DeleteEvent) bool   { return false }
func (sourceChanged) Generic(event.GenericEvent) bool { return false }
func (sourceChanged) Update(e event.UpdateEvent) bool {
	o, n := sourceView(e.ObjectOld), sourceView(e.ObjectNew)
	return o != n || !mapsEqual(e.ObjectOld.GetAnnotations(), e.ObjectNew.GetAnnotations())
}

// sourceFacts is what of a source the tracker reads: its URL, artifact revision and the artifact's recorded origin.
type sourceFacts struct{ url, revision, origin string }

func sourceView(o client.Object) sourceFacts {
	switch s := o.(type) {
	case *sourcev1.GitRepository:
		f := sourceFacts{url: s.Spec.URL}
		if s.Status.Artifact != nil {
			f.revision = s.Status.Artifact.Revision
		}
		return f
	case *sourcev1.OCIRepository:
		f := sourceFacts{url: s.Spec.URL}
		if a := s.Status.Artifact; a != nil {
			f.revision, f.origin = a.Revision, a.Metadata[flux.OCIRevisionKey]+" "+a.Metadata[flux.OCISourceKey]
		}
		return f
	}
	return sourceFacts{}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
