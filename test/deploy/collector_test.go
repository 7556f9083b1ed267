package deploy_test

import (
	"context"
	"net"
	"testing"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
)

// traceSink, metricsSink and logsSink accept every OTLP export and keep nothing.
type (
	traceSink struct {
		coltrace.UnimplementedTraceServiceServer
	}
	metricsSink struct {
		colmetrics.UnimplementedMetricsServiceServer
	}
	logsSink struct {
		collogs.UnimplementedLogsServiceServer
	}
)

func (traceSink) Export(context.Context, *coltrace.ExportTraceServiceRequest) (*coltrace.ExportTraceServiceResponse, error) {
	return &coltrace.ExportTraceServiceResponse{}, nil
}

func (metricsSink) Export(context.Context, *colmetrics.ExportMetricsServiceRequest) (*colmetrics.ExportMetricsServiceResponse, error) {
	return &colmetrics.ExportMetricsServiceResponse{}, nil
}

func (logsSink) Export(context.Context, *collogs.ExportLogsServiceRequest) (*collogs.ExportLogsServiceResponse, error) {
	return &collogs.ExportLogsServiceResponse{}, nil
}

// startCollector serves OTLP over gRPC, standing in for the in-cluster collector; it returns its address.
func startCollector(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	coltrace.RegisterTraceServiceServer(srv, traceSink{})
	colmetrics.RegisterMetricsServiceServer(srv, metricsSink{})
	collogs.RegisterLogsServiceServer(srv, logsSink{})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}
