package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/flux"
)

const (
	// helmChartIndex indexes HelmReleases by "namespace/name" of the HelmChart that builds their chart.
	helmChartIndex = ".helmChart"
	// ociRepositoryIndex indexes HelmReleases by "namespace/name" of the OCIRepository their chartRef names.
	ociRepositoryIndex = ".spec.chartRef.ociRepository"
	// chartSourceIndex indexes HelmCharts by "Kind/namespace/name" of their source.
	chartSourceIndex = ".spec.sourceRef"
)

// HelmAPIs says which of the kinds the HelmRelease controller reads the cluster serves.
type HelmAPIs struct {
	HelmRelease   bool // helm.toolkit.fluxcd.io/v2
	HelmChart     bool // source.toolkit.fluxcd.io/v1
	OCIRepository bool // source.toolkit.fluxcd.io/v1 (Flux 2.6 and later)
}

// Enabled reports whether HelmReleases can be tracked at all.
func (a HelmAPIs) Enabled() bool { return a.HelmRelease && a.HelmChart }

// DiscoverHelmAPIs asks the API server (through mapper) which of those kinds it serves; a kind it does not know
// is not an error.
func DiscoverHelmAPIs(mapper apimeta.RESTMapper) (HelmAPIs, error) {
	var errs []error
	served := func(gvk schema.GroupVersionKind) bool {
		_, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil && !apimeta.IsNoMatchError(err) {
			errs = append(errs, fmt.Errorf("discover %s: %w", gvk, err))
		}
		return err == nil
	}
	apis := HelmAPIs{
		HelmRelease:   served(helmv2.GroupVersion.WithKind(helmv2.HelmReleaseKind)),
		HelmChart:     served(sourcev1.GroupVersion.WithKind(sourcev1.HelmChartKind)),
		OCIRepository: served(sourcev1.GroupVersion.WithKind(sourcev1.OCIRepositoryKind)),
	}
	return apis, errors.Join(errs...)
}

// Readable returns a with the kinds namespace ("" for all) forbids listing turned off, and an error naming them;
// other API errors fail.
func (a HelmAPIs) Readable(ctx context.Context, reader client.Reader, namespace string) (HelmAPIs, error) {
	var forbidden []error
	check := func(on *bool, list client.ObjectList) error {
		if !*on {
			return nil
		}
		err := reader.List(ctx, list, client.InNamespace(namespace), client.Limit(1))
		switch {
		case apierrors.IsForbidden(err):
			*on = false
			forbidden = append(forbidden, err)
		case err != nil:
			return fmt.Errorf("list %T: %w", list, err)
		}
		return nil
	}
	for _, c := range []struct {
		on   *bool
		list client.ObjectList
	}{{&a.HelmRelease, &helmv2.HelmReleaseList{}}, {&a.HelmChart, &sourcev1.HelmChartList{}}, {&a.OCIRepository, &sourcev1.OCIRepositoryList{}}} {
		if err := check(c.on, c.list); err != nil {
			return HelmAPIs{}, err
		}
	}
	return a, errors.Join(forbidden...)
}

// HelmReleaseReconciler feeds applied HelmRelease revisions to the tracker: releases whose chart a HelmChart
// builds from a GitRepository, or that come from an OCIRepository.
type HelmReleaseReconciler struct {
	Client    client.Client
	Processor Processor
	Logger    *slog.Logger
	// Ready gates reconciles until the ledger is loaded; nil means ready.
	Ready <-chan struct{}
	// Workers is the number of objects reconciled at once.
	Workers int
	// OCI enables releases with a chartRef to an OCIRepository; the cluster must serve OCIRepository v1.
	OCI bool
	// Recorded returns the revision last recorded for an object UID (the ledger's), so that a release whose
	// HelmChart has moved on (a failing upgrade) keeps naming its commit for the rollout gauges; nil disables it.
	Recorded func(uid string) string
}

// SetupWithManager registers the indexes and the controller.
func (r *HelmReleaseReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &helmv2.HelmRelease{}, helmChartIndex, func(o client.Object) []string {
		if key, ok := flux.HelmChartOf(o.(*helmv2.HelmRelease)); ok {
			return []string{key.String()}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("index HelmReleases by HelmChart: %w", err)
	}
	if err := idx.IndexField(ctx, &sourcev1.HelmChart{}, chartSourceIndex, func(o client.Object) []string {
		c := o.(*sourcev1.HelmChart)
		return []string{fmt.Sprintf("%s/%s/%s", c.Spec.SourceRef.Kind, c.Namespace, c.Spec.SourceRef.Name)}
	}); err != nil {
		return fmt.Errorf("index HelmCharts by source: %w", err)
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("helmrelease").
		For(&helmv2.HelmRelease{}, builder.WithPredicates(releaseChanged{})).
		Watches(&sourcev1.HelmChart{}, handler.EnqueueRequestsFromMapFunc(r.forHelmChart), builder.WithPredicates(chartChanged{})).
		Watches(&sourcev1.GitRepository{}, handler.EnqueueRequestsFromMapFunc(r.forGitRepository), builder.WithPredicates(sourceChanged{}))
	if r.OCI {
		if err := idx.IndexField(ctx, &helmv2.HelmRelease{}, ociRepositoryIndex, func(o client.Object) []string {
			if key, ok := flux.OCIRepositoryOf(o.(*helmv2.HelmRelease)); ok {
				return []string{key.String()}
			}
			return nil
		}); err != nil {
			return fmt.Errorf("index HelmReleases by OCIRepository: %w", err)
		}
		b = b.Watches(&sourcev1.OCIRepository{}, handler.EnqueueRequestsFromMapFunc(r.forOCIRepository), builder.WithPredicates(ociChanged{}))
	}
	return b.WithOptions(workerOptions(r.Workers)).Complete(r)
}

// Reconcile hands the HelmRelease's deployed release, as a revision, to the tracker.
func (r *HelmReleaseReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if err := waitReady(ctx, r.Ready); err != nil {
		return ctrl.Result{}, err
	}
	var hr helmv2.HelmRelease
	if found, err := getOrForget(ctx, r.Client, r.Processor, flux.KindHelmRelease, req, &hr); !found {
		return ctrl.Result{}, err
	}
	log := r.Logger.With("namespace", hr.Namespace, "kind", flux.KindHelmRelease, "name", hr.Name)

	d, err := flux.LoadHelmRelease(ctx, r.Client, &hr, r.OCI)
	switch {
	case errors.Is(err, flux.ErrNotTracked):
		log.DebugContext(ctx, "release not tracked", "reason", err)
		return ctrl.Result{}, nil
	case errors.Is(err, flux.ErrSourceMissing):
		// Its creation re-enqueues the release.
		log.DebugContext(ctx, "source not found yet", "error", err)
		return ctrl.Result{RequeueAfter: sourceWait}, nil
	case err != nil:
		return ctrl.Result{}, err
	}
	if d.Revision == "" && r.Recorded != nil {
		d.Revision = flux.RecordedHelmReleaseRevision(&hr, r.Recorded(d.UID))
	}

	return process(ctx, r.Processor, d)
}

// forHelmChart enqueues the HelmReleases whose chart a HelmChart builds.
func (r *HelmReleaseReconciler) forHelmChart(ctx context.Context, o client.Object) []reconcile.Request {
	return r.releasesBy(ctx, helmChartIndex, types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}.String())
}

// forGitRepository enqueues the HelmReleases whose HelmChart builds from a GitRepository.
func (r *HelmReleaseReconciler) forGitRepository(ctx context.Context, o client.Object) []reconcile.Request {
	var charts sourcev1.HelmChartList
	key := fmt.Sprintf("%s/%s/%s", sourcev1.GitRepositoryKind, o.GetNamespace(), o.GetName())
	if err := r.Client.List(ctx, &charts, client.MatchingFields{chartSourceIndex: key}); err != nil {
		r.Logger.ErrorContext(ctx, "list HelmCharts for source", "source", key, "error", err)
		return nil
	}
	var reqs []reconcile.Request
	for _, c := range charts.Items {
		reqs = append(reqs, r.forHelmChart(ctx, &c)...)
	}
	return reqs
}

// forOCIRepository enqueues the HelmReleases whose chartRef names an OCIRepository.
func (r *HelmReleaseReconciler) forOCIRepository(ctx context.Context, o client.Object) []reconcile.Request {
	return r.releasesBy(ctx, ociRepositoryIndex, types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}.String())
}

func (r *HelmReleaseReconciler) releasesBy(ctx context.Context, index, key string) []reconcile.Request {
	var list helmv2.HelmReleaseList
	if err := r.Client.List(ctx, &list, client.MatchingFields{index: key}); err != nil {
		r.Logger.ErrorContext(ctx, "list HelmReleases", "index", index, "key", key, "error", err)
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, hr := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: hr.Namespace, Name: hr.Name}})
	}
	return reqs
}

// releaseChanged passes HelmRelease events that can change what the tracker records: the newest release, the
// last attempt, the Ready and Released conditions, annotations and where the chart comes from.
type releaseChanged struct{ predicate.Funcs }

func (releaseChanged) Create(event.CreateEvent) bool   { return true }
func (releaseChanged) Delete(event.DeleteEvent) bool   { return true }
func (releaseChanged) Generic(event.GenericEvent) bool { return false }
func (releaseChanged) Update(e event.UpdateEvent) bool {
	o, okOld := e.ObjectOld.(*helmv2.HelmRelease)
	n, okNew := e.ObjectNew.(*helmv2.HelmRelease)
	if !okOld || !okNew {
		return false
	}
	return releaseState(o) != releaseState(n) ||
		!mapsEqual(o.Annotations, n.Annotations) ||
		!chartSourceEqual(o, n)
}

// releaseStateKey is the part of a HelmRelease's status the tracker reads.
type releaseStateKey struct {
	version                    int
	status, chartVersion, oci  string
	deployed                   int64
	attempted, attemptedDigest string
	ready, released            conditionKey
}

type conditionKey struct {
	status, message string
	at              int64
}

func releaseState(hr *helmv2.HelmRelease) releaseStateKey {
	k := releaseStateKey{
		attempted: hr.Status.LastAttemptedRevision, attemptedDigest: hr.Status.LastAttemptedRevisionDigest,
		ready: conditionOf(hr.Status.Conditions, meta.ReadyCondition), released: conditionOf(hr.Status.Conditions, helmv2.ReleasedCondition),
	}
	// The newest snapshot, found without sorting the cached history in place.
	var latest *helmv2.Snapshot
	for _, s := range hr.Status.History {
		if s != nil && (latest == nil || s.Version > latest.Version) {
			latest = s
		}
	}
	if latest != nil {
		k.version, k.status, k.chartVersion, k.oci, k.deployed = latest.Version, latest.Status, latest.ChartVersion, latest.OCIDigest, latest.LastDeployed.Unix()
	}
	return k
}

func conditionOf(conds []metav1.Condition, typ string) conditionKey {
	c := apimeta.FindStatusCondition(conds, typ)
	if c == nil {
		return conditionKey{}
	}
	return conditionKey{status: string(c.Status), message: c.Message, at: c.LastTransitionTime.Unix()}
}

func chartSourceEqual(a, b *helmv2.HelmRelease) bool {
	ka, okA := flux.HelmChartOf(a)
	kb, okB := flux.HelmChartOf(b)
	oa, ociA := flux.OCIRepositoryOf(a)
	ob, ociB := flux.OCIRepositoryOf(b)
	return ka == kb && okA == okB && oa == ob && ociA == ociB
}

// chartChanged passes HelmChart events that change which commit its artifact was built from.
type chartChanged struct{ predicate.Funcs }

func (chartChanged) Create(event.CreateEvent) bool   { return true }
func (chartChanged) Delete(event.DeleteEvent) bool   { return false }
func (chartChanged) Generic(event.GenericEvent) bool { return false }
func (chartChanged) Update(e event.UpdateEvent) bool {
	o, okOld := e.ObjectOld.(*sourcev1.HelmChart)
	n, okNew := e.ObjectNew.(*sourcev1.HelmChart)
	if !okOld || !okNew {
		return false
	}
	return o.Spec.SourceRef != n.Spec.SourceRef || o.Spec.ReconcileStrategy != n.Spec.ReconcileStrategy ||
		o.Status.ObservedSourceArtifactRevision != n.Status.ObservedSourceArtifactRevision ||
		artifactKey(o.Status.Artifact) != artifactKey(n.Status.Artifact)
}

// ociChanged passes OCIRepository events that change the repository the tracker reads or the artifact (and
// commit) it serves.
type ociChanged struct{ predicate.Funcs }

func (ociChanged) Create(event.CreateEvent) bool   { return true }
func (ociChanged) Delete(event.DeleteEvent) bool   { return false }
func (ociChanged) Generic(event.GenericEvent) bool { return false }
func (ociChanged) Update(e event.UpdateEvent) bool {
	o, okOld := e.ObjectOld.(*sourcev1.OCIRepository)
	n, okNew := e.ObjectNew.(*sourcev1.OCIRepository)
	if !okOld || !okNew {
		return false
	}
	return !mapsEqual(o.Annotations, n.Annotations) || artifactKey(o.Status.Artifact) != artifactKey(n.Status.Artifact) ||
		artifactMeta(o.Status.Artifact, flux.OCIRevisionKey) != artifactMeta(n.Status.Artifact, flux.OCIRevisionKey) ||
		artifactMeta(o.Status.Artifact, flux.OCISourceKey) != artifactMeta(n.Status.Artifact, flux.OCISourceKey)
}

// artifactKey is what identifies an artifact: its revision and when it was stored.
func artifactKey(a *meta.Artifact) string {
	if a == nil {
		return ""
	}
	return fmt.Sprintf("%s@%d", a.Revision, a.LastUpdateTime.Unix())
}

func artifactMeta(a *meta.Artifact, key string) string {
	if a == nil {
		return ""
	}
	return a.Metadata[key]
}
