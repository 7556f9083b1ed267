package tracker

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/flux"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
)

// Span names of a commit's trace.
const (
	SpanCommit   = "commit"
	SpanExported = "exported"
	SpanFetched  = "fetched"
	SpanApplied  = "applied"
)

// traceCommits adds this cluster's spans to the trace of each delivered commit — one trace per commit, shared by
// every cluster: a root "commit" span and the upstream "exported" spans, which every cluster emits with the same
// IDs, and this cluster's "fetched" and "applied" spans, with their true start and end times. An upstream commit
// that several delivered commits carry gets one "exported" span, in the trace of the first, as it gets one export
// sample. Implausible times (see latency.Plausible) make no span: an implausible commit time puts the root at the
// apply time, an implausible fetch time drops the "fetched" span, an implausible upstream time its "exported"
// span. It returns, per commit, its "applied" span, so what the sinks make of the commit carries its trace.
func (t *Tracker) traceCommits(r Record, d flux.Deployment) map[string]trace.SpanContext {
	repoURL, delivered, fetched, applied, processing := r.Object.Repository, r.Commits, r.Fetched, r.Applied, r.Apply
	out := make(map[string]trace.SpanContext, len(delivered))
	cluster := []attribute.KeyValue{
		attribute.String(telemetry.AttrCluster, t.opts.ClusterName),
		attribute.String(telemetry.AttrNamespace, d.Namespace),
		attribute.String(telemetry.AttrKind, d.Kind),
		attribute.String(telemetry.AttrName, d.Name),
	}
	if !fetched.IsZero() && !plausibleSpanTime(fetched, applied) {
		fetched = time.Time{}
	}
	exported := make(map[string]bool)
	for _, c := range delivered {
		traceID := telemetry.CommitTraceID(repoURL, c.SHA)
		commitAttrs := []attribute.KeyValue{
			attribute.String(telemetry.AttrRepository, repoURL),
			attribute.String("vcs.ref.head.revision", c.SHA),
		}
		committed := c.Committed
		if !plausibleSpanTime(committed, applied) {
			committed = applied
		}
		root := t.span(trace.SpanContext{}, traceID, telemetry.DerivedSpanID(repoURL, c.SHA, SpanCommit),
			SpanCommit, committed, committed, commitAttrs)

		for _, u := range c.Upstream {
			if exported[u.SHA] {
				continue
			}
			exported[u.SHA] = true
			if !plausibleSpanTime(u.Time, applied) {
				continue
			}
			t.span(root, traceID, telemetry.DerivedSpanID(repoURL, c.SHA, SpanExported, u.SHA), SpanExported, u.Time, committed,
				append(commitAttrs, attribute.String("vcs.upstream.revision", u.SHA)))
		}
		start := committed
		if !fetched.IsZero() {
			t.span(root, traceID, trace.SpanID{}, SpanFetched, committed, fetched, append(commitAttrs, cluster...))
			start = fetched
		}
		appliedSpan := t.span(root, traceID, trace.SpanID{}, SpanApplied, start, applied,
			append(append(commitAttrs, cluster...), attribute.Bool("flux.health_checked", d.WaitsForHealth)),
			trace.WithLinks(trace.Link{SpanContext: processing}))
		out[c.SHA] = appliedSpan
	}
	return out
}

// plausibleSpanTime reports whether a span may start or end at ts for an apply at applied.
func plausibleSpanTime(ts, applied time.Time) bool {
	return latency.Plausible(ts, applied, latency.DefaultClockSkewTolerance) == nil
}

// span records one finished span in traceID under parent (none for the root), with spanID when it must be the
// same in every cluster (else a random one), and returns its context.
func (t *Tracker) span(parent trace.SpanContext, traceID trace.TraceID, spanID trace.SpanID, name string, start, end time.Time, attrs []attribute.KeyValue, opts ...trace.SpanStartOption) trace.SpanContext {
	ctx := context.Background()
	if parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	}
	if spanID.IsValid() {
		ctx = telemetry.WithSpanIDs(ctx, traceID, spanID)
	}
	if end.Before(start) {
		end = start // a skewed clock: the span is empty rather than negative
	}
	opts = append(opts, trace.WithTimestamp(start), trace.WithAttributes(attrs...), trace.WithSpanKind(trace.SpanKindInternal))
	_, s := t.opts.Tracer.Start(ctx, name, opts...)
	s.End(trace.WithTimestamp(end))
	return s.SpanContext()
}
