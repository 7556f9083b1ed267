// Package feedback tells each repository's forge where its commits stand in the cluster: a commit status on
// every delivered commit (aggregated over the tracked objects on that repository, or one per object) and a
// GitHub Deployment per applied revision.
//
// What an apply recorded reaches it from the ledger's outbox (Notifier, Send), so a crash neither loses nor
// repeats it; pending and failing states come from the tracker's rollouts (ObserveRollout) and are seen again
// after a restart. Nothing is posted twice: the forge's own latest status is read before a context's first post
// in a process, and every post after it is compared with the last one.
package feedback

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/forge"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/revision"
)

// objectKey names a Flux object.
type objectKey struct{ Kind, Namespace, Name string }

func (k objectKey) String() string { return k.Kind + " " + k.Namespace + "/" + k.Name }

// object is what the rollouts say of one tracked object.
type object struct {
	key     objectKey
	repo    string // repoKey of its repository
	applied string // digest of the applied revision
	source  string // digest of the revision its source fetched
	// pending are the commits in (applied, source], oldest first; pendingKnown is false when they were not listed.
	pending      []string
	pendingKnown bool
	failing      bool
	attempted    string // digest of the revision it fails on
	// noticeBy is set when a rollout showed it applying a new revision before that apply's notice came: until
	// then the commits the revision holds wait for the notice, which brings their times, rather than show twice.
	noticeBy time.Time
}

// pendingState is pending or failing for a commit in o.pending: failing up to the attempted revision.
func (o *object) pendingState(sha string) (state, bool) {
	i := slices.Index(o.pending, sha)
	if i < 0 {
		return stateUnknown, false
	}
	if !o.failing {
		return statePending, true
	}
	if a := slices.Index(o.pending, o.attempted); a >= 0 && i > a {
		return statePending, true // newer than the failing revision: not attempted yet
	}
	return stateFailing, true
}

// state of a commit in one object.
type state int

const (
	stateUnknown state = iota // the object's source has not fetched it, or cannot be told
	statePending
	stateFailing
	stateApplied
	// stateAwaiting is applied, as the object's rollout says, with the apply's notice still due (noticeBy).
	stateAwaiting
)

// appliedAt is when one object's source fetched and the object applied a commit.
type appliedAt struct{ fetched, applied time.Time }

// commitState is what is known of one commit in one repository.
type commitState struct {
	repo      string
	sha       string
	committed time.Time
	// in are the revisions (digests) known to contain the commit: an object up to date with one has applied it.
	in      map[string]bool
	applied map[objectKey]appliedAt
	// waitedOn are the objects a rollout showed waiting on the commit: they count for it until known to have
	// applied it, whatever revision they are seen at before their apply's notice comes.
	waitedOn map[objectKey]bool
	// heads holds, when the commit heads a revision, the commits that revision delivered (for its deployment).
	heads   []string
	touched time.Time
}

// repository is one forge repository and how to reach it.
type repository struct {
	repo  commits.Repository
	forge string // the forge annotation's value
}

// repoKey identifies a repository alike from every object: its host and path.
func repoKey(r commits.Repository) string {
	if r.Owner != "" {
		return strings.ToLower(r.Host + "/" + r.Owner + "/" + r.Name)
	}
	return strings.ToLower(r.String())
}

// objectState is commit c's state in object o at now (see state); at holds its times when it is known applied.
func objectState(o *object, c *commitState, now time.Time) (state, appliedAt) {
	if o.repo != c.repo {
		return stateUnknown, appliedAt{}
	}
	if s, ok := o.pendingState(c.sha); ok {
		return s, appliedAt{}
	}
	if at, ok := c.applied[o.key]; ok {
		return stateApplied, at
	}
	if o.pendingKnown && (c.in[o.source] || c.in[o.applied]) {
		// Its source holds a revision containing the commit, and the commit does not wait: it is applied.
		if now.Before(o.noticeBy) {
			return stateAwaiting, appliedAt{}
		}
		return stateApplied, appliedAt{}
	}
	if !o.pendingKnown && o.source != o.applied && c.in[o.source] && !c.in[o.applied] {
		// Its source fetched a revision containing the commit, which its pending commits, not listed, would hold.
		if o.failing && c.in[o.attempted] {
			return stateFailing, appliedAt{}
		}
		return statePending, appliedAt{}
	}
	if c.waitedOn[o.key] {
		// It waited on the commit and is at a revision not known to hold it: not applied, as far as is known.
		if o.failing && c.in[o.attempted] {
			return stateFailing, appliedAt{}
		}
		return statePending, appliedAt{}
	}
	return stateUnknown, appliedAt{}
}

// tally is a commit's state over several objects.
type tally struct {
	objects                 int
	applied, pending        int
	failing                 []objectKey
	lastApplied, firstFetch time.Time
	committed               time.Time
	scopeObject             bool // one object's context: the description names no counts
}

func (t *tally) add(o *object, s state, at appliedAt) {
	t.objects++
	switch s {
	case stateApplied:
		t.applied++
		if at.applied.After(t.lastApplied) {
			t.lastApplied = at.applied
		}
		if !at.fetched.IsZero() && (t.firstFetch.IsZero() || at.fetched.Before(t.firstFetch)) {
			t.firstFetch = at.fetched
		}
	case statePending:
		t.pending++
	case stateFailing:
		t.failing = append(t.failing, o.key)
	}
}

// status is the commit status the tally stands for.
func (t *tally) status() (forge.State, string) {
	switch {
	case len(t.failing) > 0:
		slices.SortFunc(t.failing, func(a, b objectKey) int { return strings.Compare(a.String(), b.String()) })
		if t.scopeObject {
			return forge.StateFailure, "failing: its apply fails (see the object's Ready condition)"
		}
		return forge.StateFailure, cut(fmt.Sprintf("failing on %d/%d: %s", len(t.failing), t.objects, t.failing[0]))
	case t.applied == t.objects:
		took := ""
		if !t.lastApplied.IsZero() && !t.committed.IsZero() && !t.lastApplied.Before(t.committed) {
			took = " in " + latency.Human(t.lastApplied.Sub(t.committed))
			if !t.firstFetch.IsZero() && !t.firstFetch.Before(t.committed) {
				took += " (fetch " + latency.Human(t.firstFetch.Sub(t.committed)) + ")"
			}
		}
		if t.scopeObject {
			return forge.StateSuccess, "applied" + took
		}
		return forge.StateSuccess, fmt.Sprintf("applied on %d/%d%s", t.applied, t.objects, took)
	case t.scopeObject:
		return forge.StatePending, "fetched, not applied yet"
	default:
		return forge.StatePending, fmt.Sprintf("applied on %d/%d, %d pending", t.applied, t.objects, t.pending)
	}
}

// cut keeps a description within what forges accept.
func cut(s string) string {
	r := []rune(s)
	if len(r) <= forge.MaxDescription {
		return s
	}
	return string(r[:forge.MaxDescription-1]) + "…"
}

// digestOf is a revision's digest, empty when it does not parse.
func digestOf(rev string) string {
	r, err := revision.Parse(rev)
	if err != nil {
		return ""
	}
	return r.Digest
}
