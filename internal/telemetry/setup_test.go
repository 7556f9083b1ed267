package telemetry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"
)

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Mode
		err  bool
	}{
		{"otlp", ModeOTLP, false},
		{"stdout-logs", ModeStdoutLogs, false},
		{"stdout-logs+otlp", ModeStdoutLogsOTLP, false},
		{"stdout-all", ModeStdoutAll, false},
		{"STDOUT-ALL+OTLP", ModeStdoutAllOTLP, false},
		{" otlp ", ModeOTLP, false},
		{"", "", true},
		{"stdout", "", true},
		{"otlp+stdout-logs", "", true},
		{"prometheus", "", true},
	} {
		got, err := ParseMode(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseMode(%q) = %q, %v", tc.in, got, err)
		}
		if err != nil && !strings.Contains(err.Error(), "must be one of stdout-logs, stdout-logs+otlp, stdout-all, stdout-all+otlp, otlp") {
			t.Errorf("ParseMode(%q) error %q does not name the modes", tc.in, err)
		}
	}
}

func TestModeSignals(t *testing.T) {
	for _, tc := range []struct {
		mode                     Mode
		otlp, stdoutLogs, stdAll bool
	}{
		{ModeOTLP, true, false, false},
		{ModeStdoutLogs, false, true, false},
		{ModeStdoutLogsOTLP, true, true, false},
		{ModeStdoutAll, false, true, true},
		{ModeStdoutAllOTLP, true, true, true},
	} {
		if tc.mode.OTLP() != tc.otlp || tc.mode.StdoutLogs() != tc.stdoutLogs || tc.mode.StdoutAll() != tc.stdAll {
			t.Errorf("%s: OTLP, StdoutLogs, StdoutAll = %v, %v, %v", tc.mode, tc.mode.OTLP(), tc.mode.StdoutLogs(), tc.mode.StdoutAll())
		}
	}
}

func TestParseLogLevel(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want slog.Level
		err  bool
	}{
		{"trace", slog.LevelDebug - 4, false},
		{"debug", slog.LevelDebug, false},
		{"INFO", slog.LevelInfo, false},
		{"warn", slog.LevelWarn, false},
		{"error", slog.LevelError, false},
		{"", 0, true},
		{"warning", 0, true},
		{"fatal", 0, true},
	} {
		got, err := ParseLogLevel(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseLogLevel(%q) = %v, %v", tc.in, got, err)
		}
		if err != nil && !strings.Contains(err.Error(), "trace, debug, info, warn, error") {
			t.Errorf("ParseLogLevel(%q) error %q does not name the levels", tc.in, err)
		}
	}
}

func TestBindFlags(t *testing.T) {
	cfg := DefaultConfig()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	cfg.BindFlags(fs)
	if err := fs.Parse([]string{"--telemetry-mode=stdout-all+otlp", "--telemetry-endpoint=otel:4317", "--telemetry-insecure=false", "--log-level=debug"}); err != nil {
		t.Fatal(err)
	}
	if cfg.Mode != ModeStdoutAllOTLP || cfg.Endpoint != "otel:4317" || cfg.Insecure || cfg.LogLevel != "debug" {
		t.Errorf("cfg = %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
	if err := fs.Parse([]string{"--telemetry-mode=loud"}); err == nil {
		t.Error("bad mode accepted")
	}
	if d := DefaultConfig(); d.Mode != ModeStdoutLogs || d.Endpoint != "localhost:4317" || !d.Insecure || d.LogLevel != "info" {
		t.Errorf("DefaultConfig() = %+v", d)
	}
	if err := (&Config{LogLevel: "loud"}).Validate(); err == nil {
		t.Error("bad level validated")
	}
}

func TestBindMetricsFlags(t *testing.T) {
	cfg := DefaultConfig()
	if cfg.CardinalityLimit != DefaultCardinalityLimit || cfg.Aggregation != AggregateObject {
		t.Errorf("defaults = %+v", cfg.MetricsConfig)
	}
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	cfg.BindFlags(fs)
	if err := fs.Parse([]string{"--metrics-cardinality-limit=50000", "--metrics-aggregation=Namespace"}); err != nil {
		t.Fatal(err)
	}
	if cfg.CardinalityLimit != 50000 || cfg.Aggregation != AggregateNamespace {
		t.Errorf("cfg = %+v", cfg.MetricsConfig)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
	err := fs.Parse([]string{"--metrics-aggregation=pod"})
	if err == nil || !strings.Contains(err.Error(), "must be one of object, namespace, cluster") {
		t.Errorf("bad level: %v", err)
	}
	cfg.CardinalityLimit = -1
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--metrics-cardinality-limit") {
		t.Errorf("negative limit: %v", err)
	}
	if _, err := Setup(context.Background(), Config{MetricsConfig: MetricsConfig{Aggregation: "pod"}}); err == nil {
		t.Error("Setup took a bad aggregation")
	}
}

func TestSetupRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{{Mode: "loud"}, {LogLevel: "loud"}} {
		if _, err := Setup(context.Background(), cfg); err == nil {
			t.Errorf("Setup(%+v) succeeded", cfg)
		}
	}
}

// syncBuffer is a bytes.Buffer safe to read while exporters write.
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

// jsonLines parses every line of out as a JSON object.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not a JSON line: %v\n%s", err, sc.Text())
		}
		lines = append(lines, m)
	}
	return lines
}

// exercise logs, records a metric and ends a span.
func exercise(t *testing.T, tel *Telemetry) {
	t.Helper()
	ctx, span := tel.TracerProvider.Tracer(ScopeName).Start(context.Background(), "reconcile")
	tel.Logger.InfoContext(ctx, "recorded", "commits", 2)
	tel.Logger.DebugContext(ctx, "hidden at info")
	m, err := NewMetrics(tel.MeterProvider)
	if err != nil {
		t.Fatal(err)
	}
	m.ObserveReconcile(ctx, time.Minute, obj)
	span.End()
}

func TestSetupStdoutLogs(t *testing.T) {
	var out syncBuffer
	tel, err := Setup(context.Background(), Config{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, tel)
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := jsonLines(t, out.String())
	if len(lines) != 1 {
		t.Fatalf("want exactly one log line (no metrics, traces or debug):\n%s", out.String())
	}
	l := lines[0]
	if l["msg"] != "recorded" || l["level"] != "INFO" || l["commits"] != 2.0 {
		t.Errorf("log line = %v", l)
	}
	if id, _ := l["trace_id"].(string); len(id) != 32 {
		t.Errorf("trace_id = %v, want the span's", l["trace_id"])
	}
	// Shutdown is idempotent.
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

func TestSetupLogFormats(t *testing.T) {
	var out syncBuffer
	tel, err := Setup(context.Background(), Config{Stdout: &out, LogLevel: "trace"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	tel.Logger.Log(context.Background(), LevelTrace, "fine detail")
	if !strings.Contains(out.String(), `"level":"TRACE","msg":"fine detail"`) {
		t.Errorf("trace line = %s", out.String())
	}

	var text syncBuffer
	term, err := Setup(context.Background(), Config{Stdout: &text, IsTerminal: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = term.Shutdown(context.Background()) }()
	term.Logger.Info("hello", "k", "v")
	if s := text.String(); !strings.Contains(s, "level=INFO msg=hello k=v") {
		t.Errorf("terminal line = %s", s)
	}
}

func TestSetupStdoutAll(t *testing.T) {
	var out syncBuffer
	tel, err := Setup(context.Background(), Config{Mode: ModeStdoutAll, Stdout: &out, ClusterName: "prod-eu"})
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, tel)
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	var logs, spans, metrics int
	for _, l := range jsonLines(t, out.String()) {
		switch {
		case l["msg"] != nil:
			logs++
		case l["SpanContext"] != nil:
			spans++
			if l["Name"] != "reconcile" {
				t.Errorf("span = %v", l["Name"])
			}
		case l["ScopeMetrics"] != nil:
			metrics++
			if !strings.Contains(mustJSON(t, l), MetricReconcile) || !strings.Contains(mustJSON(t, l), "prod-eu") {
				t.Errorf("metrics dump lacks %s or the cluster: %v", MetricReconcile, l)
			}
		default:
			t.Errorf("unexpected line %v", l)
		}
	}
	if logs != 1 || spans != 1 || metrics != 1 {
		t.Errorf("logs, spans, metrics = %d, %d, %d; want 1 each\n%s", logs, spans, metrics, out.String())
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestSetupOTLPUnreachable(t *testing.T) {
	for _, mode := range []Mode{ModeOTLP, ModeStdoutAllOTLP} {
		t.Run(string(mode), func(t *testing.T) {
			var out syncBuffer
			start := time.Now()
			tel, err := Setup(context.Background(), Config{Mode: mode, Endpoint: closedAddr(t), Insecure: true, Stdout: &out})
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("Setup took %v with the collector down", d)
			}
			exercise(t, tel)

			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start = time.Now()
			_ = tel.Shutdown(ctx) // export fails: the error is expected
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Shutdown took %v past its deadline", d)
			}
			if mode == ModeOTLP && out.String() != "" {
				t.Errorf("otlp mode wrote to stdout:\n%s", out.String())
			}
			// A dead collector must not cost the stdout exporters their flush.
			if s := out.String(); mode.StdoutAll() && (!strings.Contains(s, `"ScopeMetrics"`) || !strings.Contains(s, `"SpanContext"`)) {
				t.Errorf("stdout lacks the metrics or span dump:\n%s", s)
			}
		})
	}
}

// collector is an in-process OTLP gRPC receiver.
type collector struct {
	coltrace.UnimplementedTraceServiceServer
	colmetrics.UnimplementedMetricsServiceServer
	collogs.UnimplementedLogsServiceServer

	mu                   sync.Mutex
	spans, metrics, logs []string // names / bodies received
	temporality          []string // of each histogram received
	resourceAttrs        map[string]string
}

func (c *collector) Export(ctx context.Context, req *coltrace.ExportTraceServiceRequest) (*coltrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		c.resource(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans = append(c.spans, s.GetName())
			}
		}
	}
	return &coltrace.ExportTraceServiceResponse{}, nil
}

func (c *collector) resource(kvs []*commonpb.KeyValue) {
	if c.resourceAttrs == nil {
		c.resourceAttrs = map[string]string{}
	}
	for _, kv := range kvs {
		c.resourceAttrs[kv.GetKey()] = kv.GetValue().GetStringValue()
	}
}

type metricsServer struct{ *collector }

func (m metricsServer) Export(ctx context.Context, req *colmetrics.ExportMetricsServiceRequest) (*colmetrics.ExportMetricsServiceResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rm := range req.GetResourceMetrics() {
		for _, sm := range rm.GetScopeMetrics() {
			for _, x := range sm.GetMetrics() {
				m.metrics = append(m.metrics, x.GetName())
				if h := x.GetHistogram(); h != nil {
					m.temporality = append(m.temporality, h.GetAggregationTemporality().String())
				}
			}
		}
	}
	return &colmetrics.ExportMetricsServiceResponse{}, nil
}

type logsServer struct{ *collector }

func (l logsServer) Export(ctx context.Context, req *collogs.ExportLogsServiceRequest) (*collogs.ExportLogsServiceResponse, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, rl := range req.GetResourceLogs() {
		for _, sl := range rl.GetScopeLogs() {
			for _, r := range sl.GetLogRecords() {
				l.logs = append(l.logs, r.GetBody().GetStringValue())
			}
		}
	}
	return &collogs.ExportLogsServiceResponse{}, nil
}

// startCollector serves OTLP over gRPC on a free port until the test ends, collecting what it receives.
func startCollector(t *testing.T) (*collector, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	srv := grpc.NewServer()
	coltrace.RegisterTraceServiceServer(srv, c)
	colmetrics.RegisterMetricsServiceServer(srv, metricsServer{c})
	collogs.RegisterLogsServiceServer(srv, logsServer{c})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return c, lis.Addr().String()
}

func TestSetupOTLPCollector(t *testing.T) {
	c, addr := startCollector(t)

	var out syncBuffer
	tel, err := Setup(context.Background(), Config{
		Mode: ModeStdoutLogsOTLP, Endpoint: addr, Insecure: true, Stdout: &out,
		ServiceVersion: "v0.1.0", ClusterName: "prod-eu",
	})
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, tel)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if strings.Join(c.spans, ",") != "reconcile" {
		t.Errorf("spans = %v", c.spans)
	}
	if strings.Join(c.metrics, ",") != MetricReconcile+","+MetricOverflow {
		t.Errorf("metrics = %v", c.metrics)
	}
	if strings.Join(c.temporality, ",") != "AGGREGATION_TEMPORALITY_CUMULATIVE" {
		t.Errorf("histogram temporality = %v, want cumulative", c.temporality)
	}
	if strings.Join(c.logs, ",") != "recorded" { // debug filtered out
		t.Errorf("logs = %v", c.logs)
	}
	for k, v := range map[string]string{"service.name": "flux-commit-tracker", "service.version": "v0.1.0", "k8s.cluster.name": "prod-eu"} {
		if c.resourceAttrs[k] != v {
			t.Errorf("resource %s = %q, want %q", k, c.resourceAttrs[k], v)
		}
	}
	if n := len(jsonLines(t, out.String())); n != 1 {
		t.Errorf("stdout has %d lines, want the one log line", n)
	}
}
