package git

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/go-git/go-billy/v5/osfs"
	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/memory"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
)

const (
	// maxOpenPacks bounds the pack files one mirror keeps open between lookups.
	maxOpenPacks = 8
	// objectCacheBytes bounds go-git's cache of decoded objects (delta bases) per storage.
	objectCacheBytes = 8 * cache.MiByte
)

// wantRefPrefix holds the refs an exact-SHA fetch lands objects under; they are deleted right after.
const wantRefPrefix = "refs/flux-commit-tracker/want/"

// mirror is the bare repository under the cache directory that shadows one remote.
//
// go-git storage is not safe for concurrent use, so lookups share one storage behind mu, and fetches
// (never more than one at a time per mirror: fetchMu sees to that, across the flights of different
// credentials) write through a second storage of the same directory. A fetch lands a complete pack
// (index first) before updating refs, so readers never see a partial one; afterwards the reading
// storage re-reads the pack list.
type mirror struct {
	id  uint64
	url string // normalized: no credentials, safe to log
	dir string

	// refs are the refspecs the sources using this mirror follow, with when one last asked for each; lastUse
	// is when any lookup last used the mirror. Both are guarded by Provider.mu.
	refs    map[config.RefSpec]time.Time
	lastUse time.Time

	fetchMu sync.Mutex // held by the one running fetch
	// noExactSHA records that the server refused a fetch by SHA; guarded by fetchMu.
	noExactSHA bool

	mu      sync.Mutex
	read    *filesystem.Storage
	write   *filesystem.Storage
	closed  bool
	started atomic.Uint64 // fetches started so far
}

// open creates the mirror directory on first use and opens its storages. Callers hold m.mu.
func (m *mirror) open() error {
	if m.closed {
		return ErrClosed
	}
	if m.read != nil {
		return nil
	}
	if err := initBare(m.dir); err != nil {
		return fmt.Errorf("git: mirror of %s: %w", m.url, err)
	}
	m.read, m.write = newStorage(m.dir), newStorage(m.dir)
	return nil
}

func newStorage(dir string) *filesystem.Storage {
	return filesystem.NewStorageWithOptions(osfs.New(dir), cache.NewObjectLRU(objectCacheBytes),
		filesystem.Options{MaxOpenDescriptors: maxOpenPacks})
}

// initBare makes dir a bare repository unless it is one. It initializes a temporary directory and
// renames it into place, so a crash never leaves a half-made mirror; one that fails to open (damaged,
// or not a repository) or is shallow is discarded: a mirror holds nothing a fetch cannot bring back,
// and a shallow one cannot answer ranges that reach past its boundary.
func initBare(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		if r, err := gogit.PlainOpen(dir); err == nil {
			shallow, err := r.Storer.Shallow()
			if err == nil && len(shallow) == 0 {
				return nil
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".init-")
	if err != nil {
		return err
	}
	if _, err := gogit.PlainInit(tmp, true); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	return nil
}

func (m *mirror) close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	if m.read == nil {
		return nil
	}
	err := errors.Join(m.read.Close(), m.write.Close())
	m.read, m.write = nil, nil
	return err
}

// has reports whether every object in hs is in the mirror.
func (m *mirror) has(hs ...plumbing.Hash) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.open(); err != nil {
		return false, err
	}
	for _, h := range hs {
		switch err := m.read.HasEncodedObject(h); {
		case errors.Is(err, plumbing.ErrObjectNotFound):
			return false, nil
		case err != nil:
			return false, fmt.Errorf("git: mirror of %s: %w", m.url, err)
		}
	}
	return true, nil
}

// commit reads and parses one commit; plumbing.ErrObjectNotFound when absent or not a commit.
func (m *mirror) commit(h plumbing.Hash) (*node, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.open(); err != nil {
		return nil, err
	}
	c, err := object.GetCommit(m.read, h)
	if err != nil {
		return nil, err
	}
	return toNode(c), nil
}

func toNode(c *object.Commit) *node {
	n := &node{
		hash:    c.Hash,
		parents: c.ParentHashes,
		when:    c.Committer.When.Unix(),
		commit: commits.Commit{
			SHA:           c.Hash.String(),
			Message:       strings.TrimSuffix(c.Message, "\n"), // as GitHub returns it
			AuthorName:    c.Author.Name,
			AuthorEmail:   c.Author.Email,
			AuthorTime:    c.Author.When,
			CommitterTime: c.Committer.When,
		},
	}
	for _, p := range c.ParentHashes {
		n.commit.Parents = append(n.commit.Parents, p.String())
	}
	return n
}

// fetch brings the refs the mirror's sources follow from the remote with acc's credentials, and then
// any of wants still missing by SHA. It runs inside a flight, holding m.fetchMu.
func (p *Provider) fetch(ctx context.Context, m *mirror, acc *access, wants []plumbing.Hash) error {
	m.mu.Lock()
	err := m.open()
	m.mu.Unlock()
	if err != nil {
		return err
	}
	specs := p.refSpecs(m)
	return p.callRemote(ctx, "fetch", m, acc, []attribute.KeyValue{attribute.Int("git.fetch.refspecs", len(specs))}, func(ctx context.Context) error {
		remote := gogit.NewRemote(m.write, &config.RemoteConfig{Name: "origin", URLs: []string{m.url}})
		err := p.fetchRefs(ctx, remote, acc, specs)
		if err == nil {
			m.reindex()
			err = p.fetchWants(ctx, m, remote, acc, wants)
		}
		if err == nil {
			m.reindex()
		}
		return err
	})
}

// listRefs returns the refs m's remote advertises, annotated tags also peeled (name^{}).
func (p *Provider) listRefs(ctx context.Context, m *mirror, acc *access) ([]*plumbing.Reference, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(p.ctx, cancel)()
	var refs []*plumbing.Reference
	err := p.callRemote(ctx, "ls-remote", m, acc, nil, func(ctx context.Context) error {
		remote := gogit.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{m.url}})
		var err error
		refs, err = remote.ListContext(ctx, &gogit.ListOptions{Auth: acc.method, CABundle: acc.caBundle, PeelingOption: gogit.AppendPeeled})
		if errors.Is(err, transport.ErrEmptyRemoteRepository) {
			return nil
		}
		return err
	})
	if p.ctx.Err() != nil && err != nil {
		return nil, ErrClosed
	}
	return refs, err
}

// callRemote runs op (fetch, ls-remote) against m's remote, retrying transient failures with exponential backoff.
func (p *Provider) callRemote(ctx context.Context, op string, m *mirror, acc *access, attrs []attribute.KeyValue, do func(context.Context) error) error {
	attempt := 0
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		attempt++
		err := p.callRemoteOnce(ctx, op, m, acc, attempt, attrs, do)
		if err != nil && !transient(err) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	},
		backoff.WithBackOff(&backoff.ExponentialBackOff{
			InitialInterval:     p.waitMin,
			RandomizationFactor: 0.2,
			Multiplier:          2,
			MaxInterval:         p.waitMax,
		}),
		backoff.WithMaxTries(uint(p.maxRetries+1)),
		backoff.WithMaxElapsedTime(0), // bounded by tries, each by Timeout
		backoff.WithNotify(func(err error, wait time.Duration) {
			p.logger.InfoContext(ctx, "git "+op+" failed, retrying", "url", m.url, "credentials", acc.kind, "attempt", attempt, "wait", wait, "error", err)
		}),
	)
	var permanent *backoff.PermanentError
	if errors.As(err, &permanent) {
		err = permanent.Err
	}
	return err
}

// refSpecs lists the refspecs of m's sources, in a stable order.
func (p *Provider) refSpecs(m *mirror) []config.RefSpec {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]config.RefSpec, 0, len(m.refs))
	for s := range m.refs {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// callRemoteOnce is one attempt of op, bounded by Timeout: one span, one OnCall outcome. Its error never holds
// a secret.
func (p *Provider) callRemoteOnce(ctx context.Context, op string, m *mirror, acc *access, attempt int, attrs []attribute.KeyValue, do func(context.Context) error) (err error) {
	start, parent := time.Now(), ctx
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	key := "git." + strings.ReplaceAll(op, "-", "_")
	ctx, span := p.tracer.Start(ctx, "git "+op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(append([]attribute.KeyValue{attribute.String("url.full", m.url), attribute.Int(key+".attempt", attempt),
			attribute.String(key+".credentials", acc.kind)}, attrs...)...))
	defer func() {
		outcome := commits.CallSuccess
		if err != nil {
			outcome = commits.CallError
			span.RecordError(err)
			span.SetStatus(codes.Error, op+" failed")
		}
		span.End()
		p.onCall(ctx, outcome)
		p.logger.DebugContext(ctx, "git "+op, "url", m.url, "credentials", acc.kind, "attempt", attempt, "duration", time.Since(start), "error", err)
	}()

	switch err = do(ctx); {
	case err == nil:
		return nil
	case ctx.Err() != nil && parent.Err() == nil:
		return acc.redact(fmt.Errorf("git: %s %s: timed out after %s: %w", op, m.url, p.timeout, err))
	default:
		return acc.redact(fmt.Errorf("git: %s %s: %w", op, m.url, acc.classify(err)))
	}
}

// fetchRefs fetches specs; when some name refs the remote does not have (a deleted branch), it fetches
// those it has.
func (p *Provider) fetchRefs(ctx context.Context, remote *gogit.Remote, acc *access, specs []config.RefSpec) error {
	err := fetchSpecs(ctx, remote, acc, specs)
	if !errors.Is(err, gogit.NoMatchingRefSpecError{}) {
		return err
	}
	refs, err := remote.ListContext(ctx, &gogit.ListOptions{Auth: acc.method, CABundle: acc.caBundle})
	if err != nil {
		return err
	}
	var present []config.RefSpec
	for _, s := range specs {
		if slices.ContainsFunc(refs, func(r *plumbing.Reference) bool { return s.Match(r.Name()) }) {
			present = append(present, s)
		}
	}
	if len(present) == 0 {
		return nil
	}
	return fetchSpecs(ctx, remote, acc, present)
}

// fetchWants fetches the objects of wants the mirror still lacks by SHA, when the server allows that. A
// SHA the server refuses, or a server that refuses fetches by SHA, leaves it missing: the caller reports
// it as not found.
func (p *Provider) fetchWants(ctx context.Context, m *mirror, remote *gogit.Remote, acc *access, wants []plumbing.Hash) error {
	if m.noExactSHA {
		return nil
	}
	var specs []config.RefSpec
	for _, h := range wants {
		ok, err := m.has(h)
		if err != nil {
			return err
		}
		if !ok {
			specs = append(specs, config.RefSpec(h.String()+":"+wantRefPrefix+h.String()))
		}
	}
	if len(specs) == 0 {
		return nil
	}
	err := fetchSpecs(ctx, remote, acc, specs)
	defer m.dropWantRefs(specs)
	switch {
	case errors.Is(err, gogit.ErrExactSHA1NotSupported):
		m.noExactSHA = true
		return nil
	case err != nil && ctx.Err() == nil && !transient(err), err != nil && strings.Contains(err.Error(), "not our ref"):
		p.logger.DebugContext(ctx, "git fetch by SHA refused", "url", m.url, "error", acc.redact(err))
		return nil
	}
	return err
}

func fetchSpecs(ctx context.Context, remote *gogit.Remote, acc *access, specs []config.RefSpec) error {
	if len(specs) == 0 {
		return nil
	}
	err := remote.FetchContext(ctx, &gogit.FetchOptions{
		RemoteName: "origin",
		RefSpecs:   specs,
		Tags:       gogit.NoTags, // only what the refspecs name
		Force:      true,
		Auth:       acc.method,
		CABundle:   acc.caBundle,
	})
	if errors.Is(err, gogit.NoErrAlreadyUpToDate) || errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return nil
	}
	return err
}

// dropWantRefs deletes the refs a fetch by SHA made; the objects stay.
func (m *mirror) dropWantRefs(specs []config.RefSpec) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.write == nil {
		return
	}
	for _, s := range specs {
		_ = m.write.RemoveReference(s.Dst(""))
	}
}

// reindex makes the reading storage see the packs a fetch added.
func (m *mirror) reindex() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.read != nil {
		m.read.Reindex()
	}
}

// transient reports whether a failed fetch may succeed if tried again: network errors, timeouts and
// server errors are; a repository that is missing, needs credentials or refuses them, or a host key or
// certificate that does not verify, is not.
func transient(err error) bool {
	switch {
	case errors.Is(err, context.Canceled),
		errors.Is(err, ErrAuthFailed),
		errors.Is(err, ErrHostKey),
		errors.Is(err, ErrUntrustedCertificate),
		errors.Is(err, transport.ErrRepositoryNotFound),
		errors.Is(err, transport.ErrAuthenticationRequired),
		errors.Is(err, transport.ErrAuthorizationFailed),
		errors.Is(err, transport.ErrInvalidAuthMethod):
		return false
	}
	// go-git reports other HTTP statuses as an *http.Err inside a *plumbing.UnexpectedError, which
	// does not unwrap.
	var unexpected *plumbing.UnexpectedError
	if errors.As(err, &unexpected) {
		var status *githttp.Err
		if errors.As(unexpected.Err, &status) {
			code := status.StatusCode()
			return code >= 500 || code == 408 || code == 429
		}
	}
	return true
}
