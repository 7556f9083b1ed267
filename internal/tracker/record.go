package tracker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
)

// Record is what one apply recorded, handed to every Sink once its ledger checkpoint is stored: each delivered
// commit once, ever, with its stage samples and the trace it belongs to.
type Record struct {
	// Object names the Flux object, its cluster and the (redacted) repository of the commits.
	Object telemetry.ObjectAttributes
	UID    string
	// Repository names the commits' repository (see RepositoryOf); Forge is the forge annotation's value.
	Repository commits.Repository
	Forge      string
	// Revision is the revision the object applied, as Flux reports it.
	Revision string
	// Commits are the delivered manifests commits, oldest first.
	Commits []latency.DeliveredCommit
	// Samples are the stage durations of the commits; Rejected are the implausible times that made none.
	Samples  []latency.Sample
	Rejected []latency.Rejection
	// Fetched is when the source fetched the revision (zero when unknown); Applied when Flux applied it (and
	// found it healthy where it waits for health), or when the tracker saw it when AppliedFromFlux is false.
	Fetched, Applied time.Time
	AppliedFromFlux  bool
	WaitsForHealth   bool
	// Observed is when the tracker processed the apply.
	Observed time.Time
	// Apply is the span of the processing; CommitSpans holds, per commit SHA, its "applied" span in the commit's
	// trace, which every sink's output of that commit carries (exemplars, log lines, links).
	Apply       trace.SpanContext
	CommitSpans map[string]trace.SpanContext
}

// Healthy reports whether Flux found the applied revision healthy.
func (r Record) Healthy() bool { return r.WaitsForHealth && r.AppliedFromFlux }

// Stages returns commit sha's reconcile sample and its longest end-to-end duration (from its oldest upstream
// commit).
func (r Record) Stages(sha string) (reconcile latency.Sample, e2e time.Duration) {
	for _, s := range r.Samples {
		switch {
		case s.Commit != sha:
		case s.Stage == latency.StageReconcile:
			reconcile = s
		case s.Stage == latency.StageE2E:
			e2e = max(e2e, s.Duration)
		}
	}
	return reconcile, e2e
}

// CommitContext returns ctx carrying commit sha's span, so what is logged or measured of it joins its trace.
func (r Record) CommitContext(ctx context.Context, sha string) context.Context {
	if sc, ok := r.CommitSpans[sha]; ok && sc.IsValid() {
		return trace.ContextWithSpanContext(ctx, sc)
	}
	return ctx
}

// Sink receives each Record once. It must not block on the network: what it delivers elsewhere it queues.
type Sink interface {
	Record(ctx context.Context, r Record)
}

// SinkFunc is a Sink of one function.
type SinkFunc func(ctx context.Context, r Record)

// Record calls f.
func (f SinkFunc) Record(ctx context.Context, r Record) { f(ctx, r) }

// metricsSink turns a Record into samples and counts, each sample in its commit's trace context so it carries
// the trace as an exemplar.
type metricsSink struct{ rec Recorder }

func (m metricsSink) Record(ctx context.Context, r Record) {
	for _, s := range r.Samples {
		sctx := r.CommitContext(ctx, s.Commit)
		if s.Skewed {
			m.rec.AddClockSkew(sctx, s.Stage, r.Object)
		}
		switch s.Stage {
		case latency.StageE2E:
			m.rec.ObserveE2E(sctx, s.Duration, r.Object)
		case latency.StageExport:
			m.rec.ObserveExport(sctx, s.Duration, r.Object)
		case latency.StageReconcile:
			m.rec.ObserveReconcile(sctx, s.Duration, r.Object)
		case latency.StageFetch:
			m.rec.ObserveFetch(sctx, s.Duration, r.Object)
		case latency.StageApply:
			m.rec.ObserveApply(sctx, s.Duration, r.Object)
		}
	}
	m.rec.AddCommitsRecorded(ctx, len(r.Commits), r.Object)
	for range r.Rejected {
		m.rec.AddError(ctx, telemetry.ReasonImplausibleTime, r.Object)
	}
}

// logSink writes a line per recorded commit, in the commit's trace, and one per rejected time.
type logSink struct{ log *slog.Logger }

func (l logSink) Record(ctx context.Context, r Record) {
	log := l.log.With("namespace", r.Object.Namespace, "kind", r.Object.Kind, "name", r.Object.Name, "revision", r.Revision)
	for _, rej := range r.Rejected {
		log.WarnContext(ctx, "implausible time: no sample from it", "field", string(rej.Field), "commit", rej.Commit,
			"upstream", rej.Upstream, "error", rej.Err)
	}
	for i, c := range r.Commits {
		reconcile, e2e := r.Stages(c.SHA)
		log.InfoContext(r.CommitContext(ctx, c.SHA), "commit applied", "commit", c.SHA, "committed", c.Committed, "applied", r.Applied,
			"applied_from_flux", r.AppliedFromFlux, "healthy", r.Healthy(), "observed", r.Observed, "reconcile_seconds", reconcile.Duration.Seconds(),
			"e2e_seconds", e2e.Seconds(), "clock_skew", reconcile.Skewed, "upstream_commits", len(c.Upstream),
			"repository", r.Object.Repository, "position", i+1, "of", len(r.Commits))
	}
}

// Notifier makes the notice of a Record that a sink delivers over the network (a webhook, a commit status). The
// notice is stored with the apply's checkpoint, so it is neither lost in a crash nor made twice, and delivered
// from the outbox later.
type Notifier interface {
	// Name names the sink the notice is for.
	Name() string
	// Notice returns the notice's body, or false when r needs none.
	Notice(r Record) (body json.RawMessage, ok bool, err error)
}

// notices makes every notifier's notice of r, identified alike in every process by the object, the revision and
// the sink.
func (t *Tracker) notices(r Record) ([]ledger.Item, error) {
	var items []ledger.Item
	for _, n := range t.opts.Notifiers {
		body, ok, err := n.Notice(r)
		if err != nil {
			return nil, fmt.Errorf("%s notice of %s/%s at %s: %w", n.Name(), r.Object.Namespace, r.Object.Name, r.Revision, err)
		}
		if ok {
			items = append(items, ledger.Item{ID: ledger.ItemID(n.Name(), r.Object.Cluster, r.UID, r.Revision), Sink: n.Name(),
				Created: r.Observed, Body: body})
		}
	}
	return items, nil
}
