package oci_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
)

// Media types `flux push artifact` writes.
const (
	fluxConfigMediaType  types.MediaType = "application/vnd.cncf.flux.config.v1+json"
	fluxContentMediaType types.MediaType = "application/vnd.cncf.flux.content.v1.tar+gzip"
)

// testRegistry is go-containerregistry's in-process registry behind a handler that counts manifest and
// blob GETs, can serve tampered blobs, hold manifest GETs at a gate, and require basic auth.
type testRegistry struct {
	srv  *httptest.Server
	host string // 127.0.0.1:port

	mu           sync.Mutex
	manifestGETs map[string]int // by reference (tag or digest)
	blobGETs     map[string]int // by digest
	requests     int
	tampered     map[string][]byte                        // blob digest → content served instead
	gate         chan struct{}                            // when set, manifest GETs wait for it to close
	arrived      chan struct{}                            // when set, told of each manifest GET reaching the gate
	user, pass   string                                   // when set, every request needs these basic credentials
	fail         map[string]int                           // path kind ("manifests", "blobs") → status to answer
	next         func(http.ResponseWriter, *http.Request) // the registry
}

func newTestRegistry(t testing.TB) *testRegistry {
	t.Helper()
	r := &testRegistry{
		manifestGETs: map[string]int{},
		blobGETs:     map[string]int{},
		tampered:     map[string][]byte{},
		fail:         map[string]int{},
	}
	r.next = registry.New(registry.Logger(log.New(io.Discard, "", 0))).ServeHTTP
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	r.host = strings.TrimPrefix(r.srv.URL, "http://")
	return r
}

func (r *testRegistry) serve(w http.ResponseWriter, req *http.Request) {
	kind, ref := splitPath(req.URL.Path)
	r.mu.Lock()
	r.requests++
	user, pass := r.user, r.pass
	if req.Method == http.MethodGet {
		switch kind {
		case "manifests":
			r.manifestGETs[ref]++
		case "blobs":
			r.blobGETs[ref]++
		}
	}
	tampered, isTampered := r.tampered[ref]
	gate, arrived := r.gate, r.arrived
	status := r.fail[kind]
	r.mu.Unlock()

	if user != "" {
		if u, p, ok := req.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
	}
	if status != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}`)
		return
	}
	if kind == "manifests" && req.Method == http.MethodGet && gate != nil {
		if arrived != nil {
			arrived <- struct{}{}
		}
		<-gate
	}
	if kind == "blobs" && req.Method == http.MethodGet && isTampered {
		w.Header().Set("Content-Length", strconv.Itoa(len(tampered)))
		w.Header().Set("Docker-Content-Digest", ref)
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(tampered)
		return
	}
	r.next(w, req)
}

// splitPath returns "manifests" or "blobs" and the reference for /v2/<name>/<kind>/<reference> paths.
func splitPath(p string) (kind, ref string) {
	parts := strings.Split(strings.TrimPrefix(p, "/v2/"), "/")
	if n := len(parts); n >= 3 && (parts[n-2] == "manifests" || parts[n-2] == "blobs") {
		return parts[n-2], parts[n-1]
	}
	return "", ""
}

func (r *testRegistry) manifestGETsOf(ref string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.manifestGETs[ref]
}

func (r *testRegistry) blobGETsOf(digest string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blobGETs[digest]
}

func (r *testRegistry) tamper(digest string, content []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if content == nil {
		delete(r.tampered, digest)
		return
	}
	r.tampered[digest] = content
}

// hold makes manifest GETs wait until gate is closed; arrived hears of each one (buffer n).
func (r *testRegistry) hold(n int) (gate, arrived chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gate, r.arrived = make(chan struct{}), make(chan struct{}, n)
	return r.gate, r.arrived
}

func (r *testRegistry) requireAuth(user, pass string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.user, r.pass = user, pass
}

func (r *testRegistry) failWith(kind string, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail[kind] = status
}

// push writes a Flux-style artifact (config, content layer, extra layers, manifest annotations) to
// repo:tag and returns its manifest digest.
func (r *testRegistry) push(t testing.TB, repo, tag string, anns map[string]string, extra ...v1.Layer) string {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, fluxConfigMediaType)
	layers := append([]v1.Layer{static.NewLayer([]byte("rendered manifests "+repo+tag), fluxContentMediaType)}, extra...)
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.Annotations(img, anns).(v1.Image)
	ref, err := name.ParseReference(r.host+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, r.writeOptions()...); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// pushIndex writes an image index holding one artifact and returns the index digest.
func (r *testRegistry) pushIndex(t testing.TB, repo, tag string) string {
	t.Helper()
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), static.NewLayer([]byte("x"), fluxContentMediaType))
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), mutate.IndexAddendum{
		Add:        img,
		Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}},
	})
	ref, err := name.ParseReference(r.host+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, r.writeOptions()...); err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func (r *testRegistry) writeOptions() []remote.Option {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.user != "" {
		return []remote.Option{remote.WithAuth(&authn.Basic{Username: r.user, Password: r.pass})}
	}
	return nil
}

// staticKeychain answers every registry with one authenticator, keeping tests off the developer's docker config.
type staticKeychain struct{ auth authn.Authenticator }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.auth, nil }

var anonymous = staticKeychain{auth: authn.Anonymous}

// outcomes records OnCall.
type outcomes struct {
	mu  sync.Mutex
	got []commits.CallOutcome
}

func (o *outcomes) add(_ context.Context, c commits.CallOutcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, c)
}

func (o *outcomes) count(c commits.CallOutcome) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, g := range o.got {
		if g == c {
			n++
		}
	}
	return n
}

func (o *outcomes) all() []commits.CallOutcome {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]commits.CallOutcome(nil), o.got...)
}
