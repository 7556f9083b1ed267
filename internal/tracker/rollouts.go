package tracker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/flux"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/revision"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
)

// rollouts holds each object's stuck-rollout state for the gauges.
type rollouts struct {
	mu     sync.Mutex
	states map[string]telemetry.RolloutState // by kind/namespace/name
}

// Rollouts returns every watched object's stuck-rollout state, for the pending-commit-age and
// failing-revision-age gauges.
func (t *Tracker) Rollouts() []telemetry.RolloutState {
	t.rollouts.mu.Lock()
	defer t.rollouts.mu.Unlock()
	out := make([]telemetry.RolloutState, 0, len(t.rollouts.states))
	for _, s := range t.rollouts.states {
		out = append(out, s)
	}
	return out
}

// observeRollout updates d's stuck-rollout state: failing since Flux's Ready=False transition on an unapplied
// attempt; pending since the oldest commit the source has fetched beyond the applied revision.
func (t *Tracker) observeRollout(ctx context.Context, d flux.Deployment, attrs telemetry.ObjectAttributes, log *slog.Logger) {
	src, srcErr := t.opts.Providers(ctx, d)
	if srcErr == nil {
		attrs.Repository = src.Repository.String()
	}
	state := telemetry.RolloutState{Attributes: attrs, FailingSince: d.FailingSince}
	if srcErr == nil {
		state.PendingSince = t.pendingSince(ctx, d, src, log)
	}
	t.rollouts.mu.Lock()
	defer t.rollouts.mu.Unlock()
	if t.rollouts.states == nil {
		t.rollouts.states = map[string]telemetry.RolloutState{}
	}
	t.rollouts.states[rolloutKey(d.Kind, d.Namespace, d.Name)] = state
}

func rolloutKey(kind, namespace, name string) string { return kind + "/" + namespace + "/" + name }

// pendingSince is the commit time of the oldest commit in (applied, source revision], or the source's fetch time
// when the commits cannot be listed; zero when the object has applied what the source has.
func (t *Tracker) pendingSince(ctx context.Context, d flux.Deployment, src Source, log *slog.Logger) time.Time {
	applied, errA := revision.Parse(d.Revision)
	source, errS := revision.Parse(d.SourceRevision)
	if errA != nil || errS != nil || applied.Equal(source) {
		return time.Time{}
	}
	rng, err := src.Provider.Range(ctx, src.Repository, applied.Digest, source.Digest)
	if err == nil {
		if rng.Status != commits.Ahead || len(rng.Commits) == 0 {
			return time.Time{} // the source moved back or sideways: nothing new waits to be applied
		}
		return rng.Commits[0].Time(t.opts.CommitTime)
	}
	log.DebugContext(ctx, "pending commits not listed: using the source's fetch time", "source_revision", d.SourceRevision, "error", err)
	return d.SourceFetched
}

// forgetRollout drops a deleted object's state.
func (t *Tracker) forgetRollout(kind, namespace, name string) {
	t.rollouts.mu.Lock()
	defer t.rollouts.mu.Unlock()
	delete(t.rollouts.states, rolloutKey(kind, namespace, name))
}
