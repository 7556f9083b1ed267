package tracker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/flux"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/redact"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/revision"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
)

// rollouts holds each object's stuck-rollout state for the gauges.
type rollouts struct {
	mu     sync.Mutex
	states map[string]rollout // by kind/namespace/name
}

// rollout is one object's gauge state and what it was computed from.
type rollout struct {
	state  telemetry.RolloutState
	inputs rolloutInputs
	// pending are the commits waiting, as far as they are known, for a stuck notice.
	pending []latency.DeliveredCommit
}

// rolloutInputs are the facts of a Deployment the gauge state depends on; while they stay the same, so does the state.
type rolloutInputs struct {
	revision, sourceRevision, repository, override, provider string
	failingSince, sourceFetched                              time.Time
}

func inputsOf(d flux.Deployment) rolloutInputs {
	return rolloutInputs{revision: d.Revision, sourceRevision: d.SourceRevision, repository: d.RepositoryURL,
		override: d.RepositoryOverride, provider: d.Provider, failingSince: d.FailingSince, sourceFetched: d.SourceFetched}
}

func (a rolloutInputs) equal(b rolloutInputs) bool {
	return a.revision == b.revision && a.sourceRevision == b.sourceRevision && a.repository == b.repository &&
		a.override == b.override && a.provider == b.provider && a.failingSince.Equal(b.failingSince) &&
		a.sourceFetched.Equal(b.sourceFetched)
}

// Rollouts returns every watched object's stuck-rollout state, for the pending-commit-age and
// failing-revision-age gauges.
func (t *Tracker) Rollouts() []telemetry.RolloutState {
	t.rollouts.mu.Lock()
	defer t.rollouts.mu.Unlock()
	out := make([]telemetry.RolloutState, 0, len(t.rollouts.states))
	for _, r := range t.rollouts.states {
		out = append(out, r.state)
	}
	return out
}

// observeRollout updates d's stuck-rollout state: failing since Flux's Ready=False transition on an unapplied
// attempt; pending since the oldest commit the source has fetched beyond the applied revision. An event that
// changes none of the inputs costs nothing, and only a pending rollout needs a provider. When that provider's
// slots are full, the fetch time stands in for the oldest commit's and retry says when to look again.
func (t *Tracker) observeRollout(ctx context.Context, d flux.Deployment, attrs telemetry.ObjectAttributes, log *slog.Logger) (retry time.Duration) {
	key, in := rolloutKey(d.Kind, d.Namespace, d.Name), inputsOf(d)
	t.rollouts.mu.Lock()
	prev, known := t.rollouts.states[key]
	t.rollouts.mu.Unlock()
	if known && prev.inputs.equal(in) {
		return 0
	}
	state := telemetry.RolloutState{Attributes: attrs, FailingSince: d.FailingSince}
	if known && prev.inputs.repository == in.repository && prev.inputs.override == in.override && prev.inputs.provider == in.provider {
		state.Attributes.Repository = prev.state.Attributes.Repository
	}
	seen := Rollout{Object: attrs, UID: d.UID, Forge: d.Forge, FailingSince: d.FailingSince, SourceFetched: d.SourceFetched}
	seen.Repository, _ = RepositoryOf(d)
	if applied, source, pending := pendingRange(d); pending {
		seen.Applied, seen.Source = applied.Digest, source.Digest
		if src, err := t.opts.Providers(ctx, d); err == nil {
			state.Attributes.Repository = redact.URL(src.Repository.String())
			if release, busy := t.slots.acquire(ctx, src.Kind); busy != nil {
				state.PendingSince = d.SourceFetched
				retry, _ = commits.RetryAfter(busy, t.opts.Clock.Now())
				in = rolloutInputs{} // matches no event: the next one looks the commits up
			} else {
				var cs []commits.Commit
				state.PendingSince, cs, seen.PendingKnown = t.pendingSince(ctx, d, src, applied, source, log)
				seen.Pending = t.pendingCommits(cs)
				release()
			}
		}
	} else if applied, err := revision.Parse(d.Revision); err == nil {
		// Up to date with its source: nothing waits.
		seen.Applied, seen.Source, seen.PendingKnown = applied.Digest, applied.Digest, true
	}
	if attempted, err := revision.Parse(d.AttemptedRevision); err == nil && !d.FailingSince.IsZero() {
		seen.Attempted = attempted.Digest
	}
	t.rollouts.mu.Lock()
	if t.rollouts.states == nil {
		t.rollouts.states = map[string]rollout{}
	}
	t.rollouts.states[key] = rollout{state: state, inputs: in, pending: seen.Pending}
	t.rollouts.mu.Unlock()
	if t.opts.Rollouts != nil {
		t.opts.Rollouts.ObserveRollout(ctx, seen)
	}
	return retry
}

// Rollout is what the tracker knows of an object's next revision, handed to Options.Rollouts when it changes.
type Rollout struct {
	Object telemetry.ObjectAttributes
	UID    string
	// Repository is the source's repository (see RepositoryOf), zero when it is not known; Forge is the forge
	// annotation's value.
	Repository commits.Repository
	Forge      string
	// Applied and Source are the digests of the applied revision and of the one the source fetched; empty when
	// the object has applied nothing yet.
	Applied, Source string
	// Pending are the commits in (Applied, Source], oldest first; PendingKnown is false when they could not be
	// listed (a busy or failing provider).
	Pending      []latency.DeliveredCommit
	PendingKnown bool
	// FailingSince is set while the object fails on Attempted, a revision it has not applied.
	FailingSince  time.Time
	Attempted     string
	SourceFetched time.Time
}

// RolloutObserver follows every object's rollouts, for feedback outside the cluster (commit statuses).
type RolloutObserver interface {
	ObserveRollout(ctx context.Context, r Rollout)
	// ForgetRollout drops a deleted object.
	ForgetRollout(ctx context.Context, kind, namespace, name string)
}

// pendingCommits turns listed commits into their SHAs and commit times.
func (t *Tracker) pendingCommits(cs []commits.Commit) []latency.DeliveredCommit {
	out := make([]latency.DeliveredCommit, 0, len(cs))
	for _, c := range cs {
		out = append(out, latency.DeliveredCommit{SHA: c.SHA, Committed: c.Time(t.opts.CommitTime)})
	}
	return out
}

// pendingRange returns the applied and fetched revisions when the source has fetched one the object has not applied.
func pendingRange(d flux.Deployment) (applied, source revision.Revision, pending bool) {
	applied, errA := revision.Parse(d.Revision)
	source, errS := revision.Parse(d.SourceRevision)
	return applied, source, errA == nil && errS == nil && !applied.Equal(source)
}

func rolloutKey(kind, namespace, name string) string { return kind + "/" + namespace + "/" + name }

// pendingSince is the commit time of the oldest commit in (applied, source], or the source's fetch time when the
// commits cannot be listed (listed false); it returns the commits too.
func (t *Tracker) pendingSince(ctx context.Context, d flux.Deployment, src Source, applied, source revision.Revision, log *slog.Logger) (time.Time, []commits.Commit, bool) {
	rng, err := src.Provider.Range(ctx, src.Repository, applied.Digest, source.Digest)
	if err == nil {
		if rng.Status != commits.Ahead || len(rng.Commits) == 0 {
			return time.Time{}, nil, true // the source moved back or sideways: nothing new waits to be applied
		}
		return rng.Commits[0].Time(t.opts.CommitTime), rng.Commits, true
	}
	log.DebugContext(ctx, "pending commits not listed: using the source's fetch time", "source_revision", d.SourceRevision, "error", err)
	return d.SourceFetched, nil, false
}

// forgetObject drops a deleted object's gauge state and its series.
func (t *Tracker) forgetObject(ctx context.Context, kind, namespace, name string) {
	t.rollouts.mu.Lock()
	delete(t.rollouts.states, rolloutKey(kind, namespace, name))
	t.rollouts.mu.Unlock()
	t.opts.Recorder.ForgetObject(ctx, telemetry.ObjectAttributes{Cluster: t.opts.ClusterName, Namespace: namespace, Kind: kind, Name: name})
	if t.opts.Rollouts != nil {
		t.opts.Rollouts.ForgetRollout(ctx, kind, namespace, name)
	}
}
