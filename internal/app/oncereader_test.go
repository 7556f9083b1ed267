package app

import (
	"context"
	"testing"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/flux"
)

// countingReader counts the Gets that reach it.
type countingReader struct {
	client.Reader
	gets int
}

func (c *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.gets++
	return c.Reader.Get(ctx, key, obj, opts...)
}

// Three Kustomizations on one GitRepository load with one Get of it, each with the source's revision; a missing
// source is asked once too; an unstructured Get of another kind under the same key is not answered from the cache.
func TestOnceReaderReadsASharedSourceOnce(t *testing.T) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{kustomizev1.AddToScheme, sourcev1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	src := &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "shop"},
		Spec:   sourcev1.GitRepositorySpec{URL: "https://github.com/acme/shop.git", Reference: &sourcev1.GitRepositoryRef{Branch: "main"}},
		Status: sourcev1.GitRepositoryStatus{Artifact: &meta.Artifact{Revision: "main@sha1:0123456789abcdef0123456789abcdef01234567"}}}
	counting := &countingReader{Reader: fake.NewClientBuilder().WithScheme(scheme).WithObjects(src).WithStatusSubresource(src).Build()}
	r := newOnceReader(counting)
	ctx := context.Background()
	for _, name := range []string{"a", "b", "c"} {
		k := &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: name},
			Spec: kustomizev1.KustomizationSpec{SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "shop"}}}
		d, err := flux.LoadKustomization(ctx, r, k)
		if err != nil {
			t.Fatalf("load %s: %v", name, err)
		}
		if d.SourceRevision != src.Status.Artifact.Revision || d.RepositoryURL != src.Spec.URL {
			t.Errorf("%s: source revision %q, url %q; want the GitRepository's", name, d.SourceRevision, d.RepositoryURL)
		}
	}
	if counting.gets != 1 {
		t.Errorf("%d Gets of the shared GitRepository, want 1", counting.gets)
	}
	for range 2 {
		if err := r.Get(ctx, client.ObjectKey{Namespace: "apps", Name: "gone"}, &sourcev1.GitRepository{}); !apierrors.IsNotFound(err) {
			t.Errorf("missing source: %v, want not found", err)
		}
	}
	if counting.gets != 2 {
		t.Errorf("%d Gets after asking twice for a missing source, want 2", counting.gets)
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(kustomizev1.GroupVersion.WithKind(kustomizev1.KustomizationKind))
	if err := r.Get(ctx, client.ObjectKey{Namespace: "apps", Name: "shop"}, u); !apierrors.IsNotFound(err) {
		t.Errorf("Kustomization apps/shop: %v, want not found (only a GitRepository has that name)", err)
	}
}
