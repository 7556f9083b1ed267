package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// overflowSet is where a metric at its cardinality limit merges new series: the SDK's own overflow set.
var overflowSet = attribute.NewSet(attribute.Bool("otel.metric.overflow", true))

// forgetBatch is how many forgotten groups wait for the next collection before Forget collects itself.
const forgetBatch = 1024

// Store turns the delta collections of the reader the instruments record into cumulative series, and serves
// them to every reader as an [sdkmetric.Producer]. Unlike the SDK's cumulative state it can forget series (those of
// deleted objects) and it keeps each metric within its cardinality limit, logging and counting the overflow.
type Store struct {
	delta  *sdkmetric.ManualReader
	limit  int
	logger *slog.Logger
	start  time.Time

	mu       sync.Mutex
	scopes   []*scopeSeries
	forget   map[attribute.Distinct]attribute.Set // groups to drop after the next collection
	overflow map[string]int64                     // data points merged into the overflow series, by metric
	warned   map[string]bool
}

func newStore(delta *sdkmetric.ManualReader, limit int, logger *slog.Logger) *Store {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Store{
		delta: delta, limit: limit, logger: logger, start: time.Now(),
		forget: map[attribute.Distinct]attribute.Set{}, overflow: map[string]int64{}, warned: map[string]bool{},
	}
}

// Produce merges what was recorded since the last call and returns every series, cumulative. Each caller gets
// the whole current state, so any number of readers never count a sample twice.
func (s *Store) Produce(ctx context.Context) ([]metricdata.ScopeMetrics, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.collect(ctx)
	return s.export(time.Now()), err
}

// Forget drops every series whose attributes include all of group's, at the next collection (so samples not
// yet collected go too).
func (s *Store) Forget(ctx context.Context, group attribute.Set) {
	if group.Len() == 0 {
		return // would match every series
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forget[group.Equivalent()] = group
	if len(s.forget) >= forgetBatch {
		if err := s.collect(ctx); err != nil {
			s.logger.WarnContext(ctx, "metric series of deleted objects kept until the next collection", "error", err)
		}
	}
}

// collect merges one delta collection, then drops the forgotten groups.
func (s *Store) collect(ctx context.Context) error {
	// A fresh buffer each time: one burst's delta is not kept alive until the next.
	var rm metricdata.ResourceMetrics
	if err := s.delta.Collect(ctx, &rm); err != nil {
		return fmt.Errorf("telemetry: collect recorded metrics: %w", err)
	}
	for _, sc := range s.scopes {
		for _, m := range sc.metrics {
			m.points.begin()
		}
	}
	for _, sm := range rm.ScopeMetrics {
		sc := s.scope(sm.Scope)
		for _, md := range sm.Metrics {
			admit := func(attrs attribute.Set, n int) attribute.Set { return s.admit(ctx, md.Name, attrs, n) }
			if m := sc.metric(md); m == nil || !m.points.merge(md.Data, admit) {
				s.warnOnce(ctx, "type:"+md.Name, "metric not kept: its aggregation is not supported", "metric", md.Name, "type", fmt.Sprintf("%T", md.Data))
				continue
			}
			if _, ok := s.overflow[md.Name]; !ok {
				s.overflow[md.Name] = 0 // a zero series first, so increase() sees the first overflow
			}
		}
	}
	s.drop()
	return nil
}

// admit returns the set a new series of metric is kept under, given the n series it has: attrs, or the
// overflow set once the metric is at its limit.
func (s *Store) admit(ctx context.Context, metric string, attrs attribute.Set, n int) attribute.Set {
	if !attrs.Equals(&overflowSet) && n < s.limit-1 {
		return attrs
	}
	s.overflow[metric]++
	s.warnOnce(ctx, "limit:"+metric, "metric reached its cardinality limit: new series merge into otel.metric.overflow=true; raise --metrics-cardinality-limit or set --metrics-aggregation",
		"metric", metric, "limit", s.limit)
	return overflowSet
}

func (s *Store) warnOnce(ctx context.Context, key, msg string, args ...any) {
	if !s.warned[key] {
		s.warned[key] = true
		s.logger.WarnContext(ctx, msg, args...)
	}
}

// drop removes the series of the forgotten groups.
func (s *Store) drop() {
	if len(s.forget) == 0 {
		return
	}
	// Groups of one shape (the same keys) are matched with one projection per series.
	shapes := map[string]*shape{}
	for _, g := range s.forget {
		ks := g.ToSlice()
		names := make([]string, len(ks))
		for i, kv := range ks {
			names[i] = string(kv.Key)
		}
		id := fmt.Sprint(names)
		sh, ok := shapes[id]
		if !ok {
			sh = &shape{filter: attribute.NewAllowKeysFilter(keys(names)...), size: len(names), groups: map[attribute.Distinct]bool{}}
			shapes[id] = sh
		}
		sh.groups[g.Equivalent()] = true
	}
	gone := func(attrs attribute.Set) bool {
		for _, sh := range shapes {
			if p, _ := attrs.Filter(sh.filter); p.Len() == sh.size && sh.groups[p.Equivalent()] {
				return true
			}
		}
		return false
	}
	for _, sc := range s.scopes {
		for _, m := range sc.metrics {
			m.points.drop(gone)
		}
	}
	clear(s.forget)
}

type shape struct {
	filter attribute.Filter
	size   int
	groups map[attribute.Distinct]bool
}

// export copies the state, so readers never share memory the next collection changes.
func (s *Store) export(now time.Time) []metricdata.ScopeMetrics {
	out := make([]metricdata.ScopeMetrics, 0, len(s.scopes)+1)
	for _, sc := range s.scopes {
		sm := metricdata.ScopeMetrics{Scope: sc.scope}
		for _, m := range sc.metrics {
			if m.points.len() > 0 {
				sm.Metrics = append(sm.Metrics, metricdata.Metrics{Name: m.name, Description: m.description, Unit: m.unit, Data: m.points.export()})
			}
		}
		if len(sm.Metrics) > 0 {
			out = append(out, sm)
		}
	}
	if len(s.overflow) == 0 {
		return out
	}
	own := slices.IndexFunc(out, func(sm metricdata.ScopeMetrics) bool { return sm.Scope.Name == ScopeName })
	if own < 0 {
		own = len(out)
		out = append(out, metricdata.ScopeMetrics{Scope: instrumentation.Scope{Name: ScopeName}})
	}
	out[own].Metrics = append(out[own].Metrics, s.overflowMetric(now))
	return out
}

// overflowMetric is the cumulative counter of data points merged into overflow series, by metric.
func (s *Store) overflowMetric(now time.Time) metricdata.Metrics {
	d, _ := definition(MetricOverflow)
	sum := metricdata.Sum[int64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true}
	for name, n := range s.overflow {
		sum.DataPoints = append(sum.DataPoints, metricdata.DataPoint[int64]{
			Attributes: attribute.NewSet(attribute.String(AttrMetric, name)), StartTime: s.start, Time: now, Value: n,
		})
	}
	slices.SortFunc(sum.DataPoints, func(a, b metricdata.DataPoint[int64]) int {
		x, _ := a.Attributes.Value(AttrMetric)
		y, _ := b.Attributes.Value(AttrMetric)
		return strings.Compare(x.AsString(), y.AsString())
	})
	return metricdata.Metrics{Name: d.Name, Description: d.Description, Unit: d.Unit, Data: sum}
}

func (s *Store) scope(scope instrumentation.Scope) *scopeSeries {
	for _, sc := range s.scopes {
		if sc.scope.Name == scope.Name && sc.scope.Version == scope.Version && sc.scope.SchemaURL == scope.SchemaURL {
			return sc
		}
	}
	sc := &scopeSeries{scope: scope}
	s.scopes = append(s.scopes, sc)
	return sc
}

// scopeSeries are the metrics of one instrumentation scope, in the order first collected.
type scopeSeries struct {
	scope   instrumentation.Scope
	metrics []*metricSeries
}

// metric returns the series of md's metric, created on first sight; nil for an aggregation not kept.
func (sc *scopeSeries) metric(md metricdata.Metrics) *metricSeries {
	for _, m := range sc.metrics {
		if m.name == md.Name {
			m.description, m.unit = md.Description, md.Unit
			return m
		}
	}
	p := newPoints(md.Data)
	if p == nil {
		return nil
	}
	m := &metricSeries{name: md.Name, description: md.Description, unit: md.Unit, points: p}
	sc.metrics = append(sc.metrics, m)
	return m
}

type metricSeries struct {
	name, description, unit string
	points                  points
}

// points are one metric's cumulative series of one aggregation type.
type points interface {
	// begin starts a collection.
	begin()
	// merge adds one collection's delta data; false when data is of another type. admit picks the set a new
	// series is kept under, given how many the metric has.
	merge(data metricdata.Aggregation, admit func(attribute.Set, int) attribute.Set) bool
	drop(gone func(attribute.Set) bool)
	len() int
	export() metricdata.Aggregation
}

func newPoints(data metricdata.Aggregation) points {
	switch data.(type) {
	case metricdata.Sum[int64]:
		return &sums[int64]{}
	case metricdata.Sum[float64]:
		return &sums[float64]{}
	case metricdata.Histogram[int64]:
		return &histograms[int64]{}
	case metricdata.Histogram[float64]:
		return &histograms[float64]{}
	case metricdata.Gauge[int64]:
		return &gauges[int64]{}
	case metricdata.Gauge[float64]:
		return &gauges[float64]{}
	}
	return nil
}

// series holds points by attribute set, each created at most once.
type series[P any] map[attribute.Distinct]*P

// get returns attrs' point, creating it with fresh under the set admit allows; the overflow set always goes
// through admit, so every data point merged into it is counted.
func (ss *series[P]) get(attrs attribute.Set, admit func(attribute.Set, int) attribute.Set, fresh func(attribute.Set) *P) *P {
	if *ss == nil {
		*ss = series[P]{}
	}
	m := *ss
	if p, ok := m[attrs.Equivalent()]; ok && !attrs.Equals(&overflowSet) {
		return p
	}
	n := len(m)
	if _, ok := m[overflowSet.Equivalent()]; ok {
		n--
	}
	attrs = admit(attrs, n)
	if p, ok := m[attrs.Equivalent()]; ok {
		return p
	}
	p := fresh(attrs)
	m[attrs.Equivalent()] = p
	return p
}

func (ss series[P]) drop(attrs func(*P) attribute.Set, gone func(attribute.Set) bool) {
	maps := map[attribute.Distinct]*P(ss)
	for k, p := range maps {
		if gone(attrs(p)) {
			delete(maps, k)
		}
	}
}

// values are the points of counters and gauges.
type values[N int64 | float64] struct {
	pts series[metricdata.DataPoint[N]]
}

func (v *values[N]) drop(gone func(attribute.Set) bool) {
	v.pts.drop(func(p *metricdata.DataPoint[N]) attribute.Set { return p.Attributes }, gone)
}

func (v *values[N]) len() int { return len(v.pts) }

func (v *values[N]) copies() []metricdata.DataPoint[N] {
	out := make([]metricdata.DataPoint[N], 0, len(v.pts))
	for _, p := range v.pts {
		dp := *p
		dp.Exemplars = slices.Clone(p.Exemplars)
		out = append(out, dp)
	}
	return out
}

// sums are counters: each collection's delta adds to the total.
type sums[N int64 | float64] struct {
	values[N]
	monotonic bool
}

func (s *sums[N]) begin() {}

func (s *sums[N]) merge(data metricdata.Aggregation, admit func(attribute.Set, int) attribute.Set) bool {
	d, ok := data.(metricdata.Sum[N])
	if !ok {
		return false
	}
	s.monotonic = d.IsMonotonic
	for _, dp := range d.DataPoints {
		p := s.pts.get(dp.Attributes, admit, func(a attribute.Set) *metricdata.DataPoint[N] {
			return &metricdata.DataPoint[N]{Attributes: a, StartTime: dp.StartTime}
		})
		p.Value += dp.Value
		p.Time = dp.Time
		if len(dp.Exemplars) > 0 {
			p.Exemplars = traceOnly(dp.Exemplars)
		}
	}
	return true
}

func (s *sums[N]) export() metricdata.Aggregation {
	return metricdata.Sum[N]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: s.monotonic, DataPoints: s.copies()}
}

// histograms add each collection's bucket counts, count and sum, and keep the extremes.
type histograms[N int64 | float64] struct {
	pts series[metricdata.HistogramDataPoint[N]]
}

func (h *histograms[N]) begin() {}

func (h *histograms[N]) merge(data metricdata.Aggregation, admit func(attribute.Set, int) attribute.Set) bool {
	d, ok := data.(metricdata.Histogram[N])
	if !ok {
		return false
	}
	for _, dp := range d.DataPoints {
		fresh := func(a attribute.Set) *metricdata.HistogramDataPoint[N] {
			return &metricdata.HistogramDataPoint[N]{
				Attributes: a, StartTime: dp.StartTime,
				Bounds: slices.Clone(dp.Bounds), BucketCounts: make([]uint64, len(dp.BucketCounts)),
			}
		}
		p := h.pts.get(dp.Attributes, admit, fresh)
		if !slices.Equal(p.Bounds, dp.Bounds) || len(p.BucketCounts) != len(dp.BucketCounts) {
			*p = *fresh(p.Attributes) // new buckets: the series starts over
		}
		for i, c := range dp.BucketCounts {
			p.BucketCounts[i] += c
		}
		p.Count += dp.Count
		p.Sum += dp.Sum
		p.Min = extreme(p.Min, dp.Min, func(a, b N) bool { return a < b })
		p.Max = extreme(p.Max, dp.Max, func(a, b N) bool { return a > b })
		p.Time = dp.Time
		p.Exemplars = bucketExemplars(p.Bounds, p.Exemplars, dp.Exemplars)
	}
	return true
}

func (h *histograms[N]) drop(gone func(attribute.Set) bool) {
	h.pts.drop(func(p *metricdata.HistogramDataPoint[N]) attribute.Set { return p.Attributes }, gone)
}

func (h *histograms[N]) len() int { return len(h.pts) }

// export shares each point's bounds, which are replaced, never changed, and copies the counts into one array.
func (h *histograms[N]) export() metricdata.Aggregation {
	out := metricdata.Histogram[N]{Temporality: metricdata.CumulativeTemporality}
	out.DataPoints = make([]metricdata.HistogramDataPoint[N], 0, len(h.pts))
	total := 0
	for _, p := range h.pts {
		total += len(p.BucketCounts)
	}
	counts := make([]uint64, 0, total)
	for _, p := range h.pts {
		dp := *p
		start := len(counts)
		counts = append(counts, p.BucketCounts...)
		dp.BucketCounts = counts[start:len(counts):len(counts)]
		dp.Exemplars = slices.Clone(p.Exemplars)
		out.DataPoints = append(out.DataPoints, dp)
	}
	return out
}

// extreme is the more extreme of two optional values by better.
func extreme[N int64 | float64](old, cur metricdata.Extrema[N], better func(a, b N) bool) metricdata.Extrema[N] {
	o, ok := old.Value()
	c, cok := cur.Value()
	if !cok || (ok && !better(c, o)) {
		return old
	}
	return cur
}

// bucketExemplars keeps the latest exemplar of each bucket.
func bucketExemplars[N int64 | float64](bounds []float64, old, cur []metricdata.Exemplar[N]) []metricdata.Exemplar[N] {
	if len(cur) == 0 {
		return old
	}
	bucket := func(e metricdata.Exemplar[N]) int { return sort.SearchFloat64s(bounds, float64(e.Value)) }
	out := traceOnly(cur)
	for _, e := range old {
		if !slices.ContainsFunc(out, func(c metricdata.Exemplar[N]) bool { return bucket(c) == bucket(e) }) {
			out = append(out, e)
		}
	}
	return out
}

// traceOnly copies exemplars without their filtered attributes: the trace names the object and commit, and
// the attributes a view summed away would push OpenMetrics past its 128-character exemplar label limit.
func traceOnly[N int64 | float64](es []metricdata.Exemplar[N]) []metricdata.Exemplar[N] {
	out := make([]metricdata.Exemplar[N], len(es))
	for i, e := range es {
		out[i] = metricdata.Exemplar[N]{Time: e.Time, Value: e.Value, SpanID: slices.Clone(e.SpanID), TraceID: slices.Clone(e.TraceID)}
	}
	return out
}

// gauges hold the values observed by the latest collection only: an object no longer observed has no series.
type gauges[N int64 | float64] struct {
	values[N]
}

func (g *gauges[N]) begin() { clear(g.pts) }

func (g *gauges[N]) merge(data metricdata.Aggregation, admit func(attribute.Set, int) attribute.Set) bool {
	d, ok := data.(metricdata.Gauge[N])
	if !ok {
		return false
	}
	for _, dp := range d.DataPoints {
		p := g.pts.get(dp.Attributes, admit, func(a attribute.Set) *metricdata.DataPoint[N] {
			return &metricdata.DataPoint[N]{Attributes: a}
		})
		p.StartTime, p.Time, p.Value, p.Exemplars = dp.StartTime, dp.Time, dp.Value, traceOnly(dp.Exemplars)
	}
	return true
}

func (g *gauges[N]) export() metricdata.Aggregation {
	return metricdata.Gauge[N]{DataPoints: g.copies()}
}
