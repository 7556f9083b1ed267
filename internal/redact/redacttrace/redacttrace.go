// Package redacttrace applies internal/redact to spans before they are exported: names, string attributes
// (of spans, events and links), event names and status descriptions, so an error recorded on a span or a URL
// set as an attribute cannot carry credentials out of the process.
package redacttrace

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/redact"
)

// Exporter returns next exporting every span redacted.
func Exporter(next sdktrace.SpanExporter) sdktrace.SpanExporter { return exporter{next: next} }

type exporter struct{ next sdktrace.SpanExporter }

func (e exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	out := make([]sdktrace.ReadOnlySpan, len(spans))
	for i, s := range spans {
		out[i] = Span(s)
	}
	return e.next.ExportSpans(ctx, out)
}

func (e exporter) Shutdown(ctx context.Context) error { return e.next.Shutdown(ctx) }

// Span returns a copy of s with its texts redacted.
func Span(s sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
	stub := tracetest.SpanStubFromReadOnlySpan(s)
	stub.Name = redact.Text(stub.Name)
	stub.Attributes = attrs(stub.Attributes)
	stub.Status.Description = redact.Text(stub.Status.Description)
	for i := range stub.Events {
		stub.Events[i].Name = redact.Text(stub.Events[i].Name)
		stub.Events[i].Attributes = attrs(stub.Events[i].Attributes)
	}
	for i := range stub.Links {
		stub.Links[i].Attributes = attrs(stub.Links[i].Attributes)
	}
	return stub.Snapshot()
}

// attrs returns kvs with string and string-slice values redacted.
func attrs(kvs []attribute.KeyValue) []attribute.KeyValue {
	if len(kvs) == 0 {
		return kvs
	}
	out := make([]attribute.KeyValue, len(kvs))
	for i, kv := range kvs {
		switch kv.Value.Type() {
		case attribute.STRING:
			kv.Value = attribute.StringValue(redact.Text(kv.Value.AsString()))
		case attribute.STRINGSLICE:
			ss := kv.Value.AsStringSlice()
			for j := range ss {
				ss[j] = redact.Text(ss[j])
			}
			kv.Value = attribute.StringSliceValue(ss)
		}
		out[i] = kv
	}
	return out
}
