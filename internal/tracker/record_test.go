package tracker_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/flux"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// recordSink keeps every Record it receives.
type recordSink struct {
	mu      sync.Mutex
	records []tracker.Record
}

func (s *recordSink) Record(_ context.Context, r tracker.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = append(s.records, r)
}

// recordTwoCommits baselines app, then has it apply c2 (delivering c1 and c2) twice: recorded, then unchanged.
func (f *fixture) recordTwoCommits() (c1, c2 string, d flux.Deployment) {
	f.tb.Helper()
	f.baseline("app", f.commit(0, nil))
	c1, c2 = f.commit(100, nil), f.commit(200, nil)
	d = dep("app", rev(c2), at(260))
	f.mustProcess(d, tracker.Recorded)
	f.mustProcess(d, tracker.Unchanged)
	return c1, c2, d
}

// One Record per apply that recorded commits reaches the sinks, after the checkpoint, with every commit, its
// samples and its trace; the log line of each commit carries that commit's trace.
func TestEachRecordReachesTheSinksOnce(t *testing.T) {
	sink := &recordSink{}
	f := newFixture(t, func(o *tracker.Options) { o.Sinks = []tracker.Sink{sink} })
	c1, c2, d := f.recordTwoCommits()

	if len(sink.records) != 1 {
		t.Fatalf("%d records, want 1 (the baseline and the unchanged apply record nothing)", len(sink.records))
	}
	r := sink.records[0]
	wantCommits(t, r.Commits, c1, c2)
	wantSamples(t, r.Samples, append(plain(c1, at(100), at(260)), plain(c2, at(200), at(260))...)...)
	if r.UID != d.UID || r.Revision != d.Revision || r.Object.Name != "app" || r.Object.Cluster != clusterName || r.Object.Repository != repoURL {
		t.Errorf("record of %+v at %s (uid %s), want app at %s (uid %s)", r.Object, r.Revision, r.UID, d.Revision, d.UID)
	}
	if !r.Applied.Equal(at(260)) || !r.AppliedFromFlux || !r.Apply.IsValid() {
		t.Errorf("applied %v (from Flux %v), apply span valid %v; want %v from Flux, a valid span", r.Applied, r.AppliedFromFlux, r.Apply.IsValid(), at(260))
	}
	for _, sha := range []string{c1, c2} {
		sc := r.CommitSpans[sha]
		if want := telemetry.CommitTraceID(repoURL, sha); sc.TraceID() != want {
			t.Errorf("commit %s span in trace %s, want the commit's trace %s", sha[:7], sc.TraceID(), want)
		}
	}
	logged := map[string]string{}
	for _, l := range f.tel.Logs(t) {
		if l["msg"] == "commit applied" {
			logged[l["commit"].(string)], _ = l["trace_id"].(string)
		}
	}
	for _, sha := range []string{c1, c2} {
		if want := telemetry.CommitTraceID(repoURL, sha).String(); logged[sha] != want {
			t.Errorf("log line of %s has trace_id %q, want the commit's trace %s", sha[:7], logged[sha], want)
		}
	}
	if got := f.metrics()[kRecorded]; got != 2 {
		t.Errorf("commits recorded counted %v, want 2", got)
	}
}

// landedNotifier notes every commit of a Record.
type landedNotifier struct{}

func (landedNotifier) Name() string { return "test" }

func (landedNotifier) Notice(r tracker.Record) (json.RawMessage, bool, error) {
	var shas []string
	for _, c := range r.Commits {
		shas = append(shas, c.SHA)
	}
	body, err := json.Marshal(shas)
	return body, len(shas) > 0, err
}

// A recorded apply's notice is in the ledger's outbox once its checkpoint is, and only then: one per apply,
// none for a baseline or an unchanged revision.
func TestNoticesAreQueuedWithTheCheckpoint(t *testing.T) {
	led := ledger.NewMemory()
	f := newFixture(t, withLedger(led), func(o *tracker.Options) { o.Notifiers = []tracker.Notifier{landedNotifier{}} })
	c1, c2, d := f.recordTwoCommits()
	items := led.Pending()
	if len(items) != 1 {
		t.Fatalf("%d notices queued, want 1", len(items))
	}
	if want := `["` + c1 + `","` + c2 + `"]`; string(items[0].Body) != want || items[0].Sink != "test" {
		t.Errorf("notice %s %s, want test %s", items[0].Sink, items[0].Body, want)
	}
	if want := ledger.ItemID("test", clusterName, d.UID, d.Revision); items[0].ID != want {
		t.Errorf("notice ID %s, want %s: the same in every process", items[0].ID, want)
	}
	if e, _ := led.Get(d.UID); e.Revision != d.Revision {
		t.Errorf("checkpoint at %s, want %s", e.Revision, d.Revision)
	}
}

func TestNotifiersNeedAnOutbox(t *testing.T) {
	f := newFixture(t)
	_, err := tracker.New(tracker.Options{Ledger: &countingLedger{Ledger: ledger.NewMemory()}, Providers: tracker.Providers{}.For,
		Recorder: f.tel.Metrics, Tracer: f.tel.TracerProvider.Tracer(telemetry.ScopeName), Logger: f.tel.Logger,
		Notifiers: []tracker.Notifier{landedNotifier{}}})
	if err == nil {
		t.Fatal("New with notifiers and a ledger without an outbox succeeded")
	}
}

// Each apply of a new revision is kept in the entry with Flux's apply time, the last ledger.MaxApplies of them.
func TestEntryKeepsTheLastApplies(t *testing.T) {
	f := newFixture(t)
	c0 := f.commit(0, nil)
	f.mustProcess(dep("app", rev(c0), at(10)), tracker.Baseline)
	want := []ledger.Apply{{Digest: c0, At: at(10)}}
	for i := 1; i <= ledger.MaxApplies; i++ {
		c := f.commit(100*i, nil)
		f.mustProcess(dep("app", rev(c), at(100*i+30)), tracker.Recorded)
		f.mustProcess(dep("app", rev(c), at(100*i+30)), tracker.Unchanged)
		want = append(want, ledger.Apply{Digest: c, At: at(100*i + 30)})
	}
	want = want[1:]
	got := mustGet(t, f.led).Applies
	if len(got) != len(want) {
		t.Fatalf("%d applies kept, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Digest != want[i].Digest || !got[i].At.Equal(want[i].At) {
			t.Errorf("apply %d = %s at %v, want %s at %v", i, got[i].Digest[:7], got[i].At, want[i].Digest[:7], want[i].At)
		}
	}
}
