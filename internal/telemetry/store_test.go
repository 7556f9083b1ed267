package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
)

// pipeline is Setup's metric side in memory: the instruments' provider, and an export provider with a
// Prometheus exporter and a manual reader standing in for the OTLP periodic one.
type pipeline struct {
	m       *Metrics
	otlp    *sdkmetric.ManualReader
	handler http.Handler
	logs    *syncBuffer
}

func newPipeline(t *testing.T, cfg MetricsConfig) *pipeline {
	t.Helper()
	logs := &syncBuffer{}
	mp, err := NewMeterProvider(cfg, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	otlp := sdkmetric.NewManualReader(sdkmetric.WithProducer(mp.Store))
	reg := prometheus.NewRegistry()
	prom, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithTranslationStrategy(promStrategy),
		otelprom.WithoutScopeInfo(), otelprom.WithProducer(mp.Store))
	if err != nil {
		t.Fatal(err)
	}
	export := sdkmetric.NewMeterProvider(sdkmetric.WithReader(otlp), sdkmetric.WithReader(prom))
	t.Cleanup(func() { _ = export.Shutdown(context.Background()); _ = mp.Shutdown(context.Background()) })
	m, err := NewMetrics(mp)
	if err != nil {
		t.Fatal(err)
	}
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
	return &pipeline{m: m, otlp: otlp, handler: h, logs: logs}
}

func object(ns, name string) ObjectAttributes {
	return ObjectAttributes{Cluster: "prod-eu", Namespace: ns, Kind: "Kustomization", Name: name, Repository: "https://github.com/acme/" + name}
}

// family returns the scraped family of metric name (nil when absent).
func family(t *testing.T, fams map[string]*dto.MetricFamily, name string) *dto.MetricFamily {
	t.Helper()
	d, ok := definition(name)
	if !ok {
		t.Fatalf("no definition of %s", name)
	}
	prom, err := PrometheusName(d)
	if err != nil {
		t.Fatal(err)
	}
	return fams[prom]
}

func label(m *dto.Metric, name string) (string, bool) {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue(), true
		}
	}
	return "", false
}

// overflowCount is the scraped overflow counter of metric.
func overflowCount(t *testing.T, fams map[string]*dto.MetricFamily, metric string) float64 {
	t.Helper()
	for _, m := range family(t, fams, MetricOverflow).GetMetric() {
		if v, _ := label(m, AttrMetric); v == metric {
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no overflow series for %s", metric)
	return 0
}

// reconcilePoints returns the reconcile-time histogram points from r, by flux.name.
func reconcilePoints(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.HistogramDataPoint[float64] {
	t.Helper()
	out := map[string]metricdata.HistogramDataPoint[float64]{}
	md, ok := collect(t, r)[MetricReconcile]
	if !ok {
		return out
	}
	h, ok := md.Data.(metricdata.Histogram[float64])
	if !ok || h.Temporality != metricdata.CumulativeTemporality {
		t.Fatalf("%s data = %#v, want a cumulative float64 histogram", MetricReconcile, md.Data)
	}
	for _, dp := range h.DataPoints {
		v, _ := dp.Attributes.Value(AttrName)
		out[v.AsString()] = dp
	}
	return out
}

// TestManyObjectsOneSeriesEach records past the SDK's default limit of 2,000 through Setup and scrapes it.
func TestManyObjectsOneSeriesEach(t *testing.T) {
	tel, m := setupMetrics(t, Config{Stdout: io.Discard})
	const n = 3000
	ctx := context.Background()
	for i := range n {
		a := object(fmt.Sprintf("team-%d", i%50), fmt.Sprintf("app-%d", i))
		m.ObserveReconcile(ctx, time.Duration(i%600)*time.Second, a)
		m.AddCommitsRecorded(ctx, 1, a)
	}
	// Lines, not a parse: the text parser alone takes most of a minute under -race here.
	body := get(t, tel.MetricsHandler, "")
	if strings.Contains(body, "otel_metric_overflow") {
		t.Error("scrape has an overflow series")
	}
	for _, series := range []string{
		"flux_commit_tracker_flux_reconcile_time_seconds_count{", "flux_commit_tracker_commits_recorded_total{",
	} {
		if got := strings.Count(body, "\n"+series); got != n {
			t.Errorf("%s…: %d series, want %d", series, got, n)
		}
	}
	for _, name := range []string{MetricReconcile, MetricCommitsRecorded} {
		if zero := `flux_commit_tracker_metric_overflow_total{metric="` + name + `"} 0`; !strings.Contains(body, zero) {
			t.Errorf("scrape lacks %s", zero)
		}
	}
}

// warnings returns the logged warnings about a cardinality limit.
func warnings(t *testing.T, logs *syncBuffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range jsonLines(t, logs.String()) {
		if l["level"] == "WARN" && strings.Contains(fmt.Sprint(l["msg"]), "cardinality limit") {
			out = append(out, l)
		}
	}
	return out
}

func TestCardinalityLimitLoggedOnceAndCounted(t *testing.T) {
	p := newPipeline(t, MetricsConfig{CardinalityLimit: 5})
	ctx := context.Background()
	record := func(from, to int) {
		for i := from; i < to; i++ {
			p.m.ObserveReconcile(ctx, time.Minute, object("apps", fmt.Sprintf("app-%d", i)))
		}
	}
	overflowSeries := func(fams map[string]*dto.MetricFamily) (real int, overflowed uint64) {
		for _, s := range family(t, fams, MetricReconcile).GetMetric() {
			if v, ok := label(s, "otel_metric_overflow"); ok && v == "true" {
				if len(s.GetLabel()) != 1 {
					t.Errorf("overflow series labels = %v", s.GetLabel())
				}
				overflowed = s.GetHistogram().GetSampleCount()
				continue
			}
			real++
		}
		return real, overflowed
	}

	scrapeWants := func(step string, wantReal int, wantOver uint64, wantCounter float64) map[string]*dto.MetricFamily {
		t.Helper()
		_, fams := scrape(t, p.handler)
		if real, over := overflowSeries(fams); real != wantReal || over != wantOver {
			t.Errorf("%s: series, overflowed = %d, %d; want %d, %d", step, real, over, wantReal, wantOver)
		}
		if v := overflowCount(t, fams, MetricReconcile); v != wantCounter {
			t.Errorf("%s: overflow counter = %v, want %v", step, v, wantCounter)
		}
		return fams
	}

	record(0, 3)
	scrapeWants("under the limit", 3, 0, 0)
	if w := warnings(t, p.logs); len(w) != 0 {
		t.Fatalf("warned under the limit: %v", w)
	}

	// The store's limit: 4 series and the overflow one; app-4 and app-5 merge.
	record(3, 6)
	scrapeWants("at the store's limit", 4, 2, 2)

	// A known series still records. Past the SDK's own limit of one collection (twice the store's: app-0 and
	// 8 new sets kept, app-14 and app-15 merged there), the store refuses the 8 and counts the SDK's point.
	p.m.ObserveReconcile(ctx, time.Minute, object("apps", "app-0"))
	record(6, 16)
	fams := scrapeWants("past the SDK's limit", 4, 12, 11)
	for _, s := range family(t, fams, MetricReconcile).GetMetric() {
		if v, _ := label(s, "flux_name"); v == "app-0" && s.GetHistogram().GetSampleCount() != 2 {
			t.Errorf("app-0 count = %d, want 2", s.GetHistogram().GetSampleCount())
		}
	}

	w := warnings(t, p.logs)
	if len(w) != 1 {
		t.Fatalf("%d warnings, want 1: %v", len(w), w)
	}
	if w[0]["metric"] != MetricReconcile || w[0]["limit"] != 5.0 {
		t.Errorf("warning = %v, want the metric and the limit", w[0])
	}
}

func TestForgetObject(t *testing.T) {
	p := newPipeline(t, MetricsConfig{})
	ctx := context.Background()
	a, b, c := object("apps", "a"), object("apps", "b"), object("infra", "c")
	live := observe(t, p.m, RolloutState{Attributes: a}, RolloutState{Attributes: b}, RolloutState{Attributes: c})
	for i, o := range []ObjectAttributes{a, b, c} {
		p.m.ObserveReconcile(ctx, time.Duration(10*(i+1))*time.Second, o)
		p.m.ObserveE2E(ctx, time.Duration(20*(i+1))*time.Second, o)
		p.m.AddCommitsRecorded(ctx, i+1, o)
		p.m.AddError(ctx, ReasonGitHub, o)
	}
	p.m.AddGitHubCall(ctx, commits.CallSuccess)
	before := reconcilePoints(t, p.otlp)
	_, _ = scrape(t, p.handler)

	// b is deleted: a sample not yet collected, then its series go.
	p.m.ObserveReconcile(ctx, time.Hour, b)
	live.set(RolloutState{Attributes: a}, RolloutState{Attributes: c})
	p.m.ForgetObject(ctx, ObjectAttributes{Namespace: "apps", Kind: "Kustomization", Name: "b"})

	body, fams := scrape(t, p.handler)
	if strings.Contains(body, `flux_name="b"`) {
		t.Errorf("/metrics still has b:\n%s", body)
	}
	if strings.Count(body, `flux_name="a"`) == 0 || strings.Count(body, `flux_name="c"`) == 0 {
		t.Error("/metrics lost a or c")
	}
	if v := family(t, fams, MetricGitHubCalls).GetMetric()[0].GetCounter().GetValue(); v != 1 {
		t.Errorf("github calls = %v, want 1 (not an object's series)", v)
	}
	for name, md := range collect(t, p.otlp) {
		for _, set := range dataPointSets(t, md) {
			if v, ok := set.Value(AttrName); ok && v.AsString() == "b" {
				t.Errorf("OTLP %s still has b", name)
			}
		}
	}
	after := reconcilePoints(t, p.otlp)
	for _, name := range []string{"a", "c"} {
		x, y := before[name], after[name]
		if x.Count != y.Count || x.Sum != y.Sum || !slices.Equal(x.BucketCounts, y.BucketCounts) || !x.StartTime.Equal(y.StartTime) {
			t.Errorf("%s changed: %+v → %+v", name, x, y)
		}
	}

	// Recorded again, b starts from zero.
	p.m.ObserveReconcile(ctx, 5*time.Second, b)
	if got := reconcilePoints(t, p.otlp)["b"]; got.Count != 1 || got.Sum != 5 {
		t.Errorf("b again = %d samples, sum %v; want 1, 5", got.Count, got.Sum)
	}

	// Safe without a store and on nil.
	var nilMetrics *Metrics
	nilMetrics.ForgetObject(ctx, a)
	plain, _ := newManual(t)
	plain.ForgetObject(ctx, a)
}

func dataPointSets(t *testing.T, md metricdata.Metrics) []attribute.Set {
	t.Helper()
	var out []attribute.Set
	switch d := md.Data.(type) {
	case metricdata.Histogram[float64]:
		for _, dp := range d.DataPoints {
			out = append(out, dp.Attributes)
		}
	case metricdata.Sum[int64]:
		for _, dp := range d.DataPoints {
			out = append(out, dp.Attributes)
		}
	case metricdata.Gauge[float64]:
		for _, dp := range d.DataPoints {
			out = append(out, dp.Attributes)
		}
	default:
		t.Fatalf("%s: unexpected %T", md.Name, md.Data)
	}
	return out
}

// TestTwoReadersNoDoubleCount interleaves the Prometheus exporter and an OTLP-like reader.
func TestTwoReadersNoDoubleCount(t *testing.T) {
	p := newPipeline(t, MetricsConfig{})
	ctx := context.Background()
	a := object("apps", "a")
	var starts []time.Time
	for i := 1; i <= 3; i++ {
		p.m.ObserveReconcile(ctx, time.Second, a)
		p.m.AddCommitsRecorded(ctx, 1, a)
		_, fams := scrape(t, p.handler)
		s := family(t, fams, MetricReconcile).GetMetric()[0]
		if got := s.GetHistogram().GetSampleCount(); got != uint64(i) {
			t.Errorf("scrape %d: count %d, want %d", i, got, i)
		}
		if got := family(t, fams, MetricCommitsRecorded).GetMetric()[0].GetCounter().GetValue(); got != float64(i) {
			t.Errorf("scrape %d: commits %v, want %d", i, got, i)
		}
		dp := reconcilePoints(t, p.otlp)["a"]
		if dp.Count != uint64(i) || dp.Sum != float64(i) {
			t.Errorf("collect %d: count %d, sum %v; want %d", i, dp.Count, dp.Sum, i)
		}
		starts = append(starts, dp.StartTime)
	}
	if !starts[0].Equal(starts[2]) || starts[0].IsZero() {
		t.Errorf("start times %v: want the first collection's, unchanged", starts)
	}
}

func TestExemplarsReachOpenMetrics(t *testing.T) {
	p := newPipeline(t, MetricsConfig{Aggregation: AggregateNamespace})
	tid := trace.TraceID{0x0a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	p.m.ObserveReconcile(ctx, 90*time.Second, object("apps", "a-long-name-so-the-summed-attributes-would-not-fit"))
	for i := range 2 {
		if i == 1 { // kept past a sample without a sampled span
			p.m.ObserveReconcile(context.Background(), 91*time.Second, object("apps", "b"))
		}
		body := get(t, p.handler, "application/openmetrics-text; version=1.0.0")
		if !strings.Contains(body, `trace_id="`+tid.String()+`"`) {
			t.Errorf("scrape %d lacks the exemplar:\n%s", i, body)
		}
	}
}

func TestAggregationLevels(t *testing.T) {
	objects := []ObjectAttributes{object("apps", "a"), object("apps", "b"), object("infra", "c"), object("infra", "d")}
	for _, tc := range []struct {
		level  Aggregation
		labels []string          // of an object metric, sorted
		counts map[string]uint64 // reconcile samples by the series' namespace (or "" at cluster)
	}{
		{AggregateObject, []string{"flux_kind", "flux_name", "k8s_cluster_name", "k8s_namespace_name", "vcs_repository_url_full"},
			map[string]uint64{"apps/a": 1, "apps/b": 1, "infra/c": 1, "infra/d": 1}},
		{AggregateNamespace, []string{"k8s_cluster_name", "k8s_namespace_name"}, map[string]uint64{"apps/": 2, "infra/": 2}},
		{AggregateCluster, []string{"k8s_cluster_name"}, map[string]uint64{"/": 4}},
	} {
		t.Run(string(tc.level), func(t *testing.T) {
			p := newPipeline(t, MetricsConfig{Aggregation: tc.level})
			ctx := context.Background()
			now := time.Now()
			states := make([]RolloutState, len(objects))
			for i, o := range objects {
				p.m.ObserveReconcile(ctx, time.Minute, o)
				p.m.AddError(ctx, ReasonTimeout, o)
				states[i] = RolloutState{Attributes: o, PendingSince: now.Add(-time.Duration(i+1) * time.Minute)}
			}
			p.m.AddGitCall(ctx, commits.CallSuccess)
			if _, err := p.m.ObserveRollouts(func() []RolloutState { return states }, func() time.Time { return now }); err != nil {
				t.Fatal(err)
			}
			_, fams := scrape(t, p.handler)
			recorded := []string{MetricReconcile, MetricErrors, MetricGitCalls, MetricPendingAge, MetricFailingAge, MetricOverflow}
			for _, d := range Definitions {
				fam := family(t, fams, d.Name)
				if (fam != nil) != slices.Contains(recorded, d.Name) {
					t.Errorf("%s scraped: %v", d.Name, fam != nil)
				}
				if fam != nil {
					checkLabels(t, fam, tc.level.Attributes(d))
				}
			}
			var got []string
			for _, lp := range family(t, fams, MetricReconcile).GetMetric()[0].GetLabel() {
				got = append(got, lp.GetName())
			}
			if !slices.Equal(got, tc.labels) {
				t.Errorf("reconcile labels = %v, want %v", got, tc.labels)
			}
			counts := map[string]uint64{}
			for _, s := range family(t, fams, MetricReconcile).GetMetric() {
				ns, _ := label(s, "k8s_namespace_name")
				name, _ := label(s, "flux_name")
				counts[ns+"/"+name] += s.GetHistogram().GetSampleCount()
			}
			if fmt.Sprint(counts) != fmt.Sprint(tc.counts) {
				t.Errorf("reconcile counts = %v, want %v", counts, tc.counts)
			}
			// The rollout gauge of a group is its oldest object's.
			pending := map[string]float64{}
			for _, s := range family(t, fams, MetricPendingAge).GetMetric() {
				ns, _ := label(s, "k8s_namespace_name")
				name, _ := label(s, "flux_name")
				pending[ns+"/"+name] = s.GetGauge().GetValue()
			}
			wantPending := map[Aggregation]map[string]float64{
				AggregateObject:    {"apps/a": 60, "apps/b": 120, "infra/c": 180, "infra/d": 240},
				AggregateNamespace: {"apps/": 120, "infra/": 240},
				AggregateCluster:   {"/": 240},
			}[tc.level]
			if fmt.Sprint(pending) != fmt.Sprint(wantPending) {
				t.Errorf("pending ages = %v, want %v", pending, wantPending)
			}
		})
	}
}

// TestForgetAggregated drops a namespace's series with its last object only.
func TestForgetAggregated(t *testing.T) {
	p := newPipeline(t, MetricsConfig{Aggregation: AggregateNamespace})
	ctx := context.Background()
	for _, o := range []ObjectAttributes{object("apps", "a"), object("apps", "b"), object("infra", "c")} {
		p.m.ObserveReconcile(ctx, time.Minute, o)
	}
	namespaces := func() map[string]uint64 {
		_, fams := scrape(t, p.handler)
		out := map[string]uint64{}
		for _, s := range family(t, fams, MetricReconcile).GetMetric() {
			ns, _ := label(s, "k8s_namespace_name")
			out[ns] = s.GetHistogram().GetSampleCount()
		}
		return out
	}
	p.m.ForgetObject(ctx, object("apps", "a"))
	p.m.ForgetObject(ctx, object("apps", "never-recorded"))
	if got := fmt.Sprint(namespaces()); got != "map[apps:2 infra:1]" {
		t.Errorf("after a: %s, want apps kept whole while b lives", got)
	}
	p.m.ForgetObject(ctx, object("apps", "b"))
	if got := fmt.Sprint(namespaces()); got != "map[infra:1]" {
		t.Errorf("after b: %s, want apps gone", got)
	}
}

// TestStoreConcurrent records, collects from two readers and forgets at once; run with -race.
func TestStoreConcurrent(t *testing.T) {
	p := newPipeline(t, MetricsConfig{CardinalityLimit: 50})
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				o := object("apps", fmt.Sprintf("app-%d-%d", w, i%40))
				p.m.ObserveReconcile(ctx, time.Second, o)
				p.m.AddCommitsRecorded(ctx, 1, o)
				if i%7 == 0 {
					p.m.ForgetObject(ctx, o)
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			_ = collect(t, p.otlp)
		}
	})
	wg.Go(func() {
		for range 20 {
			_, _ = scrape(t, p.handler)
		}
	})
	wg.Wait()
	_, fams := scrape(t, p.handler)
	if n := len(family(t, fams, MetricReconcile).GetMetric()); n > 50 {
		t.Errorf("%d reconcile series past the limit of 50", n)
	}
}

// TestGaugesFollowObservations keeps a gauge series only while its object is observed.
func TestGaugesFollowObservations(t *testing.T) {
	p := newPipeline(t, MetricsConfig{})
	a := RolloutState{Attributes: object("apps", "a")}
	live := observe(t, p.m, a, RolloutState{Attributes: object("apps", "b")})
	names := func() []string {
		_, fams := scrape(t, p.handler)
		var out []string
		for _, s := range family(t, fams, MetricFailingAge).GetMetric() {
			n, _ := label(s, "flux_name")
			out = append(out, n)
		}
		slices.Sort(out)
		return out
	}
	if got := names(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("gauges = %v, want a, b", got)
	}
	live.set(a)
	if got := names(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("gauges = %v, want a alone", got)
	}
}

// liveStates are the rollout states a test changes while the gauges observe them.
type liveStates struct {
	mu     sync.Mutex
	states []RolloutState
}

func (l *liveStates) set(states ...RolloutState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.states = states
}

// observe reports the rollout gauges of m from the returned states.
func observe(t *testing.T, m *Metrics, states ...RolloutState) *liveStates {
	t.Helper()
	l := &liveStates{states: states}
	if _, err := m.ObserveRollouts(func() []RolloutState {
		l.mu.Lock()
		defer l.mu.Unlock()
		return slices.Clone(l.states)
	}, time.Now); err != nil {
		t.Fatal(err)
	}
	return l
}
