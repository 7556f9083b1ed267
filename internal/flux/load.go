package flux

import (
	"context"
	"errors"
	"fmt"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ErrSourceMissing reports a source that does not exist (yet): its creation makes the object trackable.
var ErrSourceMissing = errors.New("source not found")

// ErrNotTracked reports an object whose source names no commit (a Helm repository chart, an OCI source that
// is not served, a Bucket).
var ErrNotTracked = errors.New("source names no commit")

// LoadKustomization reads k's source and returns its Deployment; a source kind that names no commit leaves the
// Deployment without one.
func LoadKustomization(ctx context.Context, r client.Reader, k *kustomizev1.Kustomization) (Deployment, error) {
	var src client.Object
	switch k.Spec.SourceRef.Kind {
	case sourcev1.GitRepositoryKind:
		src = &sourcev1.GitRepository{}
	case sourcev1.OCIRepositoryKind:
		src = &sourcev1.OCIRepository{}
	}
	if src != nil {
		key := refKey(k.Spec.SourceRef.Namespace, k.Namespace, k.Spec.SourceRef.Name)
		if err := get(ctx, r, key, src); err != nil {
			return Deployment{}, err
		}
	}
	return FromKustomization(k, src), nil
}

// LoadHelmRelease reads hr's chart and sources and returns its Deployment; ociServed says whether
// OCIRepository v1 is served (when not, a release from one is not tracked).
func LoadHelmRelease(ctx context.Context, r client.Reader, hr *helmv2.HelmRelease, ociServed bool) (Deployment, error) {
	if key, ok := OCIRepositoryOf(hr); ok {
		if !ociServed {
			return Deployment{}, fmt.Errorf("OCIRepository %s: v1 not served: %w", key, ErrNotTracked)
		}
		var src sourcev1.OCIRepository
		if err := get(ctx, r, key, &src); err != nil {
			return Deployment{}, err
		}
		return FromHelmReleaseOCI(hr, &src), nil
	}
	key, ok := HelmChartOf(hr)
	if !ok {
		return Deployment{}, fmt.Errorf("chart of %s/%s: %w", hr.Namespace, hr.Name, ErrNotTracked)
	}
	var chart sourcev1.HelmChart
	if err := get(ctx, r, key, &chart); err != nil {
		return Deployment{}, err
	}
	if chart.Spec.SourceRef.Kind != sourcev1.GitRepositoryKind {
		return Deployment{}, fmt.Errorf("HelmChart %s from a %s: %w", key, chart.Spec.SourceRef.Kind, ErrNotTracked)
	}
	var src sourcev1.GitRepository
	if err := get(ctx, r, types.NamespacedName{Namespace: chart.Namespace, Name: chart.Spec.SourceRef.Name}, &src); err != nil {
		return Deployment{}, err
	}
	return FromHelmRelease(hr, &src, &chart), nil
}

// get reads obj; a missing one wraps ErrSourceMissing.
func get(ctx context.Context, r client.Reader, key types.NamespacedName, obj client.Object) error {
	err := r.Get(ctx, key, obj)
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%T %s: %w", obj, key, ErrSourceMissing)
	}
	return fmt.Errorf("get %T %s: %w", obj, key, err)
}
