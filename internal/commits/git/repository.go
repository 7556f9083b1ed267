package git

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
)

// maxCachedFile bounds the size of a file kept in the file cache.
const maxCachedFile = 256 << 10

// repository is the commits.Provider that ForRef binds to one mirror URL, one set of credentials and the
// refs its source follows.
type repository struct {
	p     *Provider
	url   string
	acc   *access
	specs []config.RefSpec
	// m is the mirror of one lookup, set by bind: a removed mirror is made again by the next lookup.
	m *mirror
}

// bind returns r for one lookup, on the current mirror of its URL.
func (r *repository) bind() (*repository, error) {
	m, err := r.p.mirrorFor(r)
	if err != nil {
		return nil, err
	}
	b := *r
	b.m = m
	return &b, nil
}

var _ commits.Provider = (*repository)(nil)

// Commit returns one commit by full SHA, fetching only when the mirror lacks it.
func (r *repository) Commit(ctx context.Context, _ commits.Repository, sha string) (commits.Commit, error) {
	r, err := r.bind()
	if err != nil {
		return commits.Commit{}, err
	}
	h, err := parseSHA(sha)
	if err != nil {
		return commits.Commit{}, fmt.Errorf("git: commit in %s: %w", r.m.url, err)
	}
	fetched, err := r.ensure(ctx, h)
	if err != nil {
		return commits.Commit{}, err
	}
	n, err := r.commit(h)
	if err != nil {
		return commits.Commit{}, err
	}
	r.answered(ctx, fetched)
	return cloneCommit(n.commit), nil
}

// Range returns the first-parent commits in (base, head], oldest first; see rangeOf for the rules.
func (r *repository) Range(ctx context.Context, _ commits.Repository, base, head string) (commits.Range, error) {
	if base == head {
		return commits.Range{Status: commits.Identical}, nil
	}
	r, err := r.bind()
	if err != nil {
		return commits.Range{}, err
	}
	hb, err := parseSHA(base)
	if err != nil {
		return commits.Range{}, fmt.Errorf("git: range base in %s: %w", r.m.url, err)
	}
	hh, err := parseSHA(head)
	if err != nil {
		return commits.Range{}, fmt.Errorf("git: range head in %s: %w", r.m.url, err)
	}
	fetched, err := r.ensure(ctx, hb, hh)
	if err != nil {
		return commits.Range{}, err
	}
	for _, h := range []plumbing.Hash{hb, hh} {
		if _, err := r.commit(h); err != nil {
			return commits.Range{}, err
		}
	}
	rng, err := rangeOf(ctx, r.loadAncestor, hb, hh)
	if err != nil {
		return commits.Range{}, fmt.Errorf("git: range %s..%s in %s: %w", hb, hh, r.m.url, err)
	}
	r.answered(ctx, fetched)
	return rng, nil
}

// fileEntry is a cached File answer.
type fileEntry struct {
	data    []byte
	missing bool
}

// File returns the content of path at commit sha: commits.ErrNotFound when absent, commits.ErrTooLarge
// (checked from the object header, before reading) when over maxBytes.
func (r *repository) File(ctx context.Context, _ commits.Repository, sha, path string, maxBytes int64) ([]byte, error) {
	r, err := r.bind()
	if err != nil {
		return nil, err
	}
	h, err := parseSHA(sha)
	if err != nil {
		return nil, fmt.Errorf("git: %s in %s: %w", path, r.m.url, err)
	}
	name, err := cleanPath(path)
	if err != nil {
		return nil, err
	}
	fetched, err := r.ensure(ctx, h)
	if err != nil {
		return nil, err
	}
	key := fileKey{objectKey{r.m.id, h}, name}
	e, ok := r.p.files.Get(key)
	if !ok {
		if e, err = r.m.file(h, name, maxBytes); err != nil {
			return nil, r.fileError(h, name, maxBytes, err)
		}
		if len(e.data) <= maxCachedFile {
			r.p.files.Add(key, e, int64(len(e.data)+len(name))+entryOverhead)
		}
	}
	r.answered(ctx, fetched)
	switch {
	case e.missing:
		return nil, fmt.Errorf("git: %s at %s in %s: %w", name, h, r.m.url, commits.ErrNotFound)
	case int64(len(e.data)) > maxBytes:
		return nil, r.fileError(h, name, maxBytes, &tooLargeError{size: int64(len(e.data))})
	}
	return bytes.Clone(e.data), nil
}

type tooLargeError struct{ size int64 }

func (e *tooLargeError) Error() string { return fmt.Sprintf("%d bytes", e.size) }

func (r *repository) fileError(h plumbing.Hash, name string, maxBytes int64, err error) error {
	if tl := (*tooLargeError)(nil); errors.As(err, &tl) {
		return fmt.Errorf("git: %s at %s in %s is %d bytes, over the %d byte limit: %w", name, h, r.m.url, tl.size, maxBytes, commits.ErrTooLarge)
	}
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return fmt.Errorf("git: %s in %s is not a commit: %w", h, r.m.url, commits.ErrNotFound)
	}
	return fmt.Errorf("git: %s at %s in %s: %w", name, h, r.m.url, err)
}

// file reads path from the tree of commit h, checking the blob's size before reading it.
func (m *mirror) file(h plumbing.Hash, name string, maxBytes int64) (fileEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.open(); err != nil {
		return fileEntry{}, err
	}
	c, err := object.GetCommit(m.read, h)
	if err != nil {
		return fileEntry{}, err
	}
	tree, err := c.Tree()
	if err != nil {
		return fileEntry{}, err
	}
	entry, err := tree.FindEntry(name)
	switch {
	case errors.Is(err, object.ErrEntryNotFound), errors.Is(err, object.ErrDirectoryNotFound),
		errors.Is(err, plumbing.ErrObjectNotFound): // a file where the path wants a directory
		return fileEntry{missing: true}, nil
	case err != nil:
		return fileEntry{}, err
	}
	if entry.Mode != filemode.Regular && entry.Mode != filemode.Executable && entry.Mode != filemode.Deprecated {
		return fileEntry{}, fmt.Errorf("not a regular file (mode %s)", entry.Mode)
	}
	size, err := m.read.EncodedObjectSize(entry.Hash)
	if err != nil {
		return fileEntry{}, err
	}
	if size > maxBytes {
		return fileEntry{}, &tooLargeError{size: size}
	}
	blob, err := object.GetBlob(m.read, entry.Hash)
	if err != nil {
		return fileEntry{}, err
	}
	rd, err := blob.Reader()
	if err != nil {
		return fileEntry{}, err
	}
	defer func() { _ = rd.Close() }()
	data, err := io.ReadAll(io.LimitReader(rd, maxBytes+1))
	if err != nil {
		return fileEntry{}, err
	}
	if int64(len(data)) > maxBytes {
		return fileEntry{}, &tooLargeError{size: max(size, int64(len(data)))}
	}
	return fileEntry{data: data}, nil
}

// answered counts a lookup this caller answered without fetching (itself) as a cache hit; fetches
// count themselves, once per attempt.
func (r *repository) answered(ctx context.Context, fetched bool) {
	if !fetched {
		r.p.onCall(ctx, commits.CallCacheHit)
	}
}

// commit loads h as a commit for a caller that asked for it: absent or not a commit is ErrNotFound.
func (r *repository) commit(h plumbing.Hash) (*node, error) {
	n, err := r.load(h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, fmt.Errorf("git: %s in %s is not a commit: %w", h, r.m.url, commits.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("git: commit %s in %s: %w", h, r.m.url, err)
	}
	return n, nil
}

// load returns a parsed commit from the cache or the mirror; it never fetches.
func (r *repository) load(h plumbing.Hash) (*node, error) {
	key := objectKey{r.m.id, h}
	if n, ok := r.p.nodes.Get(key); ok {
		return n, nil
	}
	n, err := r.m.commit(h)
	if err != nil {
		return nil, err
	}
	r.p.nodes.Add(key, n, n.size())
	return n, nil
}

// entryOverhead estimates the bytes a cache entry costs beyond its strings and slices.
const entryOverhead = 128

// size estimates the bytes n holds in memory.
func (n *node) size() int64 {
	c := n.commit
	return int64(len(c.SHA)+len(c.Message)+len(c.AuthorName)+len(c.AuthorEmail)) +
		int64(len(n.parents)*(len(plumbing.Hash{})+40+16)) + 2*entryOverhead
}

// ErrIncompleteHistory reports that a range walk needed a commit the mirror does not hold although a
// commit it holds names it as a parent: the server's history is shallow, or the mirror is damaged. The
// range cannot be known, so none is guessed; it is not commits.ErrNotFound (base and head exist).
var ErrIncompleteHistory = errors.New("history is incomplete")

// loadAncestor is load for walks from commits the mirror holds: a missing commit is a gap in history.
func (r *repository) loadAncestor(h plumbing.Hash) (*node, error) {
	n, err := r.load(h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, fmt.Errorf("%w: commit %s, an ancestor of the range, is not in the mirror (a shallow server, or a damaged mirror): %w",
			ErrIncompleteHistory, h, err)
	}
	return n, err
}

// missing returns the objects of hs the mirror lacks.
func (r *repository) missing(hs []plumbing.Hash) ([]plumbing.Hash, error) {
	var out []plumbing.Hash
	for _, h := range hs {
		if _, ok := r.p.nodes.Get(objectKey{r.m.id, h}); ok {
			continue
		}
		ok, err := r.m.has(h)
		if err != nil {
			return nil, err
		}
		if !ok {
			out = append(out, h)
		}
	}
	return out, nil
}

// maxFetchRounds bounds how often one lookup joins or starts a fetch before giving up.
const maxFetchRounds = 4

// ensure makes sure the mirror holds hs, fetching when it does not. A fetch that started after this
// call began and still did not bring an object makes it commits.ErrNotFound; joining a fetch that was
// already running when this call began proves nothing, so then it fetches again. fetched reports
// whether this caller ran a fetch itself.
func (r *repository) ensure(ctx context.Context, hs ...plumbing.Hash) (fetched bool, err error) {
	seen := r.m.started.Load()
	var last uint64
	for range maxFetchRounds {
		missing, err := r.missing(hs)
		if err != nil {
			return fetched, err
		}
		if len(missing) == 0 {
			return fetched, nil
		}
		if last > seen {
			return fetched, fmt.Errorf("git: commit %s not in %s after a fetch: %w", missing[0], r.m.url, commits.ErrNotFound)
		}
		var ran bool
		if last, ran, err = r.p.sharedFetch(ctx, r.m, r.acc, missing); err != nil {
			return fetched, err
		}
		fetched = fetched || ran
	}
	return fetched, fmt.Errorf("git: objects still missing from %s after %d rounds of fetches", r.m.url, maxFetchRounds)
}

// flightResult is what a mirror's fetch flight tells everyone who waited on it.
type flightResult struct {
	seq uint64 // number of the fetch that ran, or of the last one started when none was needed
	ran bool
}

// sharedFetch runs one fetch of m for all concurrent callers with the same credentials: the first
// caller's flight fetches, the others wait for it. Callers with other credentials have their own
// flight, so a fetch refused for one credential is never another's answer; flights of one mirror
// take turns (m.fetchMu). The fetch runs detached from the caller's cancellation (others may be
// waiting on it), bounded by Timeout per attempt and by Close; a caller whose ctx ends stops
// waiting. The flight skips the fetch when wants arrived meanwhile, whoever fetched them; with no wants it
// always fetches the refs. ran is true only for the caller whose flight fetched.
func (p *Provider) sharedFetch(ctx context.Context, m *mirror, acc *access, wants []plumbing.Hash) (seq uint64, ran bool, err error) {
	leader := false
	ch := p.flight.DoChan(acc.key, func() (any, error) {
		leader = true
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return flightResult{}, ErrClosed
		}
		p.inFlight.Add(1)
		p.mu.Unlock()
		defer p.inFlight.Done()

		m.fetchMu.Lock()
		defer m.fetchMu.Unlock()
		if p.ctx.Err() != nil {
			return flightResult{}, ErrClosed
		}
		if len(wants) > 0 {
			if ok, err := m.has(wants...); err != nil || ok {
				return flightResult{seq: m.started.Load()}, err
			}
		}
		seq := m.started.Add(1)
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		defer cancel()
		defer context.AfterFunc(p.ctx, cancel)()
		return flightResult{seq: seq, ran: true}, p.fetch(fctx, m, acc, wants)
	})
	select {
	case <-ctx.Done():
		return 0, false, ctx.Err()
	case res := <-ch:
		fr, _ := res.Val.(flightResult)
		return fr.seq, leader && fr.ran, res.Err
	}
}
