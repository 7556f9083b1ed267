// Package git answers commit questions from the git object graph itself: commit metadata, first-parent
// ranges and files at a commit, read from one local bare mirror per repository that go-git fetches only
// when an asked-for object is missing. A fetch brings the refs the repository's sources follow (their
// branch, tag, semver tags or ref name; the remote's HEAD for a source that names none; any ref Resolve
// named) and then, by SHA, any asked-for commit still missing, when the server allows that; each attempt,
// and each listing of the remote's refs, has a deadline. Answers are
// immutable by SHA, so parsed commits and small files are held in LRUs bounded in bytes; concurrent
// lookups that need a fetch of the same repository share one; transient fetch failures are retried with
// backoff. Mirrors no source uses any more are removed with Prune or RemoveIdle.
//
// Repositories are named by clone URL, not commits.Repository (a GitHub-style identity that loses the
// URL): ForURL binds a commits.Provider to one URL.
package git

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	lru "github.com/hashicorp/golang-lru/v2"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/sync/singleflight"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/bytecache"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/sourceauth"
)

const (
	defaultCacheBytes     = 32 << 20
	defaultFileCacheBytes = 16 << 20
	accessCacheSize       = 256
	defaultTimeout        = 30 * time.Second
	defaultMaxRetries     = 4
	defaultWaitMin        = time.Second
	defaultWaitMax        = 30 * time.Second
	tracerName            = "github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/git"
)

// ErrClosed is returned by lookups that need a fetch after Close.
var ErrClosed = errors.New("git: provider closed")

// Options configures a Provider.
type Options struct {
	// CacheDir holds one bare mirror per repository; default DefaultCacheDir(). In a cluster, an emptyDir.
	CacheDir string
	// Logger, if set, gets fetch results (debug) and retries (info).
	Logger *slog.Logger
	// OnCall, if set, is told the outcome of every fetch attempt and of every lookup answered locally.
	OnCall func(ctx context.Context, outcome commits.CallOutcome)
	// TracerProvider, if set, records a client span per fetch attempt.
	TracerProvider trace.TracerProvider
	// Timeout bounds each fetch attempt; default 30s.
	Timeout time.Duration
	// FetchTimeout is the former name of Timeout, used when Timeout is unset.
	//
	// Deprecated: use Timeout.
	FetchTimeout time.Duration
	// CacheBytes bounds the estimated bytes of parsed commits held in memory (all repositories together);
	// default 32 MiB.
	CacheBytes int64
	// FileCacheBytes bounds the bytes of small files held in memory; default 16 MiB.
	FileCacheBytes int64
	// MaxRetries bounds retries of a failed fetch; default 4, negative disables retries.
	MaxRetries int
	// RetryWaitMin and RetryWaitMax bound the exponential backoff between attempts; default 1s and 30s.
	RetryWaitMin, RetryWaitMax time.Duration
}

// DefaultCacheDir returns os.UserCacheDir()/flux-commit-tracker/git, or the same under os.TempDir()
// when there is no user cache directory (as for a container user without a home).
func DefaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil || dir == "" {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "flux-commit-tracker", "git")
}

// Provider owns the mirrors under one cache directory. It is safe for concurrent use; Close it to end
// fetches and release open pack files.
type Provider struct {
	cacheDir   string
	logger     *slog.Logger
	onCall     func(context.Context, commits.CallOutcome)
	tracer     trace.Tracer
	timeout    time.Duration
	maxRetries int
	waitMin    time.Duration
	waitMax    time.Duration

	nodes *bytecache.Cache[objectKey, *node]
	files *bytecache.Cache[fileKey, fileEntry]
	// access holds prepared credentials (parsed keys and known_hosts) by access key.
	access *lru.Cache[string, accessEntry]
	flight singleflight.Group

	ctx  context.Context // ends with Close, and with it every fetch
	stop context.CancelFunc

	mu       sync.Mutex
	mirrors  map[string]*mirror // by normalized URL
	lastID   uint64             // of the newest mirror; ids are never reused, so caches never mix mirrors
	closed   bool
	inFlight sync.WaitGroup // running fetches
}

// objectKey names an object in one mirror: the same SHA in another repository is a different answer
// to "is it there".
type objectKey struct {
	mirror uint64
	hash   plumbing.Hash
}

type fileKey struct {
	objectKey
	path string
}

// New returns a Provider keeping its mirrors under opts.CacheDir, which it creates.
func New(opts Options) (*Provider, error) {
	dir := opts.CacheDir
	if dir == "" {
		dir = DefaultCacheDir()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("git: cache directory: %w", err)
	}
	p := &Provider{
		cacheDir:   dir,
		logger:     opts.Logger,
		onCall:     opts.OnCall,
		timeout:    opts.Timeout,
		maxRetries: opts.MaxRetries,
		waitMin:    opts.RetryWaitMin,
		waitMax:    opts.RetryWaitMax,
		mirrors:    make(map[string]*mirror),
	}
	if p.logger == nil {
		p.logger = slog.New(slog.DiscardHandler)
	}
	if p.onCall == nil {
		p.onCall = func(context.Context, commits.CallOutcome) {}
	}
	tp := opts.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	p.tracer = tp.Tracer(tracerName)
	if p.timeout <= 0 {
		p.timeout = opts.FetchTimeout
	}
	if p.timeout <= 0 {
		p.timeout = defaultTimeout
	}
	retry := commits.RetryPolicy{MaxRetries: p.maxRetries, WaitMin: p.waitMin, WaitMax: p.waitMax}.
		WithDefaults(commits.RetryPolicy{MaxRetries: defaultMaxRetries, WaitMin: defaultWaitMin, WaitMax: defaultWaitMax})
	p.maxRetries, p.waitMin, p.waitMax = retry.MaxRetries, retry.WaitMin, retry.WaitMax
	p.nodes = bytecache.New[objectKey, *node](orDefault(opts.CacheBytes, defaultCacheBytes))
	p.files = bytecache.New[fileKey, fileEntry](orDefault(opts.FileCacheBytes, defaultFileCacheBytes))
	var err error
	if p.access, err = lru.New[string, accessEntry](accessCacheSize); err != nil {
		return nil, fmt.Errorf("git: %w", err)
	}
	p.ctx, p.stop = context.WithCancel(context.Background())
	return p, nil
}

func orDefault(n, def int64) int64 {
	if n <= 0 {
		return def
	}
	return n
}

// Close ends running fetches, waits for them and closes the mirrors' open files. Lookups that need a
// fetch fail with ErrClosed afterwards.
func (p *Provider) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.stop()
	p.inFlight.Wait()

	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for _, m := range p.mirrors {
		errs = append(errs, m.close())
	}
	return errors.Join(errs...)
}

// ForURL returns a commits.Provider for the repository cloned from rawURL: http(s)://, ssh://, git://,
// scp-like user@host:path, or file:// (tests). Credentials in the URL are dropped: access is anonymous.
// The commits.Repository its methods take is ignored. An invalid URL gives a provider whose every
// lookup fails with that error. Fetches follow the remote's HEAD; see ForRef.
func (p *Provider) ForURL(rawURL string) commits.Provider {
	return p.ForRef(rawURL, sourceauth.Auth{}, Ref{})
}

// ForURLWithAuth is ForURL fetching with auth, a Flux source's credentials: over HTTP(S) the bearer
// token or else basic credentials, and the CA bundle; over SSH the identity, verifying the server
// against known_hosts (both required). git:// and file:// ignore credentials; an empty auth is
// anonymous. Credentials that cannot be used (an SSH URL without an identity, a key that does not
// parse) give a provider whose every lookup fails with an error naming what is wrong, never the
// material. Fetches with the same credentials are shared; a fetch with other credentials is not, so
// one credential's failure never becomes another's. Fetches follow the remote's HEAD; see ForRef.
func (p *Provider) ForURLWithAuth(rawURL string, auth sourceauth.Auth) commits.Provider {
	return p.ForRef(rawURL, auth, Ref{})
}

// ForRef is ForURLWithAuth for a source that follows ref: the mirror's fetches bring ref (with the refs
// of the mirror's other sources), not every branch and tag; an empty ref follows the remote's HEAD.
func (p *Provider) ForRef(rawURL string, auth sourceauth.Auth, ref Ref) commits.Provider {
	url, err := normalizeURL(rawURL)
	if err != nil {
		return failing{err: fmt.Errorf("git: %w", err)}
	}
	acc, err := p.accessFor(url, auth)
	if err != nil {
		return failing{err: err}
	}
	r := &repository{p: p, url: url, acc: acc, specs: ref.refSpecs()}
	if _, err := p.mirrorFor(r); err != nil {
		return failing{err: err}
	}
	return r
}

// mirrorFor returns r's mirror, making it when it is new or was removed, and notes that r's refs are in use.
func (p *Provider) mirrorFor(r *repository) (*mirror, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	m, ok := p.mirrors[r.url]
	if !ok {
		p.lastID++
		m = &mirror{id: p.lastID, url: r.url, dir: filepath.Join(p.cacheDir, mirrorName(r.url)), refs: map[config.RefSpec]time.Time{}}
		p.mirrors[r.url] = m
	}
	now := time.Now()
	m.lastUse = now
	for _, s := range r.specs {
		m.refs[s] = now
	}
	return m, nil
}

// Prune removes, from memory and from the cache directory, the mirrors whose URL (normalized, without
// credentials) keep rejects — those of repositories no source uses any more. A lookup running on a removed
// mirror may fail; the next one makes the mirror again.
func (p *Provider) Prune(keep func(url string) bool) error {
	return p.remove(func(m *mirror) bool { return !keep(m.url) }, 0)
}

// Retain removes every mirror but those of rawURLs, the URLs of the sources still in use; URLs that do not
// parse are ignored.
func (p *Provider) Retain(rawURLs ...string) error {
	in := make(map[string]bool, len(rawURLs))
	for _, raw := range rawURLs {
		if url, err := normalizeURL(raw); err == nil {
			in[url] = true
		}
	}
	return p.Prune(func(url string) bool { return in[url] })
}

// RemoveIdle removes the mirrors no lookup used for maxIdle, and stops fetching the refs no source asked
// for in that time. Call it periodically (say hourly with a day) when sources come and go.
func (p *Provider) RemoveIdle(maxIdle time.Duration) error {
	cutoff := time.Now().Add(-maxIdle)
	return p.remove(func(m *mirror) bool { return m.lastUse.Before(cutoff) }, maxIdle)
}

// remove drops the mirrors gone selects (called with p.mu held) and deletes their directories; with
// maxIdle > 0 it also forgets the refs of kept mirrors unused for maxIdle.
func (p *Provider) remove(gone func(*mirror) bool, maxIdle time.Duration) error {
	p.mu.Lock()
	var doomed []*mirror
	for url, m := range p.mirrors {
		if gone(m) {
			doomed = append(doomed, m)
			delete(p.mirrors, url)
			continue
		}
		if maxIdle > 0 {
			cutoff := time.Now().Add(-maxIdle)
			for s, used := range m.refs {
				if used.Before(cutoff) {
					delete(m.refs, s)
				}
			}
		}
	}
	p.mu.Unlock()
	var errs []error
	for _, m := range doomed {
		m.fetchMu.Lock() // let a running fetch finish first
		err := m.close()
		if rerr := os.RemoveAll(m.dir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("git: remove mirror of %s: %w", m.url, rerr))
		}
		m.fetchMu.Unlock()
		if err != nil {
			errs = append(errs, err)
		}
		p.logger.Info("git mirror removed: no source uses it", "url", m.url)
	}
	return errors.Join(errs...)
}

// Ref is what a source follows in its repository, as in a Flux GitRepository's spec.ref. Fields that
// are not valid reference names are ignored.
type Ref struct {
	Branch string
	Tag    string
	// SemVer selects among tags: every tag is fetched.
	SemVer string
	// Name is a full reference name such as refs/pull/1/head.
	Name string
	// Commit pins a commit; it is fetched by SHA like any asked-for commit, so it adds no refspec.
	Commit string
}

// headRefSpec follows the remote's default branch.
const headRefSpec = config.RefSpec("+HEAD:refs/remotes/origin/HEAD")

// refSpecs turns r into the refspecs a fetch asks for.
func (r Ref) refSpecs() []config.RefSpec {
	var out []config.RefSpec
	add := func(name string) {
		if validRefName(name) {
			out = append(out, config.RefSpec("+"+name+":"+name))
		}
	}
	if r.Branch != "" {
		add("refs/heads/" + r.Branch)
	}
	if r.Tag != "" {
		add("refs/tags/" + r.Tag)
	}
	if r.SemVer != "" {
		out = append(out, "+refs/tags/*:refs/tags/*")
	}
	if strings.HasPrefix(r.Name, "refs/") {
		add(r.Name)
	}
	if len(out) == 0 {
		out = append(out, headRefSpec)
	}
	return out
}

// validRefName reports whether name is a reference name git accepts and a refspec cannot misread.
func validRefName(name string) bool {
	if len(name) > 1024 || strings.Contains(name, "..") || strings.Contains(name, "//") ||
		strings.HasSuffix(name, "/") || strings.HasSuffix(name, ".") || strings.HasSuffix(name, ".lock") || strings.Contains(name, "@{") {
		return false
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f || strings.ContainsRune(" ~^:?*[\\", c) {
			return false
		}
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" || strings.HasPrefix(part, ".") {
			return false
		}
	}
	return plumbing.ReferenceName(name).Validate() == nil
}

// accessEntry is a prepared access, or why auth cannot be used.
type accessEntry struct {
	acc *access
	err error
}

// accessFor prepares auth for url once; the tracker asks for a provider on every reconcile.
func (p *Provider) accessFor(url string, auth sourceauth.Auth) (*access, error) {
	if auth.Empty() {
		return newAccess(url, auth, p.cacheDir)
	}
	key := url + "\x00" + auth.Fingerprint()
	if e, ok := p.access.Get(key); ok {
		return e.acc, e.err
	}
	acc, err := newAccess(url, auth, p.cacheDir)
	if err != nil {
		err = redactAll(err, secretsOf(auth))
	}
	p.access.Add(key, accessEntry{acc: acc, err: err})
	return acc, err
}

// failing answers every lookup with err.
type failing struct{ err error }

var (
	_ commits.RefResolver = failing{}
	_ commits.PathHistory = failing{}
)

func (f failing) Commit(context.Context, commits.Repository, string) (commits.Commit, error) {
	return commits.Commit{}, f.err
}

func (f failing) Range(context.Context, commits.Repository, string, string) (commits.Range, error) {
	return commits.Range{}, f.err
}

func (f failing) File(context.Context, commits.Repository, string, string, int64) ([]byte, error) {
	return nil, f.err
}

func (f failing) Resolve(context.Context, commits.Repository, string) (string, error) {
	return "", f.err
}

func (f failing) LastChange(context.Context, commits.Repository, string, string) (commits.Commit, error) {
	return commits.Commit{}, f.err
}

// parseSHA accepts a full SHA-1 object name in either case.
func parseSHA(s string) (plumbing.Hash, error) {
	var h plumbing.Hash
	if len(s) != 40 {
		return h, fmt.Errorf("%q is not a full SHA-1 commit name: %w", truncate(s), commits.ErrNotFound)
	}
	for i := range 40 {
		c := s[i]
		var v byte
		switch {
		case '0' <= c && c <= '9':
			v = c - '0'
		case 'a' <= c && c <= 'f':
			v = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			v = c - 'A' + 10
		default:
			return h, fmt.Errorf("%q is not a full SHA-1 commit name: %w", truncate(s), commits.ErrNotFound)
		}
		if i%2 == 0 {
			h[i/2] = v << 4
		} else {
			h[i/2] |= v
		}
	}
	return h, nil
}

func truncate(s string) string {
	if len(s) > 72 {
		return s[:72] + "…"
	}
	return s
}

// cleanPath turns name into a path in the root tree: no leading slash or ./, no .. above the root.
func cleanPath(name string) (string, error) {
	p := strings.TrimPrefix(path.Clean("/"+name), "/")
	if p == "" {
		return "", fmt.Errorf("git: %q does not name a file", name)
	}
	return p, nil
}
