package tracker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// stuckNotifier notes each stuck and recovered event: the event, the revision and the commits; landed applies
// make no notice.
type stuckNotifier struct{}

func (stuckNotifier) Name() string                                         { return "test" }
func (stuckNotifier) Notice(tracker.Record) (json.RawMessage, bool, error) { return nil, false, nil }

func (stuckNotifier) StuckNotice(s tracker.Stuck) (json.RawMessage, bool, error) {
	shas := []string{}
	for _, c := range s.Commits {
		shas = append(shas, c.SHA[:7])
	}
	body, err := json.Marshal(fmt.Sprintf("%s %s failing=%v since=%d commits=%v", s.Event, s.Revision, s.Failing, int(s.Since.Sub(t0).Seconds()), shas))
	return body, true, err
}

const stuckAfter = 15 * time.Minute

// stuckFixture is a fixture whose tracker announces objects stuck for stuckAfter, queuing in led.
func stuckFixture(t *testing.T, led ledger.Outbox) *fixture {
	return newFixture(t, withLedger(led), func(o *tracker.Options) {
		o.Notifiers, o.StuckAfter = []tracker.Notifier{stuckNotifier{}}, stuckAfter
	})
}

// notices returns the queued notices' bodies, oldest first.
func notices(led ledger.Outbox) []string {
	var out []string
	for _, it := range led.Pending() {
		var s string
		_ = json.Unmarshal(it.Body, &s)
		out = append(out, s)
	}
	return out
}

func wantNotices(t *testing.T, led ledger.Outbox, want ...string) {
	t.Helper()
	if got := notices(led); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("notices %q, want %q", got, want)
	}
}

// An object failing on a fetched revision is announced stuck once it has failed for stuckAfter, once, whatever
// the events and processes; its fix is announced recovered, once, with the commits it delivered.
func TestStuckThenRecoveredAnnouncedOnceAcrossProcesses(t *testing.T) {
	shared := ledger.NewMemory()
	f := stuckFixture(t, shared)
	c0 := f.commit(0, nil)
	f.baseline("app", c0)
	c1 := f.commit(100, nil)
	// A second process that loaded the ledger now, before anything was announced.
	twoLedger := &staleLedger{Memory: ledger.NewMemory(), shared: shared}
	if err := ledger.Put(context.Background(), twoLedger.Memory, "uid-app", mustGet(t, shared)); err != nil {
		t.Fatal(err)
	}
	two := f.otherProcess(twoLedger)

	failing := dep("app", rev(c0), at(0))
	failing.SourceRevision, failing.AttemptedRevision, failing.FailingSince = rev(c1), rev(c1), at(1000)
	f.clock.SetTime(at(1000).Add(5 * time.Minute))
	res := f.mustProcess(failing, tracker.Unchanged)
	if res.RetryAfter != 10*time.Minute {
		t.Errorf("failing for 5m: retry after %s, want 10m (when it would be stuck)", res.RetryAfter)
	}
	wantNotices(t, shared)

	f.clock.SetTime(at(1000).Add(stuckAfter))
	f.mustProcess(failing, tracker.Unchanged)
	want := fmt.Sprintf("stuck %s failing=true since=1000 commits=[%s]", rev(c1), c1[:7])
	wantNotices(t, shared, want)
	// Again, and from the other process deciding from the entry it loaded: nothing more.
	f.mustProcess(failing, tracker.Unchanged)
	if res, err := two.Process(context.Background(), failing); err != nil || res.Outcome != tracker.Unchanged {
		t.Fatalf("second process = %q, %v", res.Outcome, err)
	}
	wantNotices(t, shared, want)
	if e := mustGet(t, shared); e.Stuck != rev(c1) || !e.StuckSince.Equal(at(1000)) {
		t.Errorf("ledger entry stuck on %q since %v, want %s since %v", e.Stuck, e.StuckSince, rev(c1), at(1000))
	}

	// The fix lands: recovered, with the commits its apply delivered, once across both processes.
	c2 := f.commit(2000, nil)
	fixed := dep("app", rev(c2), at(2100))
	fixed.SourceRevision, fixed.AttemptedRevision = rev(c2), rev(c2)
	f.clock.SetTime(at(2200))
	f.mustProcess(fixed, tracker.Recorded)
	if res, err := two.Process(context.Background(), fixed); err != nil || res.Outcome != tracker.Unchanged {
		t.Fatalf("second process after the fix = %q, %v", res.Outcome, err)
	}
	f.mustProcess(fixed, tracker.Unchanged)
	wantNotices(t, shared, want, fmt.Sprintf("recovered %s failing=false since=1000 commits=[%s %s]", rev(c1), c1[:7], c2[:7]))
	if e := mustGet(t, shared); e.Stuck != "" || !e.StuckSince.IsZero() {
		t.Errorf("after recovery the entry is still stuck on %q since %v", e.Stuck, e.StuckSince)
	}
}

// A failure shorter than stuckAfter, and a pending revision applied in time, send nothing.
func TestShortFailuresSendNothing(t *testing.T) {
	led := ledger.NewMemory()
	f := stuckFixture(t, led)
	c0 := f.commit(0, nil)
	f.baseline("app", c0)
	c1 := f.commit(1000, nil)
	pending := dep("app", rev(c0), at(0))
	pending.SourceRevision = rev(c1)
	f.clock.SetTime(at(1000).Add(10 * time.Minute))
	if res := f.mustProcess(pending, tracker.Unchanged); res.RetryAfter != 5*time.Minute {
		t.Errorf("pending for 10m: retry after %s, want 5m", res.RetryAfter)
	}
	failing := pending
	failing.AttemptedRevision, failing.FailingSince = rev(c1), at(1000).Add(12*time.Minute)
	f.clock.SetTime(at(1000).Add(14 * time.Minute))
	f.mustProcess(failing, tracker.Unchanged)
	applied := dep("app", rev(c1), at(1000).Add(14*time.Minute))
	applied.SourceRevision, applied.AttemptedRevision = rev(c1), rev(c1)
	f.mustProcess(applied, tracker.Recorded)
	f.clock.SetTime(at(1000).Add(time.Hour))
	f.mustProcess(applied, tracker.Unchanged)
	wantNotices(t, led)
}

// A revision waiting long, though not failing, is stuck from its oldest commit's time or the last apply,
// whichever is later; when the source goes back to the applied revision, the episode ends as recovered.
func TestPendingRevisionStuckThenSourceGoesBack(t *testing.T) {
	led := ledger.NewMemory()
	f := stuckFixture(t, led)
	c0 := f.commit(0, nil)
	f.baseline("app", c0)
	c1 := f.commit(100, nil)
	// Applied at 900, after c1 was made: the wait starts at the apply, not at c1's commit time.
	pending := dep("app", rev(c0), at(900))
	pending.SourceRevision = rev(c1)
	f.clock.SetTime(at(900).Add(stuckAfter - time.Second))
	f.mustProcess(pending, tracker.Unchanged)
	wantNotices(t, led)
	f.clock.SetTime(at(900).Add(stuckAfter))
	f.mustProcess(pending, tracker.Unchanged)
	stuck := fmt.Sprintf("stuck %s failing=false since=900 commits=[%s]", rev(c1), c1[:7])
	wantNotices(t, led, stuck)

	back := pending
	back.SourceRevision = rev(c0)
	f.clock.Step(time.Minute)
	f.mustProcess(back, tracker.Unchanged)
	f.mustProcess(back, tracker.Unchanged)
	wantNotices(t, led, stuck, fmt.Sprintf("recovered %s failing=false since=900 commits=[]", rev(c1)))
}
