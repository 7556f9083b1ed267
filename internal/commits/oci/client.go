// Package oci reads the OCI artifacts Flux OCIRepositories resolve: the manifest annotations naming the
// source commit (org.opencontainers.image.revision) and repository (org.opencontainers.image.source), and an
// optional exporter-info layer listing the upstream commits the artifact carries. An artifact is immutable
// by digest, so each is fetched once, held in an LRU bounded in bytes (Options.CacheBytes), and concurrent
// lookups of one digest share one fetch. That shared fetch runs detached from any one caller's cancellation
// and is bounded by Options.Timeout (retries included), so a registry that never answers fails the lookup
// with an error wrapping context.DeadlineExceeded; a panic inside it becomes an error. A manifest is
// decoded defensively (see parseManifest): content that is not a usable image manifest wraps ErrInvalid and
// commits.ErrBadResponse.
//
// Where the pieces come from in Flux: an OCIRepository's status.artifact.revision is <tag>@sha256:<manifest
// digest> (ParseArtifactRevision splits it); `flux push artifact --revision --source` writes the annotations,
// which source-controller copies into status.artifact.metadata and kustomize-controller into a Kustomization's
// status.lastAppliedOriginRevision. Callers should prefer those in-cluster copies and use this client for
// what the cluster does not hold: the exporter-info layer, and annotations of artifacts whose status is gone.
package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/sync/singleflight"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/bytecache"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/exporterinfo"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/revision"
)

// ExporterInfoMediaType is the media type of the artifact layer holding exporter-info.json.
const ExporterInfoMediaType = "application/vnd.grafana.exporter-info.v1+json"

// Manifest annotations Flux (`flux push artifact`) and OCI tooling write.
const (
	AnnotationRevision = "org.opencontainers.image.revision"
	AnnotationSource   = "org.opencontainers.image.source"
	AnnotationCreated  = "org.opencontainers.image.created"
)

const (
	// DefaultTimeout bounds one artifact lookup, retries included.
	DefaultTimeout = 30 * time.Second
	// DefaultCacheBytes bounds the artifacts held in memory.
	DefaultCacheBytes = 32 << 20
	// maxAnnotation is the longest revision or source annotation kept; longer ones are dropped.
	maxAnnotation = 4096
	userAgent     = "flux-commit-tracker"
	tracerName    = "github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/oci"
)

// defaultBackoff is go-containerregistry's own default: three tries, waiting 1s then 3s.
var defaultBackoff = remote.Backoff{Duration: time.Second, Factor: 3, Jitter: 0.1, Steps: 3}

// Errors Artifact wraps.
var (
	// ErrNotFound: the registry has no manifest for the digest (or no such repository). It is commits.ErrNotFound.
	ErrNotFound = commits.ErrNotFound
	// ErrTooLarge: the exporter-info layer's descriptor size is over exporterinfo.MaxSize; it was not
	// downloaded. It is commits.ErrTooLarge.
	ErrTooLarge = commits.ErrTooLarge
	// ErrRetriable: a registry or network failure (transport error, 5xx, 429, auth failure, content that does
	// not match its digest). The same call may succeed later; nothing is cached.
	ErrRetriable = errors.New("registry request failed (retriable)")
	// ErrInvalid: the reference, digest or manifest cannot name a single-manifest artifact. Permanent.
	ErrInvalid = errors.New("invalid OCI artifact")
)

// Options configures a Client.
type Options struct {
	// Keychain resolves registry credentials; default authn.DefaultKeychain (the docker config file and its
	// credential helpers). Registries without credentials there are read anonymously.
	Keychain authn.Keychain
	// Insecure allows plain-HTTP registries (e.g. 127.0.0.1 in tests).
	Insecure bool
	// Timeout bounds one lookup (manifest and exporter-info layer, retries included); default 30s.
	Timeout time.Duration
	// CacheBytes bounds the estimated bytes of the artifacts held in memory, each counted with its
	// exporter-info layer (up to exporterinfo.MaxSize bytes); default 32 MiB.
	CacheBytes int64
	// OnCall, if set, is told the outcome of every registry fetch of an artifact (its manifest and, when
	// present, its exporter-info layer) and every lookup answered from memory.
	OnCall func(ctx context.Context, outcome commits.CallOutcome)
	// TracerProvider, if set, records a client span per registry HTTP request, a child of the caller's span.
	TracerProvider trace.TracerProvider
	// Logger, if set, gets fetch details (debug).
	Logger *slog.Logger
	// Transport is the base round tripper; default remote.DefaultTransport.
	Transport http.RoundTripper
}

// Artifact is what the tracker needs from one OCI artifact manifest.
type Artifact struct {
	// Digest is the manifest digest, sha256:<hex>.
	Digest string
	// Revision is the org.opencontainers.image.revision annotation, e.g. main@sha1:<sha>; empty when absent.
	Revision string
	// Source is the org.opencontainers.image.source annotation, the repository URL; empty when absent.
	Source string
	// Created is the org.opencontainers.image.created annotation; zero when absent or not RFC 3339.
	Created time.Time
	// ExporterInfo is the content of the exporter-info layer; nil when the artifact has none.
	ExporterInfo []byte
}

func (a Artifact) clone() Artifact {
	a.ExporterInfo = bytes.Clone(a.ExporterInfo)
	return a
}

// entry is a cached fetch: the artifact and, when its exporter-info layer was over the limit, that error.
type entry struct {
	artifact Artifact
	tooLarge error
}

// Client reads Flux OCI artifacts from registries. It is safe for concurrent use.
type Client struct {
	keychain  authn.Keychain
	insecure  bool
	transport http.RoundTripper
	backoff   remote.Backoff
	cache     *bytecache.Cache[string, entry]
	flight    singleflight.Group
	timeout   time.Duration
	onCall    func(context.Context, commits.CallOutcome)
	logger    *slog.Logger
}

// New returns a Client for opts.
func New(opts Options) (*Client, error) {
	c := &Client{
		keychain: opts.Keychain,
		insecure: opts.Insecure,
		backoff:  defaultBackoff,
		onCall:   opts.OnCall,
		logger:   opts.Logger,
	}
	if c.keychain == nil {
		c.keychain = authn.DefaultKeychain
	}
	if c.onCall == nil {
		c.onCall = func(context.Context, commits.CallOutcome) {}
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	base := opts.Transport
	if base == nil {
		base = remote.DefaultTransport
	}
	tp := opts.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	c.transport = &instrumented{base: base, tracer: tp.Tracer(tracerName)}
	c.timeout = opts.Timeout
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	cacheBytes := opts.CacheBytes
	if cacheBytes <= 0 {
		cacheBytes = DefaultCacheBytes
	}
	c.cache = bytecache.New[string, entry](cacheBytes)
	return c, nil
}

// Artifact returns the annotations and exporter-info layer of the artifact ref@digest, where ref is an
// OCIRepository URL (oci://host/repo) or host/repo, and digest is sha256:<hex> (see ParseArtifactRevision).
// Each digest is fetched once per repository; later and concurrent calls share that answer.
//
// Errors wrap ErrNotFound, ErrInvalid or ErrRetriable, or are the caller's context error. With ErrTooLarge
// the Artifact is still returned, annotations filled and ExporterInfo nil.
func (c *Client) Artifact(ctx context.Context, ref string, digest string) (Artifact, error) {
	repo, err := c.repository(ref)
	if err != nil {
		return Artifact{}, err
	}
	tag, dgst, err := ParseArtifactRevision(digest)
	if err != nil || tag != "" {
		return Artifact{}, fmt.Errorf("oci: digest %s: %w: want sha256:<64 hex>", revision.Quote(digest), ErrInvalid)
	}
	e, err := c.lookup(ctx, repo.Digest(dgst))
	if err != nil {
		return Artifact{}, err
	}
	return e.artifact.clone(), e.tooLarge
}

// lookup answers from the cache, else fetches once for all concurrent callers of the same artifact.
// Callers served by another's fetch count as cache hits. The fetch runs on a context detached from the
// callers' cancellation (keeping their values, e.g. the trace) and bounded by the client's timeout; each
// caller still returns when its own context ends.
func (c *Client) lookup(ctx context.Context, ref name.Digest) (entry, error) {
	key := ref.Name()
	if e, ok := c.cache.Get(key); ok {
		c.onCall(ctx, commits.CallCacheHit)
		return e, nil
	}
	leader, hit := false, false
	ch := c.flight.DoChan(key, func() (v any, err error) {
		leader = true
		defer func() {
			if r := recover(); r != nil {
				c.logger.ErrorContext(ctx, "oci: fetch panicked; answering with an error", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				v, err = entry{}, fmt.Errorf("oci: fetch %s failed: %v: %w", ref, r, commits.ErrBadResponse)
			}
		}()
		// An earlier flight may have filled the cache since the check above.
		if e, ok := c.cache.Get(key); ok {
			hit = true
			return e, nil
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		defer cancel()
		e, err := c.fetch(fctx, ref)
		if err == nil {
			c.cache.Add(key, e, int64(len(key))+e.bytes())
		}
		return e, err
	})
	select {
	case <-ctx.Done():
		return entry{}, fmt.Errorf("oci: %s: %w", ref, ctx.Err())
	case res := <-ch:
		if (!leader || hit) && res.Err == nil {
			c.onCall(ctx, commits.CallCacheHit)
		}
		e, _ := res.Val.(entry)
		return e, res.Err
	}
}

// bytes estimates the memory a cached entry holds.
func (e entry) bytes() int64 {
	a := e.artifact
	return int64(256 + len(a.Digest) + len(a.Revision) + len(a.Source) + len(a.ExporterInfo))
}

// fetch gets the manifest of ref and, when listed, its exporter-info layer, reporting one call outcome.
func (c *Client) fetch(ctx context.Context, ref name.Digest) (e entry, err error) {
	outcome := commits.CallSuccess
	defer func() { c.onCall(ctx, outcome) }()

	// Step 1: the manifest, digest-verified by remote because ref names a digest.
	desc, err := remote.Get(ref,
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(c.keychain),
		remote.WithTransport(c.transport),
		remote.WithUserAgent(userAgent),
		remote.WithRetryBackoff(c.backoff),
	)
	if err != nil {
		err = registryError(err, "get manifest %s", ref)
		if !errors.Is(err, ErrNotFound) {
			outcome = commits.CallError
		}
		return entry{}, err
	}
	if desc.MediaType.IsIndex() || desc.MediaType.IsSchema1() {
		return entry{}, fmt.Errorf("oci: %s is a %s, want a single image manifest: %w", ref, desc.MediaType, ErrInvalid)
	}

	// Step 2: the annotations and the exporter-info layer's descriptor, from the digest-verified bytes.
	artifact, layer, ok, err := parseManifest(ref.DigestStr(), desc.Manifest)
	if err != nil {
		return entry{}, fmt.Errorf("oci: %s: %w", ref, err)
	}
	e.artifact = artifact

	// Step 3: the exporter-info layer, refused by its descriptor size before any download.
	if !ok {
		c.logger.DebugContext(ctx, "oci: fetched artifact", "artifact", ref.String(), "exporter_info", false)
		return e, nil
	}
	if layer.Size > exporterinfo.MaxSize {
		e.tooLarge = fmt.Errorf("oci: exporter-info layer %s of %s is %d bytes, over the %d byte limit: %w",
			layer.Digest, ref, layer.Size, exporterinfo.MaxSize, ErrTooLarge)
		return e, nil
	}
	img, err := desc.Image()
	if err != nil {
		return entry{}, fmt.Errorf("oci: %s: %w: %w", ref, ErrInvalid, err)
	}
	data, err := readLayer(img, layer)
	if err != nil {
		outcome = commits.CallError
		return entry{}, fmt.Errorf("oci: exporter-info layer %s of %s: %w: %w", layer.Digest, ref, ErrRetriable, err)
	}
	e.artifact.ExporterInfo = data
	c.logger.DebugContext(ctx, "oci: fetched artifact", "artifact", ref.String(), "exporter_info", true, "bytes", len(data))
	return e, nil
}

// parseManifest reads what the tracker needs from the bytes of an image manifest: the annotations and the
// first layer with ExporterInfoMediaType (ok false when there is none). Content that is not a schema 2
// image manifest, or a layer descriptor with a negative size or a malformed digest, wraps ErrInvalid and
// commits.ErrBadResponse. A created annotation that is not RFC 3339, and revision or source annotations
// over maxAnnotation bytes, are left empty.
func parseManifest(digest string, raw []byte) (a Artifact, layer v1.Descriptor, ok bool, err error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("manifest: %s: %w: %w", fmt.Sprintf(format, args...), ErrInvalid, commits.ErrBadResponse)
	}
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return Artifact{}, v1.Descriptor{}, false, bad("empty or null")
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return Artifact{}, v1.Descriptor{}, false, bad("%v", err)
	}
	if m.SchemaVersion != 2 {
		return Artifact{}, v1.Descriptor{}, false, bad("schemaVersion %d, want 2", m.SchemaVersion)
	}
	a = Artifact{Digest: digest}
	if s := m.Annotations[AnnotationRevision]; len(s) <= maxAnnotation {
		a.Revision = s
	}
	if s := m.Annotations[AnnotationSource]; len(s) <= maxAnnotation {
		a.Source = s
	}
	if s := m.Annotations[AnnotationCreated]; s != "" {
		if t, perr := time.Parse(time.RFC3339Nano, s); perr == nil {
			a.Created = t
		}
	}
	for _, l := range m.Layers {
		if string(l.MediaType) != ExporterInfoMediaType {
			continue
		}
		if l.Size < 0 {
			return Artifact{}, v1.Descriptor{}, false, bad("exporter-info layer has negative size %d", l.Size)
		}
		if _, derr := v1.NewHash(l.Digest.String()); derr != nil {
			return Artifact{}, v1.Descriptor{}, false, bad("exporter-info layer digest: %v", derr)
		}
		return a, l, true, nil
	}
	return a, v1.Descriptor{}, false, nil
}

// readLayer downloads one layer. remote bounds the read to the descriptor's size and fails it at EOF when
// the size or the digest does not match.
func readLayer(img v1.Image, d v1.Descriptor) ([]byte, error) {
	l, err := img.LayerByDigest(d.Digest)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != d.Size {
		return nil, fmt.Errorf("read %d bytes, descriptor says %d", len(data), d.Size)
	}
	return data, nil
}

// repository parses an OCIRepository URL (oci://host/repo) or host/repo[:tag|@digest] into its repository.
func (c *Client) repository(ref string) (name.Repository, error) {
	s := ref
	if len(s) >= len("oci://") && strings.EqualFold(s[:len("oci://")], "oci://") {
		s = s[len("oci://"):]
	}
	// Credentials in the URL would end up in errors and logs: refuse them without repeating them.
	if host, _, _ := strings.Cut(s, "/"); strings.Contains(host, "@") {
		return name.Repository{}, fmt.Errorf("oci: reference carries credentials in its host; use the docker config instead: %w", ErrInvalid)
	}
	opts := []name.Option{name.WeakValidation}
	if c.insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(s, opts...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("oci: reference %s: %w: %w", revision.Quote(ref), ErrInvalid, err)
	}
	return r.Context(), nil
}

// registryError wraps a go-containerregistry error: a missing manifest or repository becomes ErrNotFound,
// the caller's context ending stays itself, anything else is ErrRetriable.
func registryError(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	var te *transport.Error
	if errors.As(err, &te) {
		if te.StatusCode == http.StatusNotFound {
			return fmt.Errorf("oci: %s: %w: %w", what, ErrNotFound, err)
		}
		for _, d := range te.Errors {
			if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
				return fmt.Errorf("oci: %s: %w: %w", what, ErrNotFound, err)
			}
		}
	}
	if isContextErr(err) {
		return fmt.Errorf("oci: %s: %w", what, err)
	}
	return fmt.Errorf("oci: %s: %w: %w", what, ErrRetriable, err)
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
