// Package ocitest serves an in-process OCI registry on 127.0.0.1 and pushes Flux-style artifacts to it, for tests.
package ocitest

import (
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/oci"
)

// Media types of a Flux artifact (flux push artifact).
const (
	fluxConfigMediaType  = "application/vnd.cncf.flux.config.v1+json"
	fluxContentMediaType = "application/vnd.cncf.flux.content.v1.tar+gzip"
)

// Registry is a running in-process registry.
type Registry struct {
	// Host is host:port of the registry.
	Host string
}

// NewRegistry starts a registry that stops when the test ends.
func NewRegistry(tb testing.TB) *Registry {
	tb.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	tb.Cleanup(srv.Close)
	return &Registry{Host: strings.TrimPrefix(srv.URL, "http://")}
}

// URL is the OCIRepository spec.url of repo.
func (r *Registry) URL(repo string) string { return "oci://" + r.Host + "/" + repo }

// Push writes an artifact with manifest annotations and, when exporterInfo is not nil, an exporter-info layer, to
// repo:tag, and returns its manifest digest.
func (r *Registry) Push(tb testing.TB, repo, tag string, annotations map[string]string, exporterInfo []byte) string {
	tb.Helper()
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), fluxConfigMediaType)
	layers := []v1.Layer{static.NewLayer([]byte("manifests "+repo+":"+tag), fluxContentMediaType)}
	if exporterInfo != nil {
		layers = append(layers, static.NewLayer(exporterInfo, oci.ExporterInfoMediaType))
	}
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		tb.Fatal(err)
	}
	img = mutate.Annotations(img, annotations).(v1.Image)
	ref, err := name.ParseReference(r.Host+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		tb.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		tb.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		tb.Fatal(err)
	}
	return d.String()
}
