package oci_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/oci"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/exporterinfo"
)

const (
	manifestsSHA = "0123456789abcdef0123456789abcdef01234567"
	upstreamSHA  = "89abcdef0123456789abcdef0123456789abcdef"
	sourceURL    = "https://github.com/example/manifests"
	createdAt    = "2025-03-04T05:06:07Z"
)

var exporterInfoJSON = []byte(`{
  "commit": "` + upstreamSHA + `",
  "commits_since_last_export": [
    {"hash": "` + upstreamSHA + `", "message": "feat: ship it", "author": "Ada", "email": "ada@example.com", "time": "2025-03-04T05:00:00Z"}
  ],
  "export_build_link": "https://ci.example.com/runs/1"
}`)

func fluxAnnotations() map[string]string {
	return map[string]string{
		oci.AnnotationRevision: "main@sha1:" + manifestsSHA,
		oci.AnnotationSource:   sourceURL,
		oci.AnnotationCreated:  createdAt,
	}
}

func newClient(t testing.TB, mod ...func(*oci.Options)) (*oci.Client, *outcomes) {
	t.Helper()
	calls := &outcomes{}
	opts := oci.Options{Keychain: anonymous, Insecure: true, OnCall: calls.add}
	for _, m := range mod {
		m(&opts)
	}
	c, err := oci.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	oci.SetRetryBackoff(c, remote.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 2})
	return c, calls
}

func TestArtifactAnnotations(t *testing.T) {
	reg := newTestRegistry(t)
	digest := reg.push(t, "manifests/app", "latest", fluxAnnotations())
	c, calls := newClient(t)

	for _, ref := range []string{"oci://" + reg.host + "/manifests/app", reg.host + "/manifests/app", reg.host + "/manifests/app:latest"} {
		got, err := c.Artifact(context.Background(), ref, digest)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		want := oci.Artifact{
			Digest:   digest,
			Revision: "main@sha1:" + manifestsSHA,
			Source:   sourceURL,
			Created:  time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC),
		}
		if got.Digest != want.Digest || got.Revision != want.Revision || got.Source != want.Source || !got.Created.Equal(want.Created) {
			t.Errorf("%s: Artifact = %+v, want %+v", ref, got, want)
		}
		if got.ExporterInfo != nil {
			t.Errorf("%s: ExporterInfo = %q, want nil for an artifact without the layer", ref, got.ExporterInfo)
		}
	}
	if n := reg.manifestGETsOf(digest); n != 1 {
		t.Errorf("%d manifest GETs, want 1 for three spellings of one repository", n)
	}
	if got, want := calls.all(), []commits.CallOutcome{commits.CallSuccess, commits.CallCacheHit, commits.CallCacheHit}; !slices.Equal(got, want) {
		t.Errorf("OnCall %v, want %v", got, want)
	}
}

func TestArtifactMissingAnnotations(t *testing.T) {
	reg := newTestRegistry(t)
	digest := reg.push(t, "bare", "v1", map[string]string{oci.AnnotationCreated: "yesterday"})
	c, _ := newClient(t)
	got, err := c.Artifact(context.Background(), reg.host+"/bare", digest)
	if err != nil {
		t.Fatal(err)
	}
	if got.Revision != "" || got.Source != "" || !got.Created.IsZero() || got.ExporterInfo != nil {
		t.Errorf("Artifact = %+v, want only the digest", got)
	}
}

func TestArtifactExporterInfo(t *testing.T) {
	reg := newTestRegistry(t)
	layer := static.NewLayer(exporterInfoJSON, oci.ExporterInfoMediaType)
	layerDigest, _ := layer.Digest()
	digest := reg.push(t, "manifests/app", "latest", fluxAnnotations(), layer)
	c, _ := newClient(t)

	got, err := c.Artifact(context.Background(), "oci://"+reg.host+"/manifests/app", digest)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.ExporterInfo, exporterInfoJSON) {
		t.Fatalf("ExporterInfo = %q, want the layer content", got.ExporterInfo)
	}
	info, err := exporterinfo.Decode(got.ExporterInfo)
	if err != nil {
		t.Fatal(err)
	}
	if info.Head() != upstreamSHA || len(info.Commits) != 1 || info.Commits[0].Message != "feat: ship it" {
		t.Errorf("decoded %+v", info)
	}
	if n := reg.blobGETsOf(layerDigest.String()); n != 1 {
		t.Errorf("%d exporter-info blob GETs, want 1", n)
	}

	// Callers get copies: scribbling on one answer does not change the next.
	got.ExporterInfo[0] = 'X'
	again, err := c.Artifact(context.Background(), "oci://"+reg.host+"/manifests/app", digest)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.ExporterInfo, exporterInfoJSON) {
		t.Error("a caller's change to ExporterInfo reached the cache")
	}
	if n := reg.blobGETsOf(layerDigest.String()); n != 1 {
		t.Errorf("%d exporter-info blob GETs after a cached call, want 1", n)
	}
}

func TestArtifactExporterInfoTooLarge(t *testing.T) {
	reg := newTestRegistry(t)
	big := bytes.Repeat([]byte(" "), exporterinfo.MaxSize+1)
	layer := static.NewLayer(big, oci.ExporterInfoMediaType)
	layerDigest, _ := layer.Digest()
	digest := reg.push(t, "big", "latest", fluxAnnotations(), layer)
	c, calls := newClient(t)

	for i := range 2 {
		got, err := c.Artifact(context.Background(), reg.host+"/big", digest)
		if !errors.Is(err, oci.ErrTooLarge) || !errors.Is(err, commits.ErrTooLarge) {
			t.Fatalf("call %d: err = %v, want ErrTooLarge", i, err)
		}
		if got.Revision != "main@sha1:"+manifestsSHA || got.ExporterInfo != nil {
			t.Errorf("call %d: Artifact = %+v, want annotations and no exporter info", i, got)
		}
	}
	if n := reg.blobGETsOf(layerDigest.String()); n != 0 {
		t.Errorf("%d GETs of the oversize layer, want 0: the descriptor size must refuse it", n)
	}
	if n := reg.manifestGETsOf(digest); n != 1 {
		t.Errorf("%d manifest GETs, want 1: the oversize answer is cached", n)
	}
	if got, want := calls.all(), []commits.CallOutcome{commits.CallSuccess, commits.CallCacheHit}; !slices.Equal(got, want) {
		t.Errorf("OnCall %v, want %v", got, want)
	}
}

func TestArtifactExporterInfoDigestMismatch(t *testing.T) {
	tests := []struct {
		name     string
		tampered func(orig []byte) []byte
	}{
		{"same length", func(orig []byte) []byte {
			b := bytes.Clone(orig)
			b[len(b)-2] = '!'
			return b
		}},
		{"longer", func(orig []byte) []byte { return append(bytes.Clone(orig), ' ') }},
		{"shorter", func(orig []byte) []byte { return orig[:len(orig)-1] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := newTestRegistry(t)
			layer := static.NewLayer(exporterInfoJSON, oci.ExporterInfoMediaType)
			layerDigest, _ := layer.Digest()
			digest := reg.push(t, "app", "latest", fluxAnnotations(), layer)
			reg.tamper(layerDigest.String(), tt.tampered(exporterInfoJSON))
			c, calls := newClient(t)

			got, err := c.Artifact(context.Background(), reg.host+"/app", digest)
			if err == nil {
				t.Fatalf("Artifact = %+v, want an error for content that does not match its digest", got)
			}
			if !errors.Is(err, oci.ErrRetriable) || errors.Is(err, oci.ErrTooLarge) || errors.Is(err, oci.ErrNotFound) {
				t.Errorf("err = %v, want ErrRetriable only", err)
			}
			if got.ExporterInfo != nil {
				t.Errorf("ExporterInfo = %q, want nil", got.ExporterInfo)
			}
			if got := calls.all(); !slices.Equal(got, []commits.CallOutcome{commits.CallError}) {
				t.Errorf("OnCall %v, want [error]", got)
			}

			// Failures are not cached: once the registry serves the right bytes, the artifact reads.
			reg.tamper(layerDigest.String(), nil)
			got, err = c.Artifact(context.Background(), reg.host+"/app", digest)
			if err != nil || !bytes.Equal(got.ExporterInfo, exporterInfoJSON) {
				t.Errorf("after repair: %q, %v", got.ExporterInfo, err)
			}
		})
	}
}

func TestArtifactNotFound(t *testing.T) {
	reg := newTestRegistry(t)
	digest := reg.push(t, "app", "latest", fluxAnnotations())
	unknown := "sha256:" + strings.Repeat("ab", 32)
	c, calls := newClient(t)

	for _, tt := range []struct{ repo, digest string }{
		{"app", unknown},
		{"nope", digest},
	} {
		_, err := c.Artifact(context.Background(), reg.host+"/"+tt.repo, tt.digest)
		if !errors.Is(err, oci.ErrNotFound) || !errors.Is(err, commits.ErrNotFound) || errors.Is(err, oci.ErrRetriable) {
			t.Errorf("%s@%s: err = %v, want ErrNotFound", tt.repo, tt.digest, err)
		}
	}
	// A 404 is a definitive answer, not a failed call.
	if got := calls.all(); !slices.Equal(got, []commits.CallOutcome{commits.CallSuccess, commits.CallSuccess}) {
		t.Errorf("OnCall %v, want two successes", got)
	}
}

func TestArtifactSharedFetch(t *testing.T) {
	reg := newTestRegistry(t)
	layer := static.NewLayer(exporterInfoJSON, oci.ExporterInfoMediaType)
	layerDigest, _ := layer.Digest()
	digest := reg.push(t, "app", "latest", fluxAnnotations(), layer)
	c, calls := newClient(t)

	// Hold the manifest GET until all callers have asked.
	gate, arrived := reg.hold(1)
	const k = 50
	var wg sync.WaitGroup
	results := make([]oci.Artifact, k)
	errs := make([]error, k)
	for i := range k {
		wg.Go(func() { results[i], errs[i] = c.Artifact(context.Background(), "oci://"+reg.host+"/app", digest) })
	}
	<-arrived
	time.Sleep(50 * time.Millisecond) // let the other callers join the flight
	close(gate)
	wg.Wait()

	for i := range k {
		if errs[i] != nil || results[i].Revision != "main@sha1:"+manifestsSHA || !bytes.Equal(results[i].ExporterInfo, exporterInfoJSON) {
			t.Fatalf("caller %d: %+v, %v", i, results[i], errs[i])
		}
	}
	if n := reg.manifestGETsOf(digest); n != 1 {
		t.Errorf("%d manifest GETs for %d concurrent callers, want 1", n, k)
	}
	if n := reg.blobGETsOf(layerDigest.String()); n != 1 {
		t.Errorf("%d layer GETs for %d concurrent callers, want 1", n, k)
	}
	if s, h := calls.count(commits.CallSuccess), calls.count(commits.CallCacheHit); s != 1 || h != k-1 {
		t.Errorf("OnCall: %d success, %d cache_hit; want 1 and %d", s, h, k-1)
	}
}

// TestArtifactLeaderCanceled: the caller whose lookup started the shared fetch gives up; the others still
// get the artifact from that same single fetch.
func TestArtifactLeaderCanceled(t *testing.T) {
	reg := newTestRegistry(t)
	digest := reg.push(t, "app", "latest", fluxAnnotations())
	c, _ := newClient(t)
	gate, arrived := reg.hold(2)

	leaderCtx, cancel := context.WithCancel(context.Background())
	leaderErr := make(chan error, 1)
	go func() {
		_, err := c.Artifact(leaderCtx, reg.host+"/app", digest)
		leaderErr <- err
	}()
	<-arrived
	follower := make(chan error, 1)
	go func() {
		got, err := c.Artifact(context.Background(), reg.host+"/app", digest)
		if err == nil && got.Revision == "" {
			err = errors.New("empty artifact")
		}
		follower <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Errorf("leader: err = %v, want context.Canceled", err)
	}
	close(gate)
	if err := <-follower; err != nil {
		t.Errorf("follower: %v, want the artifact despite the leader's cancellation", err)
	}
	if n := reg.manifestGETsOf(digest); n != 1 {
		t.Errorf("%d manifest GETs, want the one shared fetch", n)
	}
}

// TestArtifactTimeout: a registry that never answers fails the lookup with an error wrapping
// context.DeadlineExceeded once Options.Timeout has passed, though the caller's context has no deadline.
func TestArtifactTimeout(t *testing.T) {
	reg := newTestRegistry(t)
	digest := reg.push(t, "app", "latest", fluxAnnotations())
	c, _ := newClient(t, func(o *oci.Options) { o.Timeout = 300 * time.Millisecond })
	gate, _ := reg.hold(10)
	defer close(gate)
	done := make(chan error, 1)
	go func() { _, err := c.Artifact(context.Background(), reg.host+"/app", digest); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(20 * time.Second): // a hang guard, not a measurement
		t.Fatal("the lookup never returned from a registry that does not answer")
	}
}

// panicTransport panics on every request, standing in for any bug reached through outside data.
type panicTransport struct{}

func (panicTransport) RoundTrip(*http.Request) (*http.Response, error) {
	var m map[string]*int
	return nil, errors.New(strconv.Itoa(*m["x"])) // a nil dereference
}

// TestArtifactPanicIsAnError: a panic inside the shared fetch is an error for the caller, not a crash.
func TestArtifactPanicIsAnError(t *testing.T) {
	c, _ := newClient(t, func(o *oci.Options) { o.Transport = panicTransport{} })
	_, err := c.Artifact(context.Background(), "127.0.0.1:1/app", "sha256:"+strings.Repeat("ab", 32))
	if !errors.Is(err, commits.ErrBadResponse) {
		t.Errorf("err = %v, want an error wrapping commits.ErrBadResponse", err)
	}
}

func TestArtifactCacheBounded(t *testing.T) {
	reg := newTestRegistry(t)
	a := reg.push(t, "app", "a", fluxAnnotations())
	b := reg.push(t, "app", "b", map[string]string{oci.AnnotationRevision: "main@sha1:" + upstreamSHA})
	probe, _ := newClient(t)
	var sizes []int64
	for _, d := range []string{a, b} {
		got, err := probe.Artifact(context.Background(), reg.host+"/app", d)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, oci.EntryBytes(reg.host+"/app@"+d, got))
	}
	// Room for either artifact, not both.
	c, _ := newClient(t, func(o *oci.Options) { o.CacheBytes = max(sizes[0], sizes[1]) + min(sizes[0], sizes[1])/2 })
	for _, d := range []string{a, a, b, a} {
		if _, err := c.Artifact(context.Background(), reg.host+"/app", d); err != nil {
			t.Fatal(err)
		}
	}
	if na, nb := reg.manifestGETsOf(a), reg.manifestGETsOf(b); na != 3 || nb != 2 {
		t.Errorf("manifest GETs: a %d, b %d; want 3 and 2 (one each from the probe) with room for one", na, nb)
	}
}

func TestArtifactIndexRejected(t *testing.T) {
	reg := newTestRegistry(t)
	digest := reg.pushIndex(t, "multi", "latest")
	c, _ := newClient(t)
	_, err := c.Artifact(context.Background(), reg.host+"/multi", digest)
	if !errors.Is(err, oci.ErrInvalid) {
		t.Errorf("err = %v, want ErrInvalid for an image index", err)
	}
}

func TestArtifactInvalidInput(t *testing.T) {
	c, calls := newClient(t)
	good := "sha256:" + strings.Repeat("0", 64)
	tests := []struct {
		name, ref, digest string
		noLeak            string
	}{
		{"empty digest", "127.0.0.1:5000/app", "", ""},
		{"tag and digest", "127.0.0.1:5000/app", "latest@" + good, ""},
		{"git revision", "127.0.0.1:5000/app", "main@sha1:" + manifestsSHA, ""},
		{"short digest", "127.0.0.1:5000/app", "sha256:abc", ""},
		{"empty ref", "", good, ""},
		{"bad ref", "oci://127.0.0.1:5000/App Name", good, ""},
		{"credentials in ref", "oci://robot:hunter2@127.0.0.1:5000/app", good, "hunter2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Artifact(context.Background(), tt.ref, tt.digest)
			if !errors.Is(err, oci.ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
			if tt.noLeak != "" && err != nil && strings.Contains(err.Error(), tt.noLeak) {
				t.Errorf("error %q leaks %q", err, tt.noLeak)
			}
		})
	}
	if got := calls.all(); len(got) != 0 {
		t.Errorf("OnCall %v, want none: invalid input makes no call", got)
	}
}

func TestArtifactRegistryErrors(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		reg := newTestRegistry(t)
		host := reg.host
		reg.srv.Close()
		c, calls := newClient(t)
		_, err := c.Artifact(context.Background(), host+"/app", "sha256:"+strings.Repeat("1", 64))
		if !errors.Is(err, oci.ErrRetriable) || errors.Is(err, oci.ErrNotFound) {
			t.Errorf("err = %v, want ErrRetriable", err)
		}
		if got := calls.all(); !slices.Equal(got, []commits.CallOutcome{commits.CallError}) {
			t.Errorf("OnCall %v, want [error]", got)
		}
	})
	t.Run("503 on manifests", func(t *testing.T) {
		reg := newTestRegistry(t)
		digest := reg.push(t, "app", "latest", fluxAnnotations())
		reg.failWith("manifests", http.StatusServiceUnavailable)
		c, calls := newClient(t)
		_, err := c.Artifact(context.Background(), reg.host+"/app", digest)
		if !errors.Is(err, oci.ErrRetriable) {
			t.Errorf("err = %v, want ErrRetriable", err)
		}
		if n := reg.manifestGETsOf(digest); n < 2 {
			t.Errorf("%d manifest GETs, want the transient 503 retried", n)
		}
		reg.failWith("manifests", 0)
		if _, err := c.Artifact(context.Background(), reg.host+"/app", digest); err != nil {
			t.Errorf("after recovery: %v", err)
		}
		if got := calls.all(); !slices.Equal(got, []commits.CallOutcome{commits.CallError, commits.CallSuccess}) {
			t.Errorf("OnCall %v, want [error success]", got)
		}
	})
	t.Run("layer blob missing", func(t *testing.T) {
		reg := newTestRegistry(t)
		layer := static.NewLayer(exporterInfoJSON, oci.ExporterInfoMediaType)
		digest := reg.push(t, "app", "latest", fluxAnnotations(), layer)
		reg.failWith("blobs", http.StatusNotFound)
		c, _ := newClient(t)
		_, err := c.Artifact(context.Background(), reg.host+"/app", digest)
		if !errors.Is(err, oci.ErrRetriable) || errors.Is(err, oci.ErrNotFound) {
			t.Errorf("err = %v, want ErrRetriable: the manifest exists, its layer should too", err)
		}
	})
}

func TestArtifactCredentials(t *testing.T) {
	reg := newTestRegistry(t)
	reg.requireAuth("robot", "s3cret-pass")
	digest := reg.push(t, "private", "latest", fluxAnnotations())

	c, _ := newClient(t, func(o *oci.Options) {
		o.Keychain = staticKeychain{auth: &authn.Basic{Username: "robot", Password: "s3cret-pass"}}
	})
	if got, err := c.Artifact(context.Background(), reg.host+"/private", digest); err != nil || got.Source != sourceURL {
		t.Fatalf("with credentials: %+v, %v", got, err)
	}

	wrong, _ := newClient(t, func(o *oci.Options) {
		o.Keychain = staticKeychain{auth: &authn.Basic{Username: "robot", Password: "wrong-s3cret"}}
	})
	_, err := wrong.Artifact(context.Background(), reg.host+"/private", digest)
	if !errors.Is(err, oci.ErrRetriable) {
		t.Errorf("wrong credentials: err = %v, want ErrRetriable", err)
	}
	if err != nil && strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q leaks the password", err)
	}

	anon, _ := newClient(t)
	if _, err := anon.Artifact(context.Background(), reg.host+"/private", digest); err == nil {
		t.Error("anonymous read of a private repository succeeded")
	}
}

func TestSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	reg := newTestRegistry(t)
	layer := static.NewLayer(exporterInfoJSON, oci.ExporterInfoMediaType)
	digest := reg.push(t, "app", "latest", fluxAnnotations(), layer)
	c, _ := newClient(t, func(o *oci.Options) { o.TracerProvider = tp })

	ctx, parent := tp.Tracer("test").Start(context.Background(), "reconcile")
	for range 2 {
		if _, err := c.Artifact(ctx, "oci://"+reg.host+"/app", digest); err != nil {
			t.Fatal(err)
		}
	}
	parent.End()

	count := map[string]int{}
	for _, s := range rec.Ended() {
		if s.Name() == "reconcile" {
			continue
		}
		if s.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("span %s is not a child of the caller's span", s.Name())
		}
		for _, a := range s.Attributes() {
			if v := a.Value.String(); strings.Contains(v, strings.TrimPrefix(digest, "sha256:")) || strings.Contains(v, "/app") {
				t.Errorf("span %s attribute %s carries a digest or repository: %s", s.Name(), a.Key, v)
			}
		}
		count[s.Name()]++
	}
	// The ping also races https against http for a loopback registry; only the API calls are counted.
	if n := count["oci GET /v2/{name}/manifests/{reference}"]; n != 1 {
		t.Errorf("%d manifest spans, want 1 (spans: %v)", n, count)
	}
	if n := count["oci GET /v2/{name}/blobs/{reference}"]; n != 1 {
		t.Errorf("%d blob spans, want 1 (spans: %v)", n, count)
	}
	if count["oci GET /v2/"] == 0 {
		t.Errorf("no ping span (spans: %v)", count)
	}
}
