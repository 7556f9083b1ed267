package tracker_test

import (
	"context"
	"errors"
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
		kNotRecorded(telemetry.StatusBehind): 2, kGitHubOK: 4,
	})
}

// staleLedger is one process's view of a ledger shared with another: it decides from what it loaded, and its
// writes are checked against the shared store, as the ConfigMaps ledger's resourceVersion checks them.
type staleLedger struct {
	*ledger.Memory
	shared *ledger.Memory
}

func (l *staleLedger) Swap(ctx context.Context, uid string, prev *ledger.Entry, next ledger.Entry) error {
	if err := l.shared.Swap(ctx, uid, prev, next); err != nil {
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
	if err := ledger.Put(context.Background(), twoLedger.Memory, "uid-app", mustGet(t, shared, "uid-app")); err != nil {
		t.Fatal(err)
	}
	two, err := tracker.New(tracker.Options{
		Ledger: twoLedger, Providers: tracker.Providers{GitHub: f.gh, GitHubHosts: []string{"github.com"}}.For,
		Recorder: f.tel.Metrics, Tracer: f.tel.TracerProvider.Tracer(telemetry.ScopeName), Logger: f.tel.Logger,
		Clock: f.clock, ClusterName: clusterName,
	})
	if err != nil {
		t.Fatal(err)
	}

	d := dep("app", rev(c2), at(250))
	res := f.mustProcess(d, tracker.Recorded)
	wantCommits(t, res.Commits, c1, c2)
	// The second writer decided from c0: its write is refused, it decides again from c2 and records nothing.
	res, err = two.Process(context.Background(), d)
	if err != nil || res.Outcome != tracker.Unchanged || len(res.Commits) != 0 {
		t.Fatalf("second writer = %q, %d commits, %v; want unchanged, none", res.Outcome, len(res.Commits), err)
	}
	if e, _ := shared.Get("uid-app"); e.Revision != rev(c2) {
		t.Errorf("shared ledger at %s, want %s", e.Revision, rev(c2))
	}
	f.wantMetrics(map[string]float64{kRecorded: 2, kReconcileCount: 2, kReconcileSum: 150 + 50, kE2ECount: 2, kE2ESum: 200,
		kGitHubOK: 1, kGitHubCacheHit: 1})
}

func mustGet(t *testing.T, l ledger.Ledger, uid string) ledger.Entry {
	t.Helper()
	e, ok := l.Get(uid)
	if !ok {
		t.Fatalf("no ledger entry %s", uid)
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

func TestBusyProviderTurnsObjectsAwayWithoutWaiting(t *testing.T) {
	f := newFixture(t)
	c0 := f.commit(0, nil)
	for _, name := range []string{"a", "b"} {
		f.baseline(name, c0)
	}
	c1 := f.commit(100, nil)
	slow := &blockingProvider{Provider: f.gh, entered: make(chan struct{}, 2), release: make(chan struct{})}
	trk, err := tracker.New(tracker.Options{
		Ledger: f.led, Providers: tracker.Providers{GitHub: slow, GitHubHosts: []string{"github.com"}}.For,
		Recorder: f.tel.Metrics, Tracer: f.tel.TracerProvider.Tracer(telemetry.ScopeName), Logger: f.tel.Logger,
		Clock: f.clock, ClusterName: clusterName, ProviderSlots: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := trk.Process(context.Background(), dep("a", rev(c1), at(130))); done <- err }()
	<-slow.entered
	// The one GitHub slot is held: b is turned away at once with a short requeue.
	_, err = trk.Process(context.Background(), dep("b", rev(c1), at(130)))
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
