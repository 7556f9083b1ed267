package tracker_test

import (
	"testing"
	"time"

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
}
