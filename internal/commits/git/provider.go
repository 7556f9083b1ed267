// Package git answers commit questions from the git object graph itself: commit metadata, first-parent
// ranges and files at a commit, read from one local bare mirror per repository that go-git fetches
// anonymously (all branches and tags) only when an asked-for object is missing. Answers are immutable by
// SHA, so parsed commits and small files are held in bounded LRUs; concurrent lookups that need a fetch
// of the same repository share one; transient fetch failures are retried with backoff.
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

	"github.com/go-git/go-git/v5/plumbing"
	lru "github.com/hashicorp/golang-lru/v2"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/sync/singleflight"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/sourceauth"
)

const (
	defaultCacheSize    = 16384
	fileCacheSize       = 256
	accessCacheSize     = 256
	defaultFetchTimeout = 5 * time.Minute
	defaultMaxRetries   = 4
	defaultWaitMin      = time.Second
	defaultWaitMax      = 30 * time.Second
	tracerName          = "github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/git"
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
	// FetchTimeout bounds one fetch attempt; default 5m.
	FetchTimeout time.Duration
	// CacheSize bounds the parsed commits held in memory (all repositories together); default 16384.
	CacheSize int
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
	cacheDir     string
	logger       *slog.Logger
	onCall       func(context.Context, commits.CallOutcome)
	tracer       trace.Tracer
	fetchTimeout time.Duration
	maxRetries   int
	waitMin      time.Duration
	waitMax      time.Duration

	nodes *lru.Cache[objectKey, *node]
	files *lru.Cache[fileKey, fileEntry]
	// access holds prepared credentials (parsed keys and known_hosts) by access key.
	access *lru.Cache[string, accessEntry]
	flight singleflight.Group

	ctx  context.Context // ends with Close, and with it every fetch
	stop context.CancelFunc

	mu       sync.Mutex
	mirrors  map[string]*mirror // by normalized URL
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
		cacheDir:     dir,
		logger:       opts.Logger,
		onCall:       opts.OnCall,
		fetchTimeout: opts.FetchTimeout,
		maxRetries:   opts.MaxRetries,
		waitMin:      opts.RetryWaitMin,
		waitMax:      opts.RetryWaitMax,
		mirrors:      make(map[string]*mirror),
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
	if p.fetchTimeout <= 0 {
		p.fetchTimeout = defaultFetchTimeout
	}
	retry := commits.RetryPolicy{MaxRetries: p.maxRetries, WaitMin: p.waitMin, WaitMax: p.waitMax}.
		WithDefaults(commits.RetryPolicy{MaxRetries: defaultMaxRetries, WaitMin: defaultWaitMin, WaitMax: defaultWaitMax})
	p.maxRetries, p.waitMin, p.waitMax = retry.MaxRetries, retry.WaitMin, retry.WaitMax
	size := opts.CacheSize
	if size <= 0 {
		size = defaultCacheSize
	}
	var err error
	if p.nodes, err = lru.New[objectKey, *node](size); err != nil {
		return nil, fmt.Errorf("git: %w", err)
	}
	if p.files, err = lru.New[fileKey, fileEntry](fileCacheSize); err != nil {
		return nil, fmt.Errorf("git: %w", err)
	}
	if p.access, err = lru.New[string, accessEntry](accessCacheSize); err != nil {
		return nil, fmt.Errorf("git: %w", err)
	}
	p.ctx, p.stop = context.WithCancel(context.Background())
	return p, nil
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
// lookup fails with that error.
func (p *Provider) ForURL(rawURL string) commits.Provider {
	return p.ForURLWithAuth(rawURL, sourceauth.Auth{})
}

// ForURLWithAuth is ForURL fetching with auth, a Flux source's credentials: over HTTP(S) the bearer
// token or else basic credentials, and the CA bundle; over SSH the identity, verifying the server
// against known_hosts (both required). git:// and file:// ignore credentials; an empty auth is
// anonymous. Credentials that cannot be used (an SSH URL without an identity, a key that does not
// parse) give a provider whose every lookup fails with an error naming what is wrong, never the
// material. Fetches with the same credentials are shared; a fetch with other credentials is not, so
// one credential's failure never becomes another's.
func (p *Provider) ForURLWithAuth(rawURL string, auth sourceauth.Auth) commits.Provider {
	url, err := normalizeURL(rawURL)
	if err != nil {
		return failing{err: fmt.Errorf("git: %w", err)}
	}
	acc, err := p.accessFor(url, auth)
	if err != nil {
		return failing{err: err}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return failing{err: ErrClosed}
	}
	m, ok := p.mirrors[url]
	if !ok {
		m = &mirror{id: uint64(len(p.mirrors) + 1), url: url, dir: filepath.Join(p.cacheDir, mirrorName(url))}
		p.mirrors[url] = m
	}
	return &repository{p: p, m: m, acc: acc}
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

func (f failing) Commit(context.Context, commits.Repository, string) (commits.Commit, error) {
	return commits.Commit{}, f.err
}

func (f failing) Range(context.Context, commits.Repository, string, string) (commits.Range, error) {
	return commits.Range{}, f.err
}

func (f failing) File(context.Context, commits.Repository, string, string, int64) ([]byte, error) {
	return nil, f.err
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
