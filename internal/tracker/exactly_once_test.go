package tracker_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// Rollback, then roll-forward to the same revision: A (baseline) → C records B and C → A → C records nothing.
func TestRollbackThenRollForwardRecordsNothingTwice(t *testing.T) {
	f := newFixture(t)
	a := f.commit(0, nil)
	f.baseline("app", a)
	b := f.commit(100, nil)
	c := f.commit(200, nil)

	res := f.mustProcess(dep("app", rev(c), at(250)), tracker.Recorded)
	wantCommits(t, res.Commits, b, c)
	f.mustProcess(dep("app", rev(a), at(300)), tracker.NotRecorded)
	res = f.mustProcess(dep("app", rev(c), at(400)), tracker.Unchanged)
	if len(res.Commits) != 0 {
		t.Fatalf("roll-forward recorded %d commits again", len(res.Commits))
	}
	// A tag pin to B and unpin back to C is the same story.
	f.mustProcess(dep("app", rev(b), at(500)), tracker.NotRecorded)
	f.mustProcess(dep("app", rev(c), at(600)), tracker.Unchanged)
	// Past the mark, only the new commit counts, measured against its own apply.
	d := f.commit(700, nil)
	res = f.mustProcess(dep("app", rev(d), at(760)), tracker.Recorded)
	wantCommits(t, res.Commits, d)
	wantSamples(t, res.Samples, plain(d, at(700), at(760))...)
	f.wantMetrics(map[string]float64{
		kRecorded: 3, kReconcileCount: 3, kReconcileSum: 150 + 50 + 60, kE2ECount: 3, kE2ESum: 150 + 50 + 60,
		kNotRecorded(string(commits.Behind)): 2, kGitHubOK: 4,
	})
}

// staleLedger is one process's view of a ledger shared with another: it decides from what it loaded, and its
// writes are checked against the shared store, as the ConfigMaps ledger's resourceVersion checks them.
type staleLedger struct {
	*ledger.Memory
	shared *ledger.Memory
}

func (l *staleLedger) Swap(ctx context.Context, uid string, prev *ledger.Entry, next ledger.Entry) error {
	return l.SwapQueue(ctx, uid, prev, next, nil)
}

// SwapQueue queues items in the shared store, with the write they belong to.
func (l *staleLedger) SwapQueue(ctx context.Context, uid string, prev *ledger.Entry, next ledger.Entry, items []ledger.Item) error {
	if err := l.shared.SwapQueue(ctx, uid, prev, next, items); err != nil {
		if e, ok := l.shared.Get(uid); ok {
			_ = ledger.Put(ctx, l.Memory, uid, e) // refresh memory, as a re-read of the shard does
		}
		return err
	}
	return ledger.Put(ctx, l.Memory, uid, next)
}

func TestTwoWritersRecordEachCommitOnce(t *testing.T) {
	shared := ledger.NewMemory()
	f := newFixture(t, withLedger(&staleLedger{Memory: ledger.NewMemory(), shared: shared}))
	c0 := f.commit(0, nil)
	f.baseline("app", c0)
	c1, c2 := f.commit(100, nil), f.commit(200, nil)
	// The second process loaded the ledger before the first moved it; both report to one set of metrics.
	twoLedger := &staleLedger{Memory: ledger.NewMemory(), shared: shared}
	if err := ledger.Put(context.Background(), twoLedger.Memory, "uid-app", mustGet(t, shared)); err != nil {
		t.Fatal(err)
	}
	two := f.otherProcess(twoLedger)

	d := dep("app", rev(c2), at(250))
	res := f.mustProcess(d, tracker.Recorded)
	wantCommits(t, res.Commits, c1, c2)
	// The second writer decided from c0: its write is refused, it decides again from c2 and records nothing.
	res, err := two.Process(context.Background(), d)
	if err != nil || res.Outcome != tracker.Unchanged || len(res.Commits) != 0 {
		t.Fatalf("second writer = %q, %d commits, %v; want unchanged, none", res.Outcome, len(res.Commits), err)
	}
	if e, _ := shared.Get("uid-app"); e.Revision != rev(c2) {
		t.Errorf("shared ledger at %s, want %s", e.Revision, rev(c2))
	}
	f.wantMetrics(map[string]float64{kRecorded: 2, kReconcileCount: 2, kReconcileSum: 150 + 50, kE2ECount: 2, kE2ESum: 200,
		kGitHubOK: 1, kGitHubCacheHit: 1})
}

// mustGet returns the entry of the object app.
func mustGet(t *testing.T, l ledger.Ledger) ledger.Entry {
	t.Helper()
	e, ok := l.Get("uid-app")
	if !ok {
		t.Fatal("no ledger entry for app")
	}
	return e
}

func TestRateLimitRequeuesWithoutWaitingAndRecordsFluxTimeLater(t *testing.T) {
	f := newFixture(t)
	c0 := f.commit(0, nil)
	f.baseline("app", c0)
	c1 := f.commit(100, nil)
	d := dep("app", rev(c1), at(130))

	f.srv.RateLimitNext(http.StatusTooManyRequests, 3600*time.Second)
	start := time.Now()
	res, err := f.process(d)
	wait, limited := commits.RetryAfter(err, time.Now())
	if !limited || res.Outcome != tracker.Failed || errors.Is(err, tracker.ErrPermanent) {
		t.Fatalf("Process while rate limited = %q, %v; want failed with a RateLimitError", res.Outcome, err)
	}
	if wait < 3500*time.Second {
		t.Errorf("retry after %s, want about the hour Retry-After says", wait)
	}
	if elapsed := time.Since(start); elapsed > time.Minute {
		t.Errorf("Process waited %s inside the worker", elapsed)
	}
	f.wantMetrics(map[string]float64{kErr(telemetry.ReasonRateLimited): 1, kGitHubError: 1})
	// Nothing is sent before Retry-After: the next attempt is turned away locally.
	f.srv.ClearRequests()
	if _, err := f.process(d); err == nil {
		t.Fatal("second Process inside the limit succeeded")
	}
	f.wantRequests()
}

// blockingProvider never answers until released; it stands for a GitHub that hangs.
type blockingProvider struct {
	commits.Provider
	entered chan struct{}
	release chan struct{}
}

func (p *blockingProvider) Range(ctx context.Context, repo commits.Repository, base, head string) (commits.Range, error) {
	p.entered <- struct{}{}
	select {
	case <-p.release:
	case <-ctx.Done():
		return commits.Range{}, ctx.Err()
	}
	return p.Provider.Range(ctx, repo, base, head)
}

// oneSlotTracker is the fixture's tracker on led and the GitHub provider gh, with one provider slot and waiters
// applies allowed to wait for it.
func (f *fixture) oneSlotTracker(led ledger.Ledger, gh commits.Provider, waiters int) *tracker.Tracker {
	f.tb.Helper()
	trk, err := tracker.New(tracker.Options{
		Ledger: led, Providers: tracker.Providers{GitHub: gh, GitHubHosts: []string{"github.com"}}.For,
		Recorder: f.tel.Metrics, Tracer: f.tel.TracerProvider.Tracer(telemetry.ScopeName), Logger: f.tel.Logger,
		Clock: f.clock, ClusterName: clusterName, ProviderSlots: 1, ProviderWaiters: waiters,
	})
	if err != nil {
		f.tb.Fatal(err)
	}
	return trk
}

// slotHeldByA baselines a, b and c at c0 and has a process c1 on a tracker with one provider slot (and waiters
// applies allowed to wait for it), its range lookup
// held by slow until slow.release closes; done receives a's result.
func slotHeldByA(t *testing.T, waiters int) (f *fixture, trk *tracker.Tracker, slow *blockingProvider, done chan error, c0, c1 string) {
	t.Helper()
	f = newFixture(t)
	c0 = f.commit(0, nil)
	for _, name := range []string{"a", "b", "c"} {
		f.baseline(name, c0)
	}
	c1 = f.commit(100, nil)
	slow = &blockingProvider{Provider: f.gh, entered: make(chan struct{}, 2), release: make(chan struct{})}
	trk = f.oneSlotTracker(f.led, slow, waiters)
	done = make(chan error, 1)
	go func() { _, err := trk.Process(context.Background(), dep("a", rev(c1), at(130))); done <- err }()
	<-slow.entered
	return f, trk, slow, done, c0, c1
}

func TestBusyProviderTurnsObjectsAwayWithoutWaiting(t *testing.T) {
	f, trk, slow, done, _, c1 := slotHeldByA(t, 0)
	// The one GitHub slot is held: b is turned away at once with a short requeue.
	_, err := trk.Process(context.Background(), dep("b", rev(c1), at(130)))
	if wait, limited := commits.RetryAfter(err, f.clock.Now()); !limited || wait <= 0 || wait > time.Minute {
		t.Fatalf("Process with the provider busy = %v; want a short requeue", err)
	}
	close(slow.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	res, err := trk.Process(context.Background(), dep("b", rev(c1), at(130)))
	if err != nil || res.Outcome != tracker.Recorded {
		t.Fatalf("b once the slot is free = %q, %v; want recorded", res.Outcome, err)
	}
}

// With room for one waiter, one of b and c waits for the slot a holds and records once a's lookup answers; the
// other, past the waiters, is turned away at once.
func TestBusyProviderLetsAFewApplyWait(t *testing.T) {
	f, trk, slow, done, _, c1 := slotHeldByA(t, 1)
	type outcome struct {
		name string
		res  tracker.Result
		err  error
	}
	results := make(chan outcome, 2)
	for _, name := range []string{"b", "c"} {
		go func() {
			res, err := trk.Process(context.Background(), dep(name, rev(c1), at(130)))
			results <- outcome{name, res, err}
		}()
	}
	first := <-results
	if _, limited := commits.RetryAfter(first.err, f.clock.Now()); !limited {
		t.Fatalf("%s with the slot held = %q, %v; want a short requeue for the one past the waiter", first.name, first.res.Outcome, first.err)
	}
	select {
	case o := <-results:
		t.Fatalf("%s returned while the slot was held: %q, %v; want it waiting", o.name, o.res.Outcome, o.err)
	default:
	}
	close(slow.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if o := <-results; o.err != nil || o.res.Outcome != tracker.Recorded {
		t.Fatalf("%s after waiting = %q, %v; want recorded", o.name, o.res.Outcome, o.err)
	}
}

// blockingLedger holds every write until released, as a shard write waits its turn under the client rate limit.
type blockingLedger struct {
	ledger.Ledger
	entered chan string
	release chan struct{}
}

func (l *blockingLedger) Swap(ctx context.Context, uid string, prev *ledger.Entry, next ledger.Entry) error {
	l.entered <- uid
	select {
	case <-l.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return l.Ledger.Swap(ctx, uid, prev, next)
}

// An apply waiting on its ledger write no longer needs its provider: the slot goes to the next apply, so a
// burst's writes wait together and share their shards' writes.
func TestLedgerWriteDoesNotHoldTheProviderSlot(t *testing.T) {
	f := newFixture(t)
	c0 := f.commit(0, nil)
	for _, name := range []string{"a", "b"} {
		f.baseline(name, c0)
	}
	c1 := f.commit(100, nil)
	led := &blockingLedger{Ledger: f.led, entered: make(chan string, 2), release: make(chan struct{})}
	trk := f.oneSlotTracker(led, f.gh, 0)
	done := make(chan error, 2)
	process := func(name string) {
		res, err := trk.Process(context.Background(), dep(name, rev(c1), at(130)))
		if err == nil && res.Outcome != tracker.Recorded {
			err = fmt.Errorf("%s: outcome %q, want recorded", name, res.Outcome)
		}
		done <- err
	}
	go process("a")
	if uid := <-led.entered; uid != "uid-a" {
		t.Fatalf("write of %s waiting, want uid-a", uid)
	}
	// a waits on its write; b, on the same provider with its one slot, reaches its own write too.
	go process("b")
	select {
	case uid := <-led.entered:
		if uid != "uid-b" {
			t.Fatalf("write of %s waiting, want uid-b", uid)
		}
	case err := <-done:
		t.Fatalf("b ended while a waited on its write: %v; want b waiting on its write too", err)
	}
	close(led.release)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// A pending rollout whose provider is busy is not looked up by a waiting worker: the gauge takes the fetch
// time for now, and the object comes back shortly to look its commits up.
func TestPendingLookupWithBusyProviderComesBack(t *testing.T) {
	_, trk, slow, done, c0, c1 := slotHeldByA(t, 0)

	pending := dep("b", rev(c0), at(0))
	pending.SourceRevision, pending.SourceFetched = rev(c1), at(120)
	type outcome struct {
		res tracker.Result
		err error
	}
	got := make(chan outcome, 1)
	go func() { res, err := trk.Process(context.Background(), pending); got <- outcome{res, err} }()
	var res tracker.Result
	var err error
	select {
	case o := <-got:
		res, err = o.res, o.err
	case <-slow.entered:
		t.Fatal("b's pending commits looked up past the full provider slots")
	}
	if err != nil || res.Outcome != tracker.Unchanged || res.RetryAfter <= 0 || res.RetryAfter > time.Minute {
		t.Fatalf("pending b with the provider busy = %q, retry after %s, %v; want unchanged, a short retry", res.Outcome, res.RetryAfter, err)
	}
	if s := rolloutOf(trk, "b"); !s.PendingSince.Equal(at(120)) {
		t.Errorf("b pending since %v with the provider busy, want the fetch time %v", s.PendingSince, at(120))
	}
	close(slow.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	res, err = trk.Process(context.Background(), pending)
	if err != nil || res.RetryAfter != 0 {
		t.Fatalf("pending b once the slot is free: retry after %s, %v; want none", res.RetryAfter, err)
	}
	if s := rolloutOf(trk, "b"); !s.PendingSince.Equal(at(100)) {
		t.Errorf("b pending since %v once looked up, want c1's commit time %v", s.PendingSince, at(100))
	}
}

func rolloutOf(trk *tracker.Tracker, name string) telemetry.RolloutState {
	for _, s := range trk.Rollouts() {
		if s.Attributes.Name == name {
			return s
		}
	}
	return telemetry.RolloutState{}
}

func TestImplausibleUpstreamTimeIsRejectedAndCounted(t *testing.T) {
	f := newFixture(t, withExporterInfo())
	c0 := f.commit(0, nil)
	f.baseline("app", c0)
	info := `{"commit":"` + strings.Repeat("ab", 20) + `","commits_since_last_export":[{"hash":"` + strings.Repeat("ab", 20) +
		`","message":"up","author":"dev","email":"dev@example.com","time":"0001-01-01T00:00:01Z"}]}`
	c1 := f.commit(100, map[string]string{infoPath: info})
	res := f.mustProcess(dep("app", rev(c1), at(130)), tracker.Recorded)
	for _, s := range res.Samples {
		if s.Duration > 24*time.Hour {
			t.Errorf("sample %s of %s is %s: an implausible time became a sample", s.Stage, s.Commit, s.Duration)
		}
	}
	if got := f.metrics()[kErr(telemetry.ReasonImplausibleTime)]; got != 1 {
		t.Errorf("implausible times counted %v, want 1", got)
	}
}
