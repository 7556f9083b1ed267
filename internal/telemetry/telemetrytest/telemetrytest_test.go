package telemetrytest_test

import (
	"context"
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry/telemetrytest"
	"go.opentelemetry.io/otel/attribute"
)

func TestTelemetry(t *testing.T) {
	tt := telemetrytest.New(t)
	obj := telemetry.ObjectAttributes{Cluster: "c", Namespace: "ns", Kind: "Kustomization", Name: "apps"}
	ctx, span := tt.TracerProvider.Tracer("test").Start(context.Background(), "reconcile")
	tt.Metrics.ObserveReconcile(ctx, 2*time.Minute, obj)
	tt.Metrics.ObserveReconcile(ctx, time.Minute, obj)
	tt.Metrics.AddError(ctx, telemetry.ReasonLedger, obj)
	tt.Logger.Log(ctx, telemetry.LevelTrace, "detail", "sha", "abc123")
	span.End()

	if n, sum := tt.Histogram(t, telemetry.MetricReconcile, attribute.String(telemetry.AttrName, "apps")); n != 2 || sum != 180 {
		t.Errorf("reconcile histogram = %d, %v", n, sum)
	}
	if n, _ := tt.Histogram(t, telemetry.MetricReconcile, attribute.String(telemetry.AttrName, "other")); n != 0 {
		t.Errorf("attribute filter ignored: %d", n)
	}
	if n := tt.Counter(t, telemetry.MetricErrors, attribute.String(telemetry.AttrReason, telemetry.ReasonLedger)); n != 1 {
		t.Errorf("errors = %d", n)
	}
	if n := tt.Counter(t, telemetry.MetricCommitsRecorded); n != 0 {
		t.Errorf("unrecorded counter = %d", n)
	}
	if logs := tt.Logs(t); len(logs) != 1 || logs[0]["sha"] != "abc123" {
		t.Errorf("logs = %v", logs)
	}
	if spans := tt.Spans.GetSpans(); len(spans) != 1 || spans[0].Name != "reconcile" {
		t.Errorf("spans = %v", spans)
	}
}
