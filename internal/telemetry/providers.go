package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"

	"github.com/prometheus/client_golang/prometheus"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/redact/redacttrace"
)

// newTracerProvider always returns an SDK provider so spans get IDs that logs
// and exemplars can carry, even when no exporter is configured (stdout-logs).
func newTracerProvider(ctx context.Context, cfg Config, mode Mode, res *resource.Resource, stdout *syncWriter) (*sdktrace.TracerProvider, error) {
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithIDGenerator(IDGenerator())}
	if mode.StdoutAll() {
		exp, err := stdouttrace.New(stdouttrace.WithWriter(stdout))
		if err != nil {
			return nil, fmt.Errorf("telemetry: stdout trace exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(redacttrace.Exporter(exp)))
	}
	if mode.OTLP() {
		exp, err := cfg.traceExporter(ctx)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(redacttrace.Exporter(exp)))
	}
	return sdktrace.NewTracerProvider(opts...), nil
}

// DefaultCardinalityLimit is the series one metric may keep: room for 10,000 objects with, on the counters that
// also carry a reason, stage or status, two values each.
const DefaultCardinalityLimit = 20000

// MetricsConfig sizes the metric series.
type MetricsConfig struct {
	// CardinalityLimit is the most series one metric keeps, its overflow series included; 0 means
	// [DefaultCardinalityLimit].
	CardinalityLimit int
	// Aggregation is the level per-object series are summed to; empty means [AggregateObject].
	Aggregation Aggregation
}

func (c MetricsConfig) withDefaults() MetricsConfig {
	if c.CardinalityLimit == 0 {
		c.CardinalityLimit = DefaultCardinalityLimit
	}
	if c.Aggregation == "" {
		c.Aggregation = AggregateObject
	}
	return c
}

// Validate checks the limit and the aggregation level; errors name the flag.
func (c MetricsConfig) Validate() error {
	var errs []error
	if c.CardinalityLimit < 1 {
		errs = append(errs, fmt.Errorf("invalid --metrics-cardinality-limit %d: must be at least 1", c.CardinalityLimit))
	}
	if _, err := ParseAggregation(string(c.Aggregation)); err != nil {
		errs = append(errs, fmt.Errorf("--metrics-aggregation: %w", err))
	}
	return errors.Join(errs...)
}

// MeterProvider is what the tracker's instruments record into: an SDK provider whose only reader is its
// Store's, with the cardinality limit and the aggregation views of a [MetricsConfig]. Readers and exporters
// are registered on another provider, with the Store as their producer.
type MeterProvider struct {
	*sdkmetric.MeterProvider
	// Store serves everything recorded, cumulatively: give it to every reader with sdkmetric.WithProducer
	// (otelprom.WithProducer for the Prometheus exporter).
	Store       *Store
	aggregation Aggregation
}

// NewMeterProvider builds a MeterProvider; logger receives the cardinality-limit warnings.
func NewMeterProvider(cfg MetricsConfig, logger *slog.Logger) (*MeterProvider, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	delta := sdkmetric.NewManualReader(sdkmetric.WithTemporalitySelector(func(sdkmetric.InstrumentKind) metricdata.Temporality {
		return metricdata.DeltaTemporality
	}))
	// The SDK's limit holds one collection interval; twice the Store's, so that a burst of new series cannot
	// push the samples of known ones into overflow before the Store picks which series it keeps.
	sdkLimit := min(cfg.CardinalityLimit, math.MaxInt/2) * 2
	opts := append([]sdkmetric.Option{sdkmetric.WithReader(delta), sdkmetric.WithCardinalityLimit(sdkLimit)}, cfg.Aggregation.views()...)
	return &MeterProvider{
		MeterProvider: sdkmetric.NewMeterProvider(opts...),
		Store:         newStore(delta, cfg.CardinalityLimit, logger),
		aggregation:   cfg.Aggregation,
	}, nil
}

// newMeterProvider returns the instruments' provider and the shutdown of both providers. Exporters live on a
// provider without instruments whose every reader produces from the Store: the Prometheus one, on a registry
// of its own, always.
func newMeterProvider(ctx context.Context, cfg Config, mode Mode, res *resource.Resource, stdout *syncWriter, logger *slog.Logger) (*MeterProvider, prometheus.Gatherer, func(context.Context) error, error) {
	mp, err := NewMeterProvider(cfg.MetricsConfig, logger)
	if err != nil {
		return nil, nil, nil, err
	}
	reg := prometheus.NewRegistry()
	prom, err := otelprom.New(
		otelprom.WithRegisterer(reg),
		otelprom.WithTranslationStrategy(promStrategy),
		// One scope (ours): otel_scope_* labels would only add noise.
		otelprom.WithoutScopeInfo(),
		otelprom.WithProducer(mp.Store),
	)
	if err != nil {
		return nil, nil, nil, errors.Join(fmt.Errorf("telemetry: Prometheus exporter: %w", err), mp.Shutdown(ctx))
	}
	opts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(prom)}
	if mode.StdoutAll() {
		exp, err := stdoutmetric.New(stdoutmetric.WithWriter(stdout))
		if err != nil {
			return nil, nil, nil, errors.Join(fmt.Errorf("telemetry: stdout metric exporter: %w", err), mp.Shutdown(ctx))
		}
		opts = append(opts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithProducer(mp.Store))))
	}
	if mode.OTLP() {
		exp, err := cfg.metricExporter(ctx)
		if err != nil {
			return nil, nil, nil, errors.Join(err, mp.Shutdown(ctx))
		}
		opts = append(opts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithProducer(mp.Store))))
	}
	export := sdkmetric.NewMeterProvider(opts...)
	// Exporters first: their final collection reads the instruments' provider.
	shutdown := func(ctx context.Context) error { return errors.Join(export.Shutdown(ctx), mp.Shutdown(ctx)) }
	return mp, reg, shutdown, nil
}

// newLoggerProvider exports the OTel log bridge's records over OTLP.
func newLoggerProvider(ctx context.Context, cfg Config, res *resource.Resource) (*sdklog.LoggerProvider, error) {
	exp, err := cfg.logExporter(ctx)
	if err != nil {
		return nil, err
	}
	return sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(sdklog.NewBatchProcessor(exp))), nil
}
