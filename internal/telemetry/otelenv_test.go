package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/proto"
)

// httpCollector is an in-process OTLP/HTTP receiver: it decodes each protobuf export and keeps what it names.
type httpCollector struct {
	*httptest.Server
	mu        sync.Mutex
	paths     []string            // request paths, one per export
	auth      []string            // Authorization header of each export
	resources []map[string]string // resource attributes of each export
	spans     []string
}

func newHTTPCollector(t *testing.T) *httpCollector {
	t.Helper()
	c := &httpCollector{}
	c.Server = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.Close)
	return c
}

func (c *httpCollector) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want a protobuf body", http.StatusBadRequest)
		return
	}
	var resources []*resourcepb.Resource
	var spans []string
	var resp proto.Message
	switch r.URL.Path {
	case "/v1/traces":
		var req coltrace.ExportTraceServiceRequest
		err = proto.Unmarshal(body, &req)
		for _, rs := range req.GetResourceSpans() {
			resources = append(resources, rs.GetResource())
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					spans = append(spans, s.GetName())
				}
			}
		}
		resp = &coltrace.ExportTraceServiceResponse{}
	case "/v1/metrics":
		var req colmetrics.ExportMetricsServiceRequest
		err = proto.Unmarshal(body, &req)
		for _, rm := range req.GetResourceMetrics() {
			resources = append(resources, rm.GetResource())
		}
		resp = &colmetrics.ExportMetricsServiceResponse{}
	case "/v1/logs":
		var req collogs.ExportLogsServiceRequest
		err = proto.Unmarshal(body, &req)
		for _, rl := range req.GetResourceLogs() {
			resources = append(resources, rl.GetResource())
		}
		resp = &collogs.ExportLogsServiceResponse{}
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.paths = append(c.paths, r.URL.Path)
	c.auth = append(c.auth, r.Header.Get("Authorization"))
	for _, res := range resources {
		c.resources = append(c.resources, attrMap(res.GetAttributes()))
	}
	c.spans = append(c.spans, spans...)
	c.mu.Unlock()
	out, _ := proto.Marshal(resp)
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func attrMap(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[kv.GetKey()] = kv.GetValue().GetStringValue()
	}
	return m
}

// received is the sorted set of paths exported to.
func (c *httpCollector) received() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	got := slices.Clone(c.paths)
	slices.Sort(got)
	return slices.Compact(got)
}

// parseConfig binds the telemetry flags on DefaultConfig and parses args, as the command line does.
func parseConfig(t *testing.T, args ...string) Config {
	t.Helper()
	cfg := DefaultConfig()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	cfg.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// runOnce sets up telemetry, records a span, a metric and a log line, and flushes them.
func runOnce(t *testing.T, cfg Config) {
	t.Helper()
	cfg.Stdout = io.Discard
	tel, err := Setup(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, tel)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSetupHonoursOTELVariables: with no --telemetry-endpoint, the standard variables choose the protocol, the
// collector, its headers, the service name and extra resource attributes, for all three signals.
func TestSetupHonoursOTELVariables(t *testing.T) {
	c := newHTTPCollector(t)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", c.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20collector-token")
	t.Setenv("OTEL_SERVICE_NAME", "tracker-eu")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=prod,service.namespace=delivery")

	cfg := parseConfig(t, "--telemetry-mode=otlp")
	cfg.ServiceVersion, cfg.ClusterName = "v1.2.3", "prod-eu"
	runOnce(t, cfg)

	if got, want := c.received(), []string{"/v1/logs", "/v1/metrics", "/v1/traces"}; !slices.Equal(got, want) {
		t.Fatalf("collector at OTEL_EXPORTER_OTLP_ENDPOINT received %v, want %v", got, want)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Contains(c.spans, "reconcile") {
		t.Errorf("spans = %v, want reconcile", c.spans)
	}
	for _, a := range c.auth {
		if a != "Bearer collector-token" {
			t.Errorf("Authorization = %q, want the OTEL_EXPORTER_OTLP_HEADERS value", a)
		}
	}
	want := map[string]string{
		"service.name":                "tracker-eu", // OTEL_SERVICE_NAME wins over the default
		"service.version":             "v1.2.3",
		"service.namespace":           "delivery",
		"deployment.environment.name": "prod",
		"k8s.cluster.name":            "prod-eu",
	}
	for i, res := range c.resources {
		for k, v := range want {
			if res[k] != v {
				t.Errorf("export %d: resource %s = %q, want %q", i, k, res[k], v)
			}
		}
	}
}

// TestSetupSignalVariablesAndResourceOverrides: a signal's own OTEL_EXPORTER_OTLP_TRACES_ENDPOINT wins over
// OTEL_EXPORTER_OTLP_ENDPOINT, and OTEL_RESOURCE_ATTRIBUTES, applied last, may replace what the tracker sets.
func TestSetupSignalVariablesAndResourceOverrides(t *testing.T) {
	traces, rest := newHTTPCollector(t), newHTTPCollector(t)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rest.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces.URL+"/v1/traces")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "k8s.cluster.name=from-env,service.name=from-attributes")

	cfg := parseConfig(t, "--telemetry-mode=otlp")
	cfg.ClusterName = "from-flag"
	runOnce(t, cfg)

	if got := traces.received(); !slices.Equal(got, []string{"/v1/traces"}) {
		t.Errorf("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT collector received %v, want the traces only", got)
	}
	if got := rest.received(); !slices.Equal(got, []string{"/v1/logs", "/v1/metrics"}) {
		t.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT collector received %v, want logs and metrics", got)
	}
	for _, c := range []*httpCollector{traces, rest} {
		c.mu.Lock()
		for _, res := range c.resources {
			if res["k8s.cluster.name"] != "from-env" || res["service.name"] != "from-attributes" {
				t.Errorf("resource = %v, want k8s.cluster.name and service.name from OTEL_RESOURCE_ATTRIBUTES", res)
			}
		}
		c.mu.Unlock()
	}
}

// TestSetupTelemetryEndpointWinsOverOTELEndpoint: --telemetry-endpoint (or TELEMETRY_ENDPOINT), when given,
// is where the signals go, whatever OTEL_EXPORTER_OTLP_ENDPOINT says; the protocol still comes from the variables.
func TestSetupTelemetryEndpointWinsOverOTELEndpoint(t *testing.T) {
	named, ignored := newHTTPCollector(t), newHTTPCollector(t)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", ignored.URL)

	runOnce(t, parseConfig(t, "--telemetry-mode=otlp", "--telemetry-endpoint="+strings.TrimPrefix(named.URL, "http://")))
	if got := named.received(); len(got) != 3 {
		t.Errorf("the --telemetry-endpoint collector received %v, want all three signals", got)
	}
	if got := ignored.received(); len(got) != 0 {
		t.Errorf("the OTEL_EXPORTER_OTLP_ENDPOINT collector received %v, want nothing", got)
	}
}

// TestSetupOTELEndpointOverGRPC: the default protocol is gRPC, and OTEL_EXPORTER_OTLP_ENDPOINT names its
// collector when --telemetry-endpoint is not given; an http:// URL means plaintext.
func TestSetupOTELEndpointOverGRPC(t *testing.T) {
	c, addr := startCollector(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+addr)
	t.Setenv("OTEL_SERVICE_NAME", "tracker-grpc")

	runOnce(t, parseConfig(t, "--telemetry-mode=otlp", "--telemetry-insecure=false"))
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Equal(c.spans, []string{"reconcile"}) || len(c.metrics) == 0 || !slices.Equal(c.logs, []string{"recorded"}) {
		t.Errorf("gRPC collector got spans %v, metrics %v, logs %v", c.spans, c.metrics, c.logs)
	}
	if got := c.resourceAttrs["service.name"]; got != "tracker-grpc" {
		t.Errorf("service.name = %q, want OTEL_SERVICE_NAME", got)
	}
}

// TestSetupRejectsAnUnknownOTLPProtocol: a protocol the tracker cannot speak stops Setup with the value named.
func TestSetupRejectsAnUnknownOTLPProtocol(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
	_, err := Setup(context.Background(), Config{Mode: ModeOTLP, Stdout: io.Discard})
	if err == nil || !strings.Contains(err.Error(), `"http/json"`) || !strings.Contains(err.Error(), "http/protobuf") {
		t.Errorf("Setup error = %v, want the unknown protocol named", err)
	}
	// Without OTLP the variable is not read.
	if tel, err := Setup(context.Background(), Config{Mode: ModeStdoutLogs, Stdout: io.Discard}); err != nil {
		t.Errorf("stdout-logs with OTEL_EXPORTER_OTLP_PROTOCOL=http/json: %v", err)
	} else {
		_ = tel.Shutdown(context.Background())
	}
}
