package tracker_test

import (
	"maps"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry/telemetrytest"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// TestOneTracePerCommitAcrossClusters has two trackers with different --cluster-name record the same commit: both
// add their spans to one trace, derived from the repository and SHA, under one shared root.
func TestOneTracePerCommitAcrossClusters(t *testing.T) {
	const u1 = "1111111111111111111111111111111111111111"
	f := newFixture(t, withExporterInfo())
	other := telemetrytest.New(t)
	us, err := tracker.New(tracker.Options{
		Ledger: ledger.NewMemory(), Providers: tracker.Providers{GitHub: f.gh, GitHubHosts: []string{"github.com"}}.For,
		Recorder: other.Metrics, Tracer: other.TracerProvider.Tracer(telemetry.ScopeName), Logger: other.Logger,
		Clock: clocktesting.NewFakeClock(at(1000)), ClusterName: "us-east", ExporterInfoPath: infoPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	c0 := f.commit(0, nil)
	f.baseline("app", c0)
	if _, err := us.Process(t.Context(), dep("app", rev(c0), at(0))); err != nil {
		t.Fatal(err)
	}
	c1 := f.commit(100, map[string]string{infoPath: exporterInfo(u1, 40)})
	d := dep("app", rev(c1), at(160))
	d.Fetched = at(130)
	f.mustProcess(d, tracker.Recorded)
	d.Applied = at(190) // the other cluster applies later
	if res, err := us.Process(t.Context(), d); err != nil || res.Outcome != tracker.Recorded {
		t.Fatalf("second cluster: %q, %v", res.Outcome, err)
	}

	wantTrace := telemetry.CommitTraceID(repoURL, c1)
	spansOf := func(tel *telemetrytest.Telemetry) map[string]tracetest.SpanStub {
		out := map[string]tracetest.SpanStub{}
		for _, s := range tel.Spans.GetSpans() {
			if s.SpanContext.TraceID() == wantTrace {
				out[s.Name] = s
			}
		}
		return out
	}
	eu, east := spansOf(f.tel), spansOf(other)
	for _, spans := range []map[string]tracetest.SpanStub{eu, east} {
		for _, name := range []string{tracker.SpanCommit, tracker.SpanExported, tracker.SpanFetched, tracker.SpanApplied} {
			if _, ok := spans[name]; !ok {
				t.Fatalf("no %q span in the commit's trace %s; got %v", name, wantTrace, keys(spans))
			}
		}
	}
	// The shared spans are the same span in both clusters; the cluster's own are children of the shared root.
	for _, name := range []string{tracker.SpanCommit, tracker.SpanExported} {
		if eu[name].SpanContext.SpanID() != east[name].SpanContext.SpanID() {
			t.Errorf("%s span IDs differ between clusters: %s vs %s", name, eu[name].SpanContext.SpanID(), east[name].SpanContext.SpanID())
		}
	}
	root := eu[tracker.SpanCommit].SpanContext.SpanID()
	for _, spans := range []map[string]tracetest.SpanStub{eu, east} {
		for _, name := range []string{tracker.SpanExported, tracker.SpanFetched, tracker.SpanApplied} {
			if spans[name].Parent.SpanID() != root {
				t.Errorf("%s span's parent %s, want the commit root %s", name, spans[name].Parent.SpanID(), root)
			}
		}
	}
	if eu[tracker.SpanApplied].SpanContext.SpanID() == east[tracker.SpanApplied].SpanContext.SpanID() {
		t.Error("both clusters' applied spans share an ID")
	}

	// True start and end times.
	wantTimes := map[string][2]time.Time{
		tracker.SpanCommit: {at(100), at(100)}, tracker.SpanExported: {at(40), at(100)},
		tracker.SpanFetched: {at(100), at(130)}, tracker.SpanApplied: {at(130), at(160)},
	}
	for name, w := range wantTimes {
		if s := eu[name]; !s.StartTime.Equal(w[0]) || !s.EndTime.Equal(w[1]) {
			t.Errorf("%s span %s → %s, want %s → %s", name, s.StartTime, s.EndTime, w[0], w[1])
		}
	}
	if s := east[tracker.SpanApplied]; !s.EndTime.Equal(at(190)) {
		t.Errorf("second cluster's applied span ends %s, want %s", s.EndTime, at(190))
	}
	for spans, cluster := range map[*map[string]tracetest.SpanStub]string{&eu: clusterName, &east: "us-east"} {
		attrs := attribute.NewSet((*spans)[tracker.SpanApplied].Attributes...)
		if v, _ := attrs.Value(attribute.Key(telemetry.AttrCluster)); v.AsString() != cluster {
			t.Errorf("applied span cluster %q, want %q", v.AsString(), cluster)
		}
		if v, _ := attrs.Value("vcs.ref.head.revision"); v.AsString() != c1 {
			t.Errorf("applied span revision %q, want %s", v.AsString(), c1)
		}
	}

	// The fetch and apply stages, from the source's artifact time.
	if n, sum := f.tel.Histogram(t, telemetry.MetricFetch); n != 1 || sum != 30 {
		t.Errorf("fetch-time = %d samples, sum %v; want 1, 30", n, sum)
	}
	if n, sum := other.Histogram(t, telemetry.MetricApply); n != 1 || sum != 60 {
		t.Errorf("second cluster apply-time = %d samples, sum %v; want 1, 60", n, sum)
	}

	// The reconcile sample carries the commit's trace as an exemplar.
	for _, tel := range []*telemetrytest.Telemetry{f.tel, other} {
		var rm metricdata.ResourceMetrics
		if err := tel.Reader.Collect(t.Context(), &rm); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name != telemetry.MetricReconcile {
					continue
				}
				for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
					for _, ex := range dp.Exemplars {
						found = found || trace.TraceID(ex.TraceID) == wantTrace
					}
				}
			}
		}
		if !found {
			t.Error("no reconcile exemplar carries the commit's trace ID")
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// exportedSpans counts the "exported" spans per upstream commit.
func exportedSpans(tel *telemetrytest.Telemetry) map[string]int {
	out := map[string]int{}
	for _, s := range tel.Spans.GetSpans() {
		if s.Name != tracker.SpanExported {
			continue
		}
		attrs := attribute.NewSet(s.Attributes...)
		v, _ := attrs.Value("vcs.upstream.revision")
		out[v.AsString()]++
	}
	return out
}

// TestOneExportedSpanPerUpstreamCommit: two manifests commits of one apply both carry u1; it used to get an
// "exported" span in each commit's trace, and now gets one, as it gets one export sample.
func TestOneExportedSpanPerUpstreamCommit(t *testing.T) {
	const u1, u2 = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
	f := newFixture(t, withExporterInfo())
	f.baseline("app", f.commit(0, nil))
	f.commit(100, map[string]string{infoPath: exporterInfo(u1, 40)})
	c2 := f.commit(200, map[string]string{infoPath: exporterInfo(u1, 40, u2, 150)})
	f.mustProcess(dep("app", rev(c2), at(260)), tracker.Recorded)

	if got, want := exportedSpans(f.tel), map[string]int{u1: 1, u2: 1}; !maps.Equal(got, want) {
		t.Errorf("exported spans per upstream commit %v, want %v", got, want)
	}
}

// TestNoSpanAtImplausibleTime: an upstream commit dated 2000 gets no "exported" span reaching back 26 years.
func TestNoSpanAtImplausibleTime(t *testing.T) {
	const u1, u2 = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
	f := newFixture(t, withExporterInfo())
	f.baseline("app", f.commit(0, nil))
	c1 := f.commit(100, map[string]string{infoPath: exporterInfo(u1, -820_000_000, u2, 40)})
	f.mustProcess(dep("app", rev(c1), at(160)), tracker.Recorded)

	if got, want := exportedSpans(f.tel), map[string]int{u2: 1}; !maps.Equal(got, want) {
		t.Errorf("exported spans per upstream commit %v, want %v", got, want)
	}
	for _, s := range f.tel.Spans.GetSpans() {
		if s.StartTime.Before(at(-3600)) {
			t.Errorf("%s span starts %s", s.Name, s.StartTime)
		}
	}
}
