// Package telemetrytest gives other packages' tests a telemetry.Telemetry whose
// metrics, spans and logs they can read back.
package telemetrytest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// Telemetry is a telemetry.Telemetry backed by in-memory readers.
type Telemetry struct {
	*telemetry.Telemetry
	// Metrics records into MeterProvider; its ForgetObject works as in the controller.
	Metrics *telemetry.Metrics
	// Reader collects MeterProvider's metrics on demand, cumulative, from its Store as an exporter does.
	Reader *sdkmetric.ManualReader
	// Spans holds every ended span (exported synchronously).
	Spans *tracetest.InMemoryExporter

	logs *syncBuffer
}

// New builds a Telemetry logging JSON at trace level into memory, with the
// default metric limit and aggregation; it is shut down when tb ends.
func New(tb testing.TB) *Telemetry {
	tb.Helper()
	return NewWith(tb, telemetry.MetricsConfig{})
}

// NewWith is New with the cardinality limit and aggregation of cfg.
func NewWith(tb testing.TB, cfg telemetry.MetricsConfig) *Telemetry {
	tb.Helper()
	logs := &syncBuffer{}
	logger := slog.New(telemetry.WithTraceIDs(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: telemetry.LevelTrace})))
	mp, err := telemetry.NewMeterProvider(cfg, logger)
	if err != nil {
		tb.Fatal(err)
	}
	reader := sdkmetric.NewManualReader(sdkmetric.WithProducer(mp.Store))
	reg := prometheus.NewRegistry()
	prom, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithProducer(mp.Store))
	if err != nil {
		tb.Fatal(err)
	}
	export := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithReader(prom))
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans), sdktrace.WithIDGenerator(telemetry.IDGenerator()))

	m, err := telemetry.NewMetrics(mp)
	if err != nil {
		tb.Fatal(err)
	}
	t := &Telemetry{
		Telemetry: &telemetry.Telemetry{
			Logger:         logger,
			MeterProvider:  mp,
			TracerProvider: tp,
			MetricsHandler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
			Gatherer:       reg,
			Shutdown: func(ctx context.Context) error {
				return errors.Join(tp.Shutdown(ctx), export.Shutdown(ctx), mp.Shutdown(ctx))
			},
		},
		Metrics: m,
		Reader:  reader,
		Spans:   spans,
		logs:    logs,
	}
	tb.Cleanup(func() { _ = t.Shutdown(context.Background()) })
	return t
}

// Collect reads every metric recorded so far.
func (t *Telemetry) Collect(tb testing.TB) metricdata.ResourceMetrics {
	tb.Helper()
	var rm metricdata.ResourceMetrics
	if err := t.Reader.Collect(context.Background(), &rm); err != nil {
		tb.Fatal(err)
	}
	return rm
}

// Counter sums the counter name over data points carrying all of attrs.
func (t *Telemetry) Counter(tb testing.TB, name string, attrs ...attribute.KeyValue) int64 {
	tb.Helper()
	return sumPoints(tb, t, name, "an int64 counter", func(d metricdata.Aggregation) ([]metricdata.DataPoint[int64], bool) {
		s, ok := d.(metricdata.Sum[int64])
		return s.DataPoints, ok
	}, attrs)
}

// Histogram returns the sample count and sum of histogram name over data
// points carrying all of attrs.
func (t *Telemetry) Histogram(tb testing.TB, name string, attrs ...attribute.KeyValue) (count uint64, sum float64) {
	tb.Helper()
	if m, ok := t.find(tb, name); ok {
		h, ok := m.Data.(metricdata.Histogram[float64])
		if !ok {
			tb.Fatalf("%s is %T, not a float64 histogram", name, m.Data)
		}
		for _, dp := range h.DataPoints {
			if matches(dp.Attributes, attrs) {
				count += dp.Count
				sum += dp.Sum
			}
		}
	}
	return count, sum
}

// Gauge sums the gauge name over data points carrying all of attrs.
func (t *Telemetry) Gauge(tb testing.TB, name string, attrs ...attribute.KeyValue) float64 {
	tb.Helper()
	return sumPoints(tb, t, name, "a float64 gauge", func(d metricdata.Aggregation) ([]metricdata.DataPoint[float64], bool) {
		g, ok := d.(metricdata.Gauge[float64])
		return g.DataPoints, ok
	}, attrs)
}

// sumPoints sums the values of metric name's data points carrying all of attrs; points extracts them, failing
// the test when the metric is not what (e.g. "an int64 counter").
func sumPoints[N int64 | float64](tb testing.TB, t *Telemetry, name, what string, points func(metricdata.Aggregation) ([]metricdata.DataPoint[N], bool), attrs []attribute.KeyValue) N {
	tb.Helper()
	var total N
	m, ok := t.find(tb, name)
	if !ok {
		return total
	}
	dps, ok := points(m.Data)
	if !ok {
		tb.Fatalf("%s is %T, not %s", name, m.Data, what)
	}
	for _, dp := range dps {
		if matches(dp.Attributes, attrs) {
			total += dp.Value
		}
	}
	return total
}

// Logs returns every log record so far, decoded from JSON.
func (t *Telemetry) Logs(tb testing.TB) []map[string]any {
	tb.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(t.logs.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			tb.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func (t *Telemetry) find(tb testing.TB, name string) (metricdata.Metrics, bool) {
	tb.Helper()
	for _, sm := range t.Collect(tb).ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

func matches(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
