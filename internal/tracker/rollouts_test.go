package tracker_test

import (
	"context"
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/flux"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

func TestRolloutStates(t *testing.T) {
	f := newFixture(t)
	c0 := f.commit(0, nil)
	f.baseline("app", c0)
	c1 := f.commit(100, nil)
	c2 := f.commit(200, nil)

	state := func() telemetry.RolloutState {
		t.Helper()
		states := f.trk.Rollouts()
		if len(states) != 1 {
			t.Fatalf("%d rollout states, want 1", len(states))
		}
		return states[0]
	}
	// The source fetched c2; the object is still at c0 and failing on c1 since 250s.
	d := dep("app", rev(c0), at(0))
	d.SourceRevision = rev(c2)
	d.AttemptedRevision, d.FailingSince = rev(c1), at(250)
	f.mustProcess(d, tracker.Unchanged)
	s := state()
	if !s.PendingSince.Equal(at(100)) || !s.FailingSince.Equal(at(250)) {
		t.Errorf("pending since %v, failing since %v; want %v (c1 committed), %v", s.PendingSince, s.FailingSince, at(100), at(250))
	}
	if s.Attributes.Repository != repoURL || s.Attributes.Name != "app" || s.Attributes.Cluster != clusterName {
		t.Errorf("gauge attributes %+v", s.Attributes)
	}

	// Caught up: both back to zero.
	d = dep("app", rev(c2), at(300))
	d.SourceRevision, d.AttemptedRevision = rev(c2), rev(c2)
	f.mustProcess(d, tracker.Recorded)
	if s := state(); !s.PendingSince.IsZero() || !s.FailingSince.IsZero() {
		t.Errorf("after catching up: pending since %v, failing since %v; want zero", s.PendingSince, s.FailingSince)
	}

	// The gauges report ages at collection time.
	now := at(400)
	if _, err := f.tel.Metrics.ObserveRollouts(f.trk.Rollouts, func() time.Time { return now }); err != nil {
		t.Fatal(err)
	}
	d.SourceRevision = rev(f.commit(350, nil))
	f.mustProcess(d, tracker.Unchanged)
	if got := f.tel.Gauge(t, telemetry.MetricPendingAge); got != 50 {
		t.Errorf("pending-commit-age = %v, want 50", got)
	}
	if err := f.trk.Forget(t.Context(), d.Kind, d.Namespace, d.Name); err != nil {
		t.Fatal(err)
	}
	if n := len(f.trk.Rollouts()); n != 0 {
		t.Errorf("%d rollout states after the object was deleted, want 0", n)
	}
	// Its series go too: the deleted object's recorded commit no longer shows.
	if got := f.metrics(); got[kRecorded] != 0 || got[kReconcileCount] != 0 {
		t.Errorf("series after the object was deleted: %v; want none of its samples", got)
	}
}

// countingLedger counts the writes that reach the ledger.
type countingLedger struct {
	ledger.Ledger
	swaps int
}

func (l *countingLedger) Swap(ctx context.Context, uid string, prev *ledger.Entry, next ledger.Entry) error {
	l.swaps++
	return l.Ledger.Swap(ctx, uid, prev, next)
}

// Events that change neither the revision nor the rollout state (a status message, a resync, a restart's
// initial list) make no provider call, no Secret read and no ledger write.
func TestUnchangedEventsCostNothing(t *testing.T) {
	led := &countingLedger{Ledger: ledger.NewMemory()}
	providerCalls := 0
	f := newFixture(t, withLedger(led), func(o *tracker.Options) {
		inner := o.Providers
		o.Providers = func(ctx context.Context, d flux.Deployment) (tracker.Source, error) {
			providerCalls++
			return inner(ctx, d)
		}
	})
	c0 := f.commit(0, nil)
	f.baseline("app", c0)
	c1 := f.commit(100, nil)
	calls, swaps := providerCalls, led.swaps

	// Up to date: nothing is pending, so no provider is needed at all.
	upToDate := dep("app", rev(c0), at(10))
	upToDate.SourceRevision = rev(c0)
	for range 3 {
		f.mustProcess(upToDate, tracker.Unchanged)
	}
	if providerCalls != calls || led.swaps != swaps {
		t.Errorf("up to date: %d provider calls, %d ledger writes; want 0, 0", providerCalls-calls, led.swaps-swaps)
	}
	f.wantRequests()

	// The source fetched c1: one range lookup for the gauge, then nothing while that stays so.
	pending := upToDate
	pending.SourceRevision = rev(c1)
	for range 3 {
		f.mustProcess(pending, tracker.Unchanged)
	}
	if providerCalls != calls+1 || led.swaps != swaps {
		t.Errorf("pending: %d provider calls, %d ledger writes; want 1, 0", providerCalls-calls, led.swaps-swaps)
	}
	f.wantRequests(comparePath(c0, c1))
	if s := f.trk.Rollouts(); len(s) != 1 || !s[0].PendingSince.Equal(at(100)) {
		t.Errorf("rollout states %+v, want one pending since %v", s, at(100))
	}
}
