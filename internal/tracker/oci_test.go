package tracker_test

import (
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/oci"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/oci/ocitest"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// TestOCIArtifactExporterInfo: a Kustomization from an OCIRepository; the applied artifact's exporter-info layer
// names the head commit's upstream commits.
func TestOCIArtifactExporterInfo(t *testing.T) {
	const u1 = "1111111111111111111111111111111111111111"
	reg := ocitest.NewRegistry(t)
	client, err := oci.New(oci.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, withExporterInfo(), func(o *tracker.Options) { o.Artifacts = client })
	c0 := f.commit(0, nil)
	f.baseline("app", c0)
	c1 := f.commit(100, nil)
	c2 := f.commit(200, nil)
	digest := reg.Push(t, "manifests", "latest", map[string]string{
		oci.AnnotationRevision: rev(c2), oci.AnnotationSource: repoURL,
	}, []byte(exporterInfo(u1, 150)))

	d := dep("app", rev(c2), at(260))
	d.SourceKind, d.OCIURL, d.OCIDigest = "OCIRepository", reg.URL("manifests"), digest
	res := f.mustProcess(d, tracker.Recorded)
	wantCommits(t, res.Commits, c1, c2)
	wantSamples(t, res.Samples, append(plain(c1, at(100), at(260)),
		smp(latency.StageReconcile, c2, "", at(200), at(260), 60*time.Second),
		smp(latency.StageExport, c2, u1, at(150), at(200), 50*time.Second),
		smp(latency.StageE2E, c2, u1, at(150), at(260), 110*time.Second))...)

	// An unknown artifact is not an error: the head commit has no upstream stage.
	c3 := f.commit(300, nil)
	d = dep("app", rev(c3), at(330))
	d.SourceKind, d.OCIURL, d.OCIDigest = "OCIRepository", reg.URL("manifests"), "sha256:"+u1+u1[:24]
	res = f.mustProcess(d, tracker.Recorded)
	wantSamples(t, res.Samples, plain(c3, at(300), at(330))...)
	if n := f.tel.Counter(t, telemetry.MetricErrors); n != 0 {
		t.Errorf("errors counted: %d, want 0", n)
	}
}
