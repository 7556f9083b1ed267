package git

import (
	"container/heap"
	"context"
	"errors"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
)

// node is a parsed commit: what the walks need plus the metadata callers get.
type node struct {
	hash    plumbing.Hash
	parents []plumbing.Hash
	// when is the committer time in Unix seconds; it only orders walks, it never decides an answer.
	when   int64
	commit commits.Commit
}

// loadFunc returns the commit named by h; plumbing.ErrObjectNotFound when it is absent.
type loadFunc func(h plumbing.Hash) (*node, error)

// rangeOf classifies head against base and, when head is ahead, returns the first-parent commits
// (base, head], oldest first, the newest commits.MaxRangeCommits kept.
//
// One walk (paint) answers the reachability questions exactly; see paint. Then:
//   - base reachable from head: ahead. The commits are head's first-parent chain down to, not including,
//     the first commit that is base or an ancestor of base. Usually that is base itself; when base sits on
//     a side branch that head's history merged, it is where the chain meets base's history.
//   - head reachable from base: behind (a rollback).
//   - neither: diverged (a force-push, or unrelated histories).
//
// Cost is proportional to the commits between the two and their merge base, never the whole history,
// except for the rare side-branch base whose verification may walk further.
//
// History may be incomplete (a shallow server): a commit the answer needs that load cannot find is an
// error, never a guess; one below a common ancestor cannot change the answer and is skipped.
func rangeOf(ctx context.Context, load loadFunc, base, head plumbing.Hash) (commits.Range, error) {
	if base == head {
		return commits.Range{Status: commits.Identical}, nil
	}
	flags, err := paint(ctx, load, head, base)
	if err != nil {
		return commits.Range{}, err
	}
	switch {
	case flags[base]&fromA != 0:
	case flags[head]&fromB != 0:
		return commits.Range{Status: commits.Behind}, nil
	default:
		return commits.Range{Status: commits.Diverged}, nil
	}

	// Follow first parents until base, or a commit painted from base (an ancestor of it), or a root.
	var chain []*node
	onBase := false
	for cur := head; ; {
		if cur == base {
			onBase = true
			break
		}
		if flags[cur]&fromB != 0 {
			break
		}
		n, err := load(cur)
		if err != nil {
			return commits.Range{}, err
		}
		chain = append(chain, n)
		if len(n.parents) == 0 {
			break
		}
		cur = n.parents[0]
		if len(chain)&1023 == 0 && ctx.Err() != nil {
			return commits.Range{}, ctx.Err()
		}
	}
	if !onBase {
		// paint stops early once every queued commit is known to be common, so with equal or skewed clocks
		// a chain commit can be an ancestor of base without being painted. Being one is monotonic along the
		// chain (a parent of an ancestor is an ancestor), so check the last commit kept and, if it is one,
		// binary search for the first.
		if chain, err = trimToBase(ctx, load, chain, base); err != nil {
			return commits.Range{}, err
		}
	}

	kept := min(len(chain), commits.MaxRangeCommits)
	r := commits.Range{Status: commits.Ahead, Truncated: len(chain) - kept, Commits: make([]commits.Commit, kept)}
	for i := range kept {
		r.Commits[kept-1-i] = cloneCommit(chain[i].commit)
	}
	return r, nil
}

// trimToBase cuts chain (newest first) before its first commit that is an ancestor of base.
func trimToBase(ctx context.Context, load loadFunc, chain []*node, base plumbing.Hash) ([]*node, error) {
	isAncestor := func(i int) (bool, error) {
		h := chain[i].hash
		flags, err := paint(ctx, load, base, h)
		return flags[h]&fromA != 0, err
	}
	if len(chain) == 0 {
		return chain, nil
	}
	last, err := isAncestor(len(chain) - 1)
	if err != nil || !last {
		return chain, err
	}
	// chain[0] is head, which is not an ancestor of base (base is a proper ancestor of head).
	lo, hi := 0, len(chain)-1 // invariant: chain[lo] is not an ancestor, chain[hi] is
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		ok, err := isAncestor(mid)
		if err != nil {
			return nil, err
		}
		if ok {
			hi = mid
		} else {
			lo = mid
		}
	}
	return chain[:hi], nil
}

// Paint flags.
const (
	fromA uint8 = 1 << iota // reachable from a
	fromB                   // reachable from b
	stale                   // reachable from a commit reachable from both: cannot lead to new answers
)

// paint marks the commits reachable from a with fromA and those reachable from b with fromB, newest
// committer time first, and stops once every queued commit is stale — git's paint_down_to_common.
//
// The answers it is used for are exact whatever the clocks say: if b is reachable from a, every commit on
// a path from a to b except b is a proper descendant of b, so never stale, so the walk cannot stop before
// the path is painted fromA down to b (and symmetrically for a reachable from b). Clocks only decide how
// soon the walk stops.
func paint(ctx context.Context, load loadFunc, a, b plumbing.Hash) (map[plumbing.Hash]uint8, error) {
	p := painter{load: load, flags: make(map[plumbing.Hash]uint8), queued: make(map[plumbing.Hash]bool)}
	if err := p.mark(a, fromA); err != nil {
		return nil, err
	}
	if err := p.mark(b, fromB); err != nil {
		return nil, err
	}
	for steps := 1; p.nonStale > 0; steps++ {
		if steps&1023 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		it := heap.Pop(&p.queue).(queueItem)
		delete(p.queued, it.hash)
		f := p.flags[it.hash]
		if f&stale == 0 {
			p.nonStale--
		}
		if f&(fromA|fromB) == fromA|fromB {
			f |= stale // a common ancestor: everything below it is common too
		}
		for _, parent := range it.node.parents {
			if p.flags[parent]&f != f {
				if err := p.mark(parent, f); err != nil {
					return nil, err
				}
			}
		}
	}
	return p.flags, nil
}

type painter struct {
	load     loadFunc
	flags    map[plumbing.Hash]uint8
	queued   map[plumbing.Hash]bool
	queue    commitQueue
	seq      int
	nonStale int // queued commits without the stale flag
}

// mark adds flags to h and queues it unless it is queued already (it is then walked with all its flags).
func (p *painter) mark(h plumbing.Hash, add uint8) error {
	old := p.flags[h]
	now := old | add
	p.flags[h] = now
	if p.queued[h] {
		if old&stale == 0 && now&stale != 0 {
			p.nonStale--
		}
		return nil
	}
	n, err := p.load(h)
	if err != nil {
		if now&stale != 0 && errors.Is(err, plumbing.ErrObjectNotFound) {
			// A stale commit cannot change an answer, so one missing (past a shallow boundary) is not
			// needed; a commit with stale already has every flag, so it is never marked again.
			return nil
		}
		return err
	}
	p.seq++
	heap.Push(&p.queue, queueItem{hash: h, node: n, seq: p.seq})
	p.queued[h] = true
	if now&stale == 0 {
		p.nonStale++
	}
	return nil
}

type queueItem struct {
	hash plumbing.Hash
	node *node
	seq  int
}

// commitQueue pops the newest committer time first, then the earliest queued.
type commitQueue []queueItem

func (q commitQueue) Len() int { return len(q) }
func (q commitQueue) Less(i, j int) bool {
	if q[i].node.when != q[j].node.when {
		return q[i].node.when > q[j].node.when
	}
	return q[i].seq < q[j].seq
}
func (q commitQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *commitQueue) Push(x any)   { *q = append(*q, x.(queueItem)) }
func (q *commitQueue) Pop() any {
	old := *q
	it := old[len(old)-1]
	*q = old[:len(old)-1]
	return it
}

func cloneCommit(c commits.Commit) commits.Commit {
	c.Parents = append([]string(nil), c.Parents...)
	return c
}
