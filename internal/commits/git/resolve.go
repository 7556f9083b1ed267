package git

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
)

var _ commits.RefResolver = (*repository)(nil)

// Resolve returns the full SHA ref names now, the mirror holding that commit afterwards. Git's order decides: a
// full SHA is itself (fetched when missing, as Commit does); else a ref the remote advertises under that exact
// name (HEAD, refs/…), as a tag, or as a branch, which the mirror follows from then on; else a SHA prefix,
// matched against the mirror's commits after a fetch of the refs it follows.
func (r *repository) Resolve(ctx context.Context, _ commits.Repository, ref string) (string, error) {
	r, err := r.bind()
	if err != nil {
		return "", err
	}
	if ref == "" {
		return "", fmt.Errorf("git: resolve in %s: empty ref: %w", r.m.url, commits.ErrNotFound)
	}
	if h, err := parseSHA(ref); err == nil {
		return r.resolved(ctx, h, true)
	}
	refs, err := r.p.listRefs(ctx, r.m, r.acc)
	if err != nil {
		return "", err
	}
	if name, h, ok := refTarget(refs, ref); ok {
		r.p.follow(r.m, name)
		return r.resolved(ctx, h, false)
	}
	if !commits.IsSHAPrefix(ref) {
		return "", fmt.Errorf("git: %q in %s: no such branch or tag: %w", truncate(ref), r.m.url, commits.ErrNotFound)
	}
	if err := r.refresh(ctx); err != nil {
		return "", err
	}
	hs, err := r.m.commitsWithPrefix(ref)
	if err != nil {
		return "", err
	}
	switch len(hs) {
	case 0:
		return "", fmt.Errorf("git: %q in %s: no branch, tag or commit matches: %w", ref, r.m.url, commits.ErrNotFound)
	case 1:
		return hs[0].String(), nil
	}
	return "", fmt.Errorf("git: %q in %s begins %d commits, %s and %s among them: %w",
		ref, r.m.url, len(hs), hs[0], hs[1], commits.ErrAmbiguous)
}

// resolved makes sure the mirror holds commit h and returns its SHA; local counts an answer without a fetch as a
// cache hit.
func (r *repository) resolved(ctx context.Context, h plumbing.Hash, local bool) (string, error) {
	fetched, err := r.ensure(ctx, h)
	if err != nil {
		return "", err
	}
	if _, err := r.commit(h); err != nil {
		return "", err
	}
	if local {
		r.answered(ctx, fetched)
	}
	return h.String(), nil
}

// maxSymbolicDepth bounds how many symbolic refs (HEAD → refs/heads/main) refTarget follows.
const maxSymbolicDepth = 5

// refTarget finds ref among the advertised refs as git names it: the exact name (HEAD, refs/…), then a tag, then a
// branch. It returns the name the commit is found under and the commit, an annotated tag peeled.
func refTarget(refs []*plumbing.Reference, ref string) (plumbing.ReferenceName, plumbing.Hash, bool) {
	byName := make(map[plumbing.ReferenceName]*plumbing.Reference, len(refs))
	for _, rf := range refs {
		byName[rf.Name()] = rf
	}
	var names []string
	if ref == "HEAD" || strings.HasPrefix(ref, "refs/") {
		names = append(names, ref)
	}
	for _, c := range append(names, "refs/tags/"+ref, "refs/heads/"+ref) {
		name := plumbing.ReferenceName(c)
		for range maxSymbolicDepth {
			rf, ok := byName[name]
			if !ok {
				break
			}
			if rf.Type() == plumbing.SymbolicReference {
				name = rf.Target()
				continue
			}
			if peeled, ok := byName[name+"^{}"]; ok {
				return name, peeled.Hash(), true
			}
			return name, rf.Hash(), true
		}
	}
	return "", plumbing.ZeroHash, false
}

// follow makes m's fetches bring ref too, as if a source followed it.
func (p *Provider) follow(m *mirror, ref plumbing.ReferenceName) {
	spec := headRefSpec
	if ref != plumbing.HEAD {
		if !validRefName(ref.String()) {
			return
		}
		spec = config.RefSpec("+" + ref + ":" + ref)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	m.refs[spec] = time.Now()
}

// refresh fetches the refs the mirror follows in a fetch that started after this call began.
func (r *repository) refresh(ctx context.Context) error {
	seen := r.m.started.Load()
	for range maxFetchRounds {
		seq, _, err := r.p.sharedFetch(ctx, r.m, r.acc, nil)
		if err != nil {
			return err
		}
		if seq > seen {
			return nil
		}
	}
	return fmt.Errorf("git: no fetch of %s after %d rounds", r.m.url, maxFetchRounds)
}

// commitsWithPrefix returns the commits in the mirror whose SHA begins with prefix, hex in either case.
func (m *mirror) commitsWithPrefix(prefix string) ([]plumbing.Hash, error) {
	prefix = strings.ToLower(prefix)
	whole, err := hex.DecodeString(prefix[:len(prefix)/2*2])
	if err != nil {
		return nil, fmt.Errorf("git: %q is not hex: %w", prefix, commits.ErrNotFound)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.open(); err != nil {
		return nil, err
	}
	hs, err := m.read.HashesWithPrefix(whole)
	if err != nil {
		return nil, fmt.Errorf("git: mirror of %s: %w", m.url, err)
	}
	var out []plumbing.Hash
	seen := make(map[plumbing.Hash]bool, len(hs))
	for _, h := range hs {
		if seen[h] || !strings.HasPrefix(h.String(), prefix) {
			continue
		}
		seen[h] = true // the same object may sit in several packs
		switch _, err := m.read.EncodedObject(plumbing.CommitObject, h); {
		case errors.Is(err, plumbing.ErrObjectNotFound): // a tree or blob
		case err != nil:
			return nil, fmt.Errorf("git: mirror of %s: %w", m.url, err)
		default:
			out = append(out, h)
		}
	}
	return out, nil
}
