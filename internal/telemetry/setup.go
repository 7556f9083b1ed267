package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"
	"go.opentelemetry.io/contrib/bridges/otelslog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/redact"
)

// Mode says where logs, metrics and traces go. Prometheus /metrics is served
// in every mode. The modes and their meaning follow grafana/flux-commit-tracker.
type Mode string

// Telemetry modes.
const (
	// ModeOTLP sends logs, metrics and traces over OTLP gRPC; nothing on stdout.
	ModeOTLP Mode = "otlp"
	// ModeStdoutLogs writes logs to stdout; no OTLP. The default.
	ModeStdoutLogs Mode = "stdout-logs"
	// ModeStdoutLogsOTLP writes logs to stdout and sends all three signals
	// over OTLP.
	ModeStdoutLogsOTLP Mode = "stdout-logs+otlp"
	// ModeStdoutAll writes logs, metrics and traces to stdout (noisy); no OTLP.
	// Metrics (every minute and at shutdown) and spans are JSON lines between
	// the log lines, whatever the log level.
	ModeStdoutAll Mode = "stdout-all"
	// ModeStdoutAllOTLP is ModeStdoutAll plus all three signals over OTLP.
	ModeStdoutAllOTLP Mode = "stdout-all+otlp"
)

// Modes lists every mode, default first.
var Modes = []Mode{ModeStdoutLogs, ModeStdoutLogsOTLP, ModeStdoutAll, ModeStdoutAllOTLP, ModeOTLP}

// OTLP reports whether the mode sends signals over OTLP.
func (m Mode) OTLP() bool { return strings.HasSuffix(string(m), "otlp") }

// StdoutLogs reports whether the mode writes logs to stdout.
func (m Mode) StdoutLogs() bool { return strings.HasPrefix(string(m), "stdout-") }

// StdoutAll reports whether the mode also writes metrics and traces to stdout.
func (m Mode) StdoutAll() bool { return strings.HasPrefix(string(m), "stdout-all") }

// String implements pflag.Value.
func (m Mode) String() string { return string(m) }

// Set implements pflag.Value.
func (m *Mode) Set(s string) error { return setEnum(m, ParseMode, s) }

// Type implements pflag.Value.
func (m Mode) Type() string { return "mode" }

// ParseMode parses a telemetry mode.
func ParseMode(s string) (Mode, error) { return parseEnum("telemetry mode", s, Modes) }

var logLevels = []struct {
	name  string
	level slog.Level
}{{"trace", LevelTrace}, {"debug", slog.LevelDebug}, {"info", slog.LevelInfo}, {"warn", slog.LevelWarn}, {"error", slog.LevelError}}

// ParseLogLevel parses trace, debug, info, warn or error (any case).
func ParseLogLevel(s string) (slog.Level, error) {
	names := make([]string, len(logLevels))
	for i, l := range logLevels {
		if strings.EqualFold(strings.TrimSpace(s), l.name) {
			return l.level, nil
		}
		names[i] = l.name
	}
	return 0, fmt.Errorf("invalid log level %q: must be one of %s", s, strings.Join(names, ", "))
}

// Config configures [Setup].
type Config struct {
	Mode Mode
	// Endpoint is the OTLP gRPC collector, host:port (default localhost:4317).
	// The standard OTEL_EXPORTER_OTLP_* variables still apply for the rest.
	Endpoint string
	// Insecure turns off TLS to the collector. Setup uses it as given;
	// DefaultConfig and BindFlags default it to true, as the seed does.
	Insecure bool
	// LogLevel is trace, debug, info (default), warn or error.
	LogLevel string
	// ServiceName defaults to flux-commit-tracker.
	ServiceName, ServiceVersion string
	// ClusterName is the k8s.cluster.name resource attribute, when set.
	ClusterName string
	// Stdout receives stdout logs, metrics and traces (default os.Stdout).
	Stdout io.Writer
	// IsTerminal picks a text log handler over JSON.
	IsTerminal bool
	// MetricsConfig sizes the metric series.
	MetricsConfig
}

// DefaultConfig is the configuration BindFlags starts from.
func DefaultConfig() Config {
	return Config{
		Mode:        ModeStdoutLogs,
		Endpoint:    "localhost:4317",
		Insecure:    true,
		LogLevel:    "info",
		ServiceName: "flux-commit-tracker",
		MetricsConfig: MetricsConfig{
			CardinalityLimit: DefaultCardinalityLimit,
			Aggregation:      AggregateObject,
		},
	}
}

// EnvNames maps each telemetry flag to the environment variable that sets it when the flag is not given.
var EnvNames = map[string]string{
	"log-level":                 "LOG_LEVEL",
	"telemetry-mode":            "TELEMETRY_MODE",
	"telemetry-endpoint":        "TELEMETRY_ENDPOINT",
	"telemetry-insecure":        "TELEMETRY_INSECURE",
	"metrics-cardinality-limit": "METRICS_CARDINALITY_LIMIT",
	"metrics-aggregation":       "METRICS_AGGREGATION",
}

// BindFlags registers the telemetry flags, defaulting to c's values.
func (c *Config) BindFlags(fs *pflag.FlagSet) {
	fs.Var(&c.Mode, "telemetry-mode", "Telemetry mode: "+joinEnum(Modes))
	fs.StringVar(&c.Endpoint, "telemetry-endpoint", c.Endpoint, "OTLP gRPC endpoint (host:port)")
	fs.BoolVar(&c.Insecure, "telemetry-insecure", c.Insecure, "Use an insecure (plaintext) OTLP connection")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "Log level: trace, debug, info, warn, error")
	fs.IntVar(&c.CardinalityLimit, "metrics-cardinality-limit", c.CardinalityLimit,
		"Most series one metric keeps; past it new series merge into one otel_metric_overflow=\"true\" series, logged once and counted by "+MetricOverflow)
	fs.Var(&c.Aggregation, "metrics-aggregation",
		"Level of the per-object metric series: object, namespace (kind, name and repository summed away) or cluster (the namespace too)")
}

// Validate checks the mode, log level, cardinality limit and aggregation level.
func (c *Config) Validate() error {
	var errs []error
	if c.Mode != "" {
		if _, err := ParseMode(string(c.Mode)); err != nil {
			errs = append(errs, err)
		}
	}
	if c.LogLevel != "" {
		if _, err := ParseLogLevel(c.LogLevel); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.MetricsConfig.withDefaults().Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Telemetry is what [Setup] builds. The providers are not installed as
// OpenTelemetry globals; pass them on (or set the globals in main).
type Telemetry struct {
	Logger *slog.Logger
	// MeterProvider is a *[MeterProvider]: [NewMetrics] on it forgets deleted objects' series.
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider
	// MetricsHandler serves Gatherer in the Prometheus text format, or
	// OpenMetrics (with exemplars) when the scraper asks for it.
	MetricsHandler http.Handler
	// Gatherer is the exporter's own registry: only the tracker's OTel
	// metrics and target_info, no Go runtime collectors. Combine it with
	// controller-runtime's registry via prometheus.Gatherers if wanted.
	Gatherer prometheus.Gatherer
	// Shutdown flushes and stops every provider, concurrently, and joins
	// their errors. Later calls return the first call's result.
	Shutdown func(context.Context) error
}

// Setup builds loggers, providers and exporters for cfg.Mode. OTLP exporters
// connect lazily, so Setup does not wait for (or fail on) a missing collector.
func Setup(ctx context.Context, cfg Config) (_ *Telemetry, err error) {
	if cfg.Mode == "" {
		cfg.Mode = ModeStdoutLogs
	}
	mode, err := ParseMode(string(cfg.Mode))
	if err != nil {
		return nil, err
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "info"
	}
	level, err := ParseLogLevel(cfg.LogLevel)
	if err != nil {
		return nil, err
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = "localhost:4317"
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = "flux-commit-tracker"
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	stdout := &syncWriter{w: cfg.Stdout}

	// Shut down whatever was built if a later step fails.
	var shutdowns []func(context.Context) error
	defer func() {
		if err != nil {
			err = errors.Join(err, shutdownAll(ctx, shutdowns))
		}
	}()

	res, err := newResource(ctx, cfg)
	if err != nil {
		return nil, err
	}

	tp, err := newTracerProvider(ctx, cfg, mode, res, stdout)
	if err != nil {
		return nil, err
	}
	shutdowns = append(shutdowns, tp.Shutdown)

	var handlers []slog.Handler
	if mode.StdoutLogs() {
		opts := &slog.HandlerOptions{Level: level, ReplaceAttr: replaceLevel}
		var h slog.Handler = slog.NewJSONHandler(stdout, opts)
		if cfg.IsTerminal {
			h = slog.NewTextHandler(stdout, opts)
		}
		handlers = append(handlers, traceHandler{h})
	}
	if mode.OTLP() {
		lp, err := newLoggerProvider(ctx, cfg, res)
		if err != nil {
			return nil, err
		}
		shutdowns = append(shutdowns, lp.Shutdown)
		bridge := otelslog.NewHandler(ScopeName, otelslog.WithLoggerProvider(lp), otelslog.WithVersion(cfg.ServiceVersion))
		handlers = append(handlers, levelHandler{level, bridge})
	}
	logger := slog.New(redact.Handler(slog.NewMultiHandler(handlers...)))

	mp, gatherer, mpShutdown, err := newMeterProvider(ctx, cfg, mode, res, stdout, logger)
	if err != nil {
		return nil, err
	}
	shutdowns = append(shutdowns, mpShutdown)

	var (
		once    sync.Once
		downErr error
	)
	return &Telemetry{
		Logger:         logger,
		MeterProvider:  mp,
		TracerProvider: tp,
		MetricsHandler: promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelError),
			ErrorHandling:     promhttp.ContinueOnError,
			EnableOpenMetrics: true,
		}),
		Gatherer: gatherer,
		Shutdown: func(ctx context.Context) error {
			once.Do(func() { downErr = shutdownAll(ctx, shutdowns) })
			return downErr
		},
	}, nil
}

// shutdownAll stops the providers concurrently, so a collector that is down
// cannot spend the whole deadline before the stdout exporters flush. (Within a
// provider, stdout exporters are registered before OTLP ones for the same
// reason.)
func shutdownAll(ctx context.Context, shutdowns []func(context.Context) error) error {
	errs := make([]error, len(shutdowns))
	var wg sync.WaitGroup
	for i, s := range shutdowns {
		wg.Go(func() { errs[i] = s(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func newResource(ctx context.Context, cfg Config) (*resource.Resource, error) {
	attrs := []resource.Option{resource.WithTelemetrySDK()}
	kvs := []attribute.KeyValue{semconv.ServiceName(cfg.ServiceName)}
	if cfg.ServiceVersion != "" {
		kvs = append(kvs, semconv.ServiceVersion(cfg.ServiceVersion))
	}
	if cfg.ClusterName != "" {
		kvs = append(kvs, semconv.K8SClusterName(cfg.ClusterName))
	}
	// OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME come last and win.
	attrs = append(attrs, resource.WithAttributes(kvs...), resource.WithFromEnv())
	res, err := resource.New(ctx, attrs...)
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	return res, nil
}
