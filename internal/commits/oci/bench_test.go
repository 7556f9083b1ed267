package oci_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/static"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/oci"
)

// BenchmarkArtifactSharedByObjects: K Flux objects (Kustomizations on one OCIRepository) ask about each
// new artifact at once. The goal is one manifest fetch per artifact, whatever K.
func BenchmarkArtifactSharedByObjects(b *testing.B) {
	for _, k := range []int{1, 50, 500} {
		b.Run("K="+strconv.Itoa(k), func(b *testing.B) {
			reg := newTestRegistry(b)
			c, _ := newClient(b)
			ref := "oci://" + reg.host + "/app"
			fetches := 0
			for i := range b.N {
				b.StopTimer()
				layer := static.NewLayer(fmt.Appendf(nil, `{"commit":"%040d"}`, i), oci.ExporterInfoMediaType)
				digest := reg.push(b, "app", "v"+strconv.Itoa(i), fluxAnnotations(), layer)
				b.StartTimer()

				var wg sync.WaitGroup
				for range k {
					wg.Go(func() {
						if _, err := c.Artifact(context.Background(), ref, digest); err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
				fetches += reg.manifestGETsOf(digest)
			}
			b.ReportMetric(float64(fetches)/float64(b.N), "manifest-fetches/artifact")
		})
	}
}
