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
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
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
	// Endpoint is the OTLP collector, host:port. Left at [DefaultEndpoint] (or
	// empty) and not given as a flag, the standard OTEL_EXPORTER_OTLP_*ENDPOINT
	// variables name it, and its TLS, when set. The other OTEL_EXPORTER_OTLP_*
	// variables (protocol, headers, timeout, compression) always apply.
	Endpoint string
	// Insecure turns off TLS to the collector named by Endpoint. Setup uses it
	// as given; DefaultConfig and BindFlags default it to true, as the seed does.
	Insecure bool
	// endpointSet records that the flag (or its variable) gave Endpoint.
	endpointSet bool
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
		Endpoint:    DefaultEndpoint,
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
	fs.Var(endpointFlag{c}, "telemetry-endpoint", "OTLP collector (host:port); not given: OTEL_EXPORTER_OTLP_ENDPOINT when set")
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
		cfg.Endpoint = DefaultEndpoint
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

// DefaultEndpoint is the OTLP gRPC collector when neither --telemetry-endpoint nor the OTEL_EXPORTER_OTLP_*
// variables name one.
const DefaultEndpoint = "localhost:4317"

// endpointFlag is --telemetry-endpoint: it records that it was given, so that only then it wins over
// OTEL_EXPORTER_OTLP_ENDPOINT.
type endpointFlag struct{ c *Config }

func (f endpointFlag) String() string {
	if f.c == nil {
		return ""
	}
	return f.c.Endpoint
}

func (f endpointFlag) Set(s string) error {
	f.c.Endpoint, f.c.endpointSet = s, true
	return nil
}

func (endpointFlag) Type() string { return "string" }

// OTLP protocols, as OTEL_EXPORTER_OTLP_PROTOCOL names them.
const (
	protocolGRPC = "grpc"
	protocolHTTP = "http/protobuf"
)

// otlpTarget says how one signal is exported: its protocol, and the endpoint when the tracker's own
// configuration names it; an empty endpoint leaves it, and its TLS, to the OTEL_EXPORTER_OTLP_* variables.
type otlpTarget struct {
	protocol string
	endpoint string
	insecure bool
}

// otlpTarget reads the standard variables for signal (TRACES, METRICS or LOGS): the signal's own first.
func (c Config) otlpTarget(signal string) (otlpTarget, error) {
	t := otlpTarget{protocol: firstEnv("OTEL_EXPORTER_OTLP_"+signal+"_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")}
	switch t.protocol {
	case "":
		t.protocol = protocolGRPC
	case protocolGRPC, protocolHTTP:
	default:
		return t, fmt.Errorf("telemetry: OTLP protocol %q for %s: must be %s or %s", t.protocol, strings.ToLower(signal), protocolGRPC, protocolHTTP)
	}
	switch {
	case c.endpointSet || (c.Endpoint != "" && c.Endpoint != DefaultEndpoint):
		t.endpoint, t.insecure = c.Endpoint, c.Insecure
	case firstEnv("OTEL_EXPORTER_OTLP_"+signal+"_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT") != "":
		// The variable's URL scheme and OTEL_EXPORTER_OTLP_INSECURE say whether TLS is used.
	default:
		// The exporter's default: localhost:4317 (gRPC) or localhost:4318 (HTTP).
		t.insecure = c.Insecure
	}
	return t, nil
}

// firstEnv is the first of the variables that is set.
func firstEnv(names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(os.Getenv(n)); v != "" {
			return v
		}
	}
	return ""
}

// targetOptions are one exporter's options for t: its endpoint and plaintext, when the tracker names them.
func targetOptions[O any](t otlpTarget, endpoint func(string) O, insecure func() O) []O {
	var o []O
	if t.endpoint != "" {
		o = append(o, endpoint(t.endpoint))
	}
	if t.insecure {
		o = append(o, insecure())
	}
	return o
}

// traceExporter is the OTLP span exporter cfg and the OTEL_EXPORTER_OTLP_* variables describe.
func (c Config) traceExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	t, err := c.otlpTarget("TRACES")
	if err != nil {
		return nil, err
	}
	var exp sdktrace.SpanExporter
	if t.protocol == protocolHTTP {
		exp, err = otlptracehttp.New(ctx, targetOptions(t, otlptracehttp.WithEndpoint, otlptracehttp.WithInsecure)...)
	} else {
		exp, err = otlptracegrpc.New(ctx, targetOptions(t, otlptracegrpc.WithEndpoint, otlptracegrpc.WithInsecure)...)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP trace exporter: %w", err)
	}
	return exp, nil
}

// metricExporter is the OTLP metric exporter cfg and the OTEL_EXPORTER_OTLP_* variables describe.
func (c Config) metricExporter(ctx context.Context) (sdkmetric.Exporter, error) {
	t, err := c.otlpTarget("METRICS")
	if err != nil {
		return nil, err
	}
	var exp sdkmetric.Exporter
	if t.protocol == protocolHTTP {
		exp, err = otlpmetrichttp.New(ctx, targetOptions(t, otlpmetrichttp.WithEndpoint, otlpmetrichttp.WithInsecure)...)
	} else {
		exp, err = otlpmetricgrpc.New(ctx, targetOptions(t, otlpmetricgrpc.WithEndpoint, otlpmetricgrpc.WithInsecure)...)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP metric exporter: %w", err)
	}
	return exp, nil
}

// logExporter is the OTLP log exporter cfg and the OTEL_EXPORTER_OTLP_* variables describe.
func (c Config) logExporter(ctx context.Context) (sdklog.Exporter, error) {
	t, err := c.otlpTarget("LOGS")
	if err != nil {
		return nil, err
	}
	var exp sdklog.Exporter
	if t.protocol == protocolHTTP {
		exp, err = otlploghttp.New(ctx, targetOptions(t, otlploghttp.WithEndpoint, otlploghttp.WithInsecure)...)
	} else {
		exp, err = otlploggrpc.New(ctx, targetOptions(t, otlploggrpc.WithEndpoint, otlploggrpc.WithInsecure)...)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP log exporter: %w", err)
	}
	return exp, nil
}
