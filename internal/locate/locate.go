// Package locate answers where a commit is: for each Flux object on a source of the commit's repository,
// whether the object applied it (and when), has it pending, fails on it, has not fetched it, or follows a branch
// that does not hold it.
package locate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/flux"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/redact"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/revision"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// State is where a commit is in one object.
type State string

const (
	Applied     State = "applied"       // the applied revision holds the commit
	Pending     State = "pending"       // the source fetched a revision holding it; the object has not applied it
	Failing     State = "failing"       // the object fails on a revision holding it
	NotFetched  State = "not-fetched"   // the tracked branch holds it; the source has not fetched it yet
	NotOnBranch State = "not-on-branch" // the tracked branch does not hold it
	Unknown     State = "unknown"       // the lookups failed: Error says why
)

// Commit is the commit asked about.
type Commit struct {
	SHA        string    `json:"sha"`
	Subject    string    `json:"subject"`
	Author     string    `json:"author"`
	Committed  time.Time `json:"committed"`
	Repository string    `json:"repository"`
}

// Placement is where a commit is in one object of one cluster.
type Placement struct {
	Context   string `json:"context"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	State     State  `json:"state"`
	// Revision is the object's applied revision.
	Revision string `json:"revision,omitempty"`
	// Applied is when the commit was applied; AppliedExact is false when it was applied at or before it (the
	// tracker's history does not reach back to the apply that first held it).
	Applied      *time.Time `json:"applied,omitempty"`
	AppliedExact bool       `json:"applied_exact,omitempty"`
	// LatencySeconds is commit → applied, for an applied commit with an exact time.
	LatencySeconds *float64 `json:"latency_seconds,omitempty"`
	// Since is when a pending commit was fetched, or when the object started failing on it.
	Since *time.Time `json:"since,omitempty"`
	// Message is Flux's message of a failing object.
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Locator places commits in objects with the tracker's commit providers.
type Locator struct {
	Sources    tracker.ProviderFor
	CommitTime commits.TimeSource
}

// ErrNotInRepository reports a commit the object's repository does not hold.
var ErrNotInRepository = errors.New("commit not in the repository")

// Commit looks ref (a SHA or, where the provider resolves them, a prefix) up in d's repository.
func (l Locator) Commit(ctx context.Context, d flux.Deployment, ref string) (Commit, error) {
	src, err := l.Sources(ctx, d)
	if err != nil {
		return Commit{}, err
	}
	sha := ref
	if r, ok := src.Provider.(commits.RefResolver); ok {
		if sha, err = r.Resolve(ctx, src.Repository, ref); err != nil {
			return Commit{}, notFound(err)
		}
	}
	c, err := src.Provider.Commit(ctx, src.Repository, sha)
	if err != nil {
		return Commit{}, notFound(err)
	}
	return l.commitOf(src, c), nil
}

// ErrNoPathHistory reports a repository whose provider cannot name the commit that last changed a path.
var ErrNoPathHistory = errors.New("the provider keeps no history of paths")

// LastChange looks up, in d's repository, the newest commit at or before rev (a full SHA) that changed path.
func (l Locator) LastChange(ctx context.Context, d flux.Deployment, rev, path string) (Commit, error) {
	src, err := l.Sources(ctx, d)
	if err != nil {
		return Commit{}, err
	}
	h, ok := src.Provider.(commits.PathHistory)
	if !ok {
		return Commit{}, ErrNoPathHistory
	}
	c, err := h.LastChange(ctx, src.Repository, rev, path)
	if err != nil {
		return Commit{}, notFound(err)
	}
	return l.commitOf(src, c), nil
}

func (l Locator) commitOf(src tracker.Source, c commits.Commit) Commit {
	subject, _, _ := strings.Cut(c.Message, "\n")
	return Commit{SHA: c.SHA, Subject: subject, Author: c.AuthorName, Committed: c.Time(l.CommitTime), Repository: redact.URL(src.Repository.String())}
}

func notFound(err error) error {
	if errors.Is(err, commits.ErrNotFound) {
		return fmt.Errorf("%w: %w", ErrNotInRepository, err)
	}
	return err
}

// Place says where c is in d; entry (nil without a tracker) gives the applies the tracker recorded.
func (l Locator) Place(ctx context.Context, clusterContext string, d flux.Deployment, entry *ledger.Entry, c Commit) Placement {
	p := Placement{Context: clusterContext, Kind: d.Kind, Namespace: d.Namespace, Name: d.Name, Revision: d.Revision}
	src, err := l.Sources(ctx, d)
	if err != nil {
		return p.failed(err)
	}
	holds := func(rev string) (bool, error) { return contains(ctx, src, rev, c.SHA) }
	if ok, err := holds(d.Revision); err != nil {
		return p.failed(err)
	} else if ok {
		p.State = Applied
		at, exact, err := appliedAt(d, entry, func(digest string) (bool, error) { return contains(ctx, src, digest, c.SHA) })
		if err != nil {
			return p.failed(err)
		}
		if !at.IsZero() {
			p.Applied, p.AppliedExact = &at, exact
			if exact {
				s := at.Sub(c.Committed).Seconds()
				p.LatencySeconds = &s
			}
		}
		return p
	}
	if !d.FailingSince.IsZero() {
		if ok, err := holds(d.AttemptedRevision); err != nil {
			return p.failed(err)
		} else if ok {
			p.State, p.Message = Failing, d.Message
			p.Since = ptr(d.FailingSince)
			return p
		}
	}
	if ok, err := holds(d.SourceRevision); err != nil {
		return p.failed(err)
	} else if ok {
		p.State = Pending
		if !d.SourceFetched.IsZero() {
			p.Since = ptr(d.SourceFetched)
		}
		return p
	}
	onBranch, err := l.onBranch(ctx, src, d, c)
	if err != nil {
		return p.failed(err)
	}
	if onBranch {
		p.State = NotFetched
	} else {
		p.State = NotOnBranch
	}
	return p
}

// onBranch reports whether the branch d's source follows holds c now; without a branch (a tag, a semver range)
// or a provider that resolves it, a commit made after the source's last fetch counts as not fetched yet.
func (l Locator) onBranch(ctx context.Context, src tracker.Source, d flux.Deployment, c Commit) (bool, error) {
	r, ok := src.Provider.(commits.RefResolver)
	if !ok || d.SourceRef.Branch == "" {
		return c.Committed.After(d.SourceFetched), nil
	}
	head, err := r.Resolve(ctx, src.Repository, d.SourceRef.Branch)
	if err != nil {
		return false, fmt.Errorf("branch %s: %w", d.SourceRef.Branch, err)
	}
	return contains(ctx, src, head, c.SHA)
}

// contains reports whether revision rev (as Flux writes it, or a bare digest) holds commit sha.
func contains(ctx context.Context, src tracker.Source, rev, sha string) (bool, error) {
	if rev == "" {
		return false, nil
	}
	digest := rev
	if r, err := revision.Parse(rev); err == nil {
		digest = r.Digest
	}
	if strings.EqualFold(digest, sha) {
		return true, nil
	}
	rng, err := src.Provider.Range(ctx, src.Repository, sha, digest)
	if errors.Is(err, commits.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return rng.Status == commits.Ahead || rng.Status == commits.Identical, nil
}

// appliedAt is when the commit was first applied in the current run of applies that hold it: the tracker's
// recorded apply after the newest one that did not hold it (exact), else at or before the oldest it kept, or
// Flux's apply time of the current revision.
func appliedAt(d flux.Deployment, entry *ledger.Entry, holds func(digest string) (bool, error)) (time.Time, bool, error) {
	if entry == nil || len(entry.Applies) == 0 {
		return d.Applied, false, nil
	}
	applies := entry.Applies
	first := len(applies)
	for i := len(applies) - 1; i >= 0; i-- {
		ok, err := holds(applies[i].Digest)
		if err != nil {
			return time.Time{}, false, err
		}
		if !ok {
			break
		}
		first = i
	}
	switch {
	case first == len(applies):
		// The tracker has not recorded the current revision yet.
		return d.Applied, false, nil
	case first == 0:
		return applies[0].At, false, nil
	}
	return applies[first].At, true, nil
}

func (p Placement) failed(err error) Placement {
	p.State, p.Error = Unknown, redact.Error(err).Error()
	return p
}

func ptr[T any](v T) *T { return &v }
