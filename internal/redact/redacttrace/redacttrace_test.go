package redacttrace_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/redact/redacttrace"
)

func TestExporter(t *testing.T) {
	mem := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(redacttrace.Exporter(mem)))
	ctx := context.Background()
	t.Cleanup(func() { _ = tp.Shutdown(ctx) })
	_, span := tp.Tracer("t").Start(ctx, "fetch https://u:CANARY1@host/r", trace.WithAttributes(
		attribute.String("vcs.repository.url.full", "https://u:CANARY1@host/r?token=CANARY2"),
		attribute.StringSlice("urls", []string{"https://host/a?sig=CANARY2", "https://host/b"}),
		attribute.Int("n", 7),
	), trace.WithLinks(trace.Link{SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}}), Attributes: []attribute.KeyValue{attribute.String("l", "password=CANARY3")}}))
	err := errors.New("clone oauth2:CANARY1@gitlab.com:g/r failed")
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
	span.End() // exported now: a syncer exports each span as it ends
	spans := mem.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans exported, want 1", len(spans))
	}
	s := spans[0]
	texts := []string{s.Name, s.Status.Description}
	for _, kv := range s.Attributes {
		texts = append(texts, kv.Value.String())
	}
	for _, e := range s.Events {
		for _, kv := range e.Attributes {
			texts = append(texts, kv.Value.String())
		}
	}
	for _, l := range s.Links {
		for _, kv := range l.Attributes {
			texts = append(texts, kv.Value.String())
		}
	}
	all := strings.Join(texts, "\n")
	for _, canary := range []string{"CANARY1", "CANARY2", "CANARY3"} {
		if strings.Contains(all, canary) {
			t.Errorf("exported span holds %s:\n%s", canary, all)
		}
	}
	if s.Name != "fetch https://host/r" || s.Status.Code != codes.Error || s.Attributes[0].Value.AsString() != "https://host/r?REDACTED" {
		t.Errorf("span = %q, %v, %v", s.Name, s.Status, s.Attributes)
	}
	if got := s.Attributes[2]; got.Key != "n" || got.Value.AsInt64() != 7 {
		t.Errorf("non-string attribute changed: %v", got)
	}
	if len(s.Events) != 1 || s.Events[0].Name != "exception" {
		t.Errorf("events = %v", s.Events)
	}
}
