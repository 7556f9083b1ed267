package telemetry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// CommitTraceID is the trace of one commit: derived from its repository URL and SHA, so every cluster's tracker
// adds its spans to the same trace.
func CommitTraceID(repositoryURL, sha string) trace.TraceID {
	h := sha256.Sum256([]byte(repositoryURL + "\x00" + sha))
	var id trace.TraceID
	copy(id[:], h[:16])
	return id
}

// DerivedSpanID is a span ID every cluster computes alike for the same parts, so a span they all emit (the
// commit's root, an upstream export) is one span, not one per cluster.
func DerivedSpanID(parts ...string) trace.SpanID {
	h := sha256.New()
	for _, p := range parts {
		_, _ = h.Write([]byte(p))
		_, _ = h.Write([]byte{0})
	}
	var id trace.SpanID
	copy(id[:], h.Sum(nil)[:8])
	if !id.IsValid() {
		id[7] = 1
	}
	return id
}

type forcedIDsKey struct{}

type forcedIDs struct {
	trace trace.TraceID
	span  trace.SpanID
}

// WithSpanIDs makes the next span started with ctx (as a root) take these IDs; the tracer provider must use
// [IDGenerator].
func WithSpanIDs(ctx context.Context, traceID trace.TraceID, spanID trace.SpanID) context.Context {
	return context.WithValue(ctx, forcedIDsKey{}, forcedIDs{trace: traceID, span: spanID})
}

// IDGenerator generates random IDs, except where the context asks for given ones ([WithSpanIDs]).
func IDGenerator() sdktrace.IDGenerator { return idGenerator{} }

type idGenerator struct{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if f, ok := ctx.Value(forcedIDsKey{}).(forcedIDs); ok {
		return f.trace, f.span
	}
	var tid trace.TraceID
	for !tid.IsValid() {
		_, _ = rand.Read(tid[:])
	}
	return tid, randomSpanID()
}

func (idGenerator) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	if f, ok := ctx.Value(forcedIDsKey{}).(forcedIDs); ok {
		return f.span
	}
	return randomSpanID()
}

func randomSpanID() trace.SpanID {
	var sid trace.SpanID
	for !sid.IsValid() {
		_, _ = rand.Read(sid[:])
	}
	return sid
}
