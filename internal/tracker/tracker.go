// Package tracker turns one Flux apply into per-commit latency records, exactly once: it checks the ledger,
// finds the commits the apply delivered and their upstream commits, computes the stage durations and emits them.
package tracker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"k8s.io/utils/clock"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/oci"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/exporterinfo"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/flux"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/redact"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/revision"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
)

// ErrPermanent marks failures that retrying cannot fix; the apply is not retried.
var ErrPermanent = errors.New("permanent")

// Outcome says what Process did with an apply.
type Outcome string

const (
	// Pending: the object has not applied any revision yet.
	Pending Outcome = "pending"
	// Unchanged: the revision was already recorded.
	Unchanged Outcome = "unchanged"
	// Baseline: first sight of the object; its revision is remembered and nothing is recorded.
	Baseline Outcome = "baseline"
	// Recorded: the delivered commits were recorded.
	Recorded Outcome = "recorded"
	// AwaitingHealth: Flux applied the revision and is checking its health; it is recorded once Ready.
	AwaitingHealth Outcome = "awaiting_health"
	// NotRecorded: the revision moved backwards or sideways (rollback, force-push), or could not be resolved.
	NotRecorded Outcome = "not_recorded"
	// Failed: a transient failure; the apply is retried.
	Failed Outcome = "failed"
)

// Recorder receives what the tracker measures; telemetry.Metrics implements it.
type Recorder interface {
	ObserveE2E(ctx context.Context, d time.Duration, a telemetry.ObjectAttributes)
	ObserveExport(ctx context.Context, d time.Duration, a telemetry.ObjectAttributes)
	ObserveReconcile(ctx context.Context, d time.Duration, a telemetry.ObjectAttributes)
	ObserveFetch(ctx context.Context, d time.Duration, a telemetry.ObjectAttributes)
	ObserveApply(ctx context.Context, d time.Duration, a telemetry.ObjectAttributes)
	AddCommitsRecorded(ctx context.Context, n int, a telemetry.ObjectAttributes)
	AddError(ctx context.Context, reason string, a telemetry.ObjectAttributes)
	AddClockSkew(ctx context.Context, stage latency.Stage, a telemetry.ObjectAttributes)
	AddTruncated(ctx context.Context, n int, a telemetry.ObjectAttributes)
	AddNotRecorded(ctx context.Context, status commits.RangeStatus, a telemetry.ObjectAttributes)
	// ForgetObject drops every series of a deleted object.
	ForgetObject(ctx context.Context, a telemetry.ObjectAttributes)
}

// ProviderFor returns the commit provider and repository of a Deployment; Providers.For is the usual one.
type ProviderFor func(ctx context.Context, d flux.Deployment) (Source, error)

// Options configures a Tracker.
type Options struct {
	Ledger    ledger.Ledger
	Providers ProviderFor
	Recorder  Recorder
	// Sinks receive each Record after the metrics (Recorder) and the log lines (Logger).
	Sinks []Sink
	// Notifiers make, from each Record, a notice stored with its checkpoint and delivered later; they need a
	// Ledger that is a ledger.Outbox.
	Notifiers []Notifier
	// Rollouts, if set, is told of each object's pending and failing commits whenever they change.
	Rollouts RolloutObserver
	// StuckAfter is how long an object may wait on (or fail on) a revision its source fetched before its
	// StuckNotifiers announce it stuck, once, and then recovered; zero: never.
	StuckAfter time.Duration
	Tracer     trace.Tracer
	Logger     *slog.Logger
	Clock      clock.PassiveClock
	// ClusterName is the k8s.cluster.name attribute on every sample.
	ClusterName string
	// CommitTime picks committer or author time as a commit's time.
	CommitTime commits.TimeSource
	// ExporterInfoPath is where exporter-info.json sits in the manifests repository; empty disables it.
	ExporterInfoPath string
	// Artifacts reads applied OCI artifacts, whose exporter-info layer names the head commit's upstream commits;
	// nil disables it.
	Artifacts ArtifactReader
	// ProviderSlots bounds the applies that may wait on one kind of provider (GitHub, git) at once, so a slow or
	// limited one cannot take every worker from objects that use another; 0 is unbounded.
	ProviderSlots int
	// ProviderWaiters is how many more applies may wait for a slot of their kind; the rest are turned away with
	// a short requeue.
	ProviderWaiters int
	// ClockSkewTolerance is how far past the observation a time may lie before it is implausible; zero is
	// latency.DefaultClockSkewTolerance.
	ClockSkewTolerance time.Duration
}

// ArtifactReader reads an OCI artifact's annotations and exporter-info layer; *oci.Client implements it.
type ArtifactReader interface {
	Artifact(ctx context.Context, ref, digest string) (oci.Artifact, error)
}

// Tracker records per-commit latency for Flux applies.
type Tracker struct {
	opts     Options
	rollouts rollouts
	slots    *providerSlots
	sinks    []Sink
	outbox   ledger.Outbox // the Ledger, when notifiers queue notices in it
}

// New returns a Tracker; Ledger, Providers, Recorder, Tracer and Logger are required.
func New(opts Options) (*Tracker, error) {
	if opts.Ledger == nil || opts.Providers == nil || opts.Recorder == nil || opts.Tracer == nil || opts.Logger == nil {
		return nil, errors.New("tracker: ledger, providers, recorder, tracer and logger are required")
	}
	outbox, ok := opts.Ledger.(ledger.Outbox)
	if len(opts.Notifiers) > 0 && !ok {
		return nil, errors.New("tracker: notifiers need a ledger with an outbox")
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.CommitTime == "" {
		opts.CommitTime = commits.CommitterTime
	}
	sinks := append([]Sink{metricsSink{opts.Recorder}, logSink{opts.Logger}}, opts.Sinks...)
	return &Tracker{opts: opts, slots: newProviderSlots(opts.ProviderSlots, opts.ProviderWaiters, opts.Clock), sinks: sinks, outbox: outbox}, nil
}

// Result reports what Process did.
type Result struct {
	Outcome Outcome
	// Commits are the delivered manifests commits that were recorded, oldest first.
	Commits []latency.DeliveredCommit
	Samples []latency.Sample
	// Applied is the apply time used; AppliedFromFlux says whether it came from Flux's Ready condition.
	Applied         time.Time
	AppliedFromFlux bool
	// RetryAfter asks for the object to be processed again after it: its pending commits could not be looked up yet.
	RetryAfter time.Duration

	repository string // redacted repository URL of the recorded commits
	attrs      telemetry.ObjectAttributes
	record     Record
	rejected   []latency.Rejection // implausible times, not turned into samples
}

// maxDecisions bounds how often one apply is decided again after other writers moved its ledger entry.
const maxDecisions = 8

// Process records the commits d's current revision delivered, unless already recorded.
// It returns an error wrapping ErrPermanent when retrying cannot help, and one for which commits.RetryAfter
// reports a wait when a provider is rate limited or busy.
func (t *Tracker) Process(ctx context.Context, d flux.Deployment) (res Result, err error) {
	observed := t.opts.Clock.Now()
	ctx, span := t.opts.Tracer.Start(ctx, "flux-commit-tracker.apply", trace.WithAttributes(
		attribute.String("k8s.cluster.name", t.opts.ClusterName),
		attribute.String("k8s.namespace.name", d.Namespace),
		attribute.String("flux.kind", d.Kind),
		attribute.String("flux.name", d.Name),
		attribute.String("flux.revision", d.Revision),
	))
	log := t.opts.Logger.With("namespace", d.Namespace, "kind", d.Kind, "name", d.Name, "revision", d.Revision)
	attrs := telemetry.ObjectAttributes{Cluster: t.opts.ClusterName, Namespace: d.Namespace, Kind: d.Kind, Name: d.Name, Repository: redact.URL(d.RepositoryURL)}
	defer func() {
		if err != nil && res.Outcome == "" {
			res.Outcome = Failed
		}
		span.SetAttributes(attribute.String("flux_commit_tracker.outcome", string(res.Outcome)), attribute.Int("flux_commit_tracker.commits", len(res.Commits)))
		if err != nil {
			err = redact.Error(err)
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			var rl *commits.RateLimitError
			switch {
			case errors.As(err, &rl) && rl.Busy:
				log.DebugContext(ctx, "apply not recorded yet: provider busy with other applies, object requeued", "error", err)
			case errors.As(err, &rl):
				log.InfoContext(ctx, "apply not recorded yet: provider rate limited, object requeued", "error", err)
			default:
				log.ErrorContext(ctx, "apply not recorded", "error", err)
			}
		}
		span.End()
	}()

	if d.Revision == "" {
		return Result{Outcome: Pending}, nil
	}
	retry := t.observeRollout(ctx, d, attrs, log)
	defer func() {
		if err != nil {
			return
		}
		// After the apply's own checkpoint, which ends a stuck episode with the commits it delivered.
		stuckRetry, serr := t.watchStuck(ctx, d, attrs, log)
		if serr != nil {
			log.WarnContext(ctx, "stuck rollout not announced yet: retried", "error", redact.Error(serr))
			stuckRetry = stuckRetryAfterError
		}
		res.RetryAfter = earliest(retry, stuckRetry)
	}()
	// Each decision is a compare-and-set on the entry it was made from: when another writer moved it, memory
	// now holds what that writer stored, and the apply is decided again from there.
	for range maxDecisions {
		entry, known := t.opts.Ledger.Get(d.UID)
		var prev *ledger.Entry
		if known {
			prev = &entry
		}
		res, err = t.decide(ctx, d, prev, observed, attrs, span, log)
		if !errors.Is(err, ledger.ErrConflict) {
			break
		}
		log.DebugContext(ctx, "ledger entry moved by another writer: deciding again")
	}
	if err != nil || res.Outcome != Recorded {
		return res, err
	}
	rec := res.record
	// The commits' traces are written with the Record: their spans are what every sink's output links to.
	rec.CommitSpans = t.traceCommits(rec, d)
	for _, sink := range t.sinks {
		sink.Record(ctx, rec)
	}
	return res, nil
}

// decide works out what d's revision delivered since prev (nil: first sight) and stores the new checkpoint,
// guarded by prev. Nothing is emitted here: Process emits once the checkpoint is stored.
func (t *Tracker) decide(ctx context.Context, d flux.Deployment, prev *ledger.Entry, observed time.Time, attrs telemetry.ObjectAttributes, span trace.Span, log *slog.Logger) (Result, error) {
	if prev != nil && prev.Revision == d.Revision {
		return Result{Outcome: Unchanged}, nil
	}
	head, err := revision.Parse(d.Revision)
	if err != nil {
		// The ledger keeps the last good revision, so the next good one delivers everything since.
		t.opts.Recorder.AddError(ctx, telemetry.ReasonInvalidRevision, attrs)
		return Result{Outcome: NotRecorded}, fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	var entry ledger.Entry
	if prev != nil {
		entry = *prev
		if entry.Export != "" && len(entry.Export) != exporterinfo.IDLength {
			entry.Export = exporterinfo.IDOf(entry.Export) // written before identities were hashed
		}
	}
	// The high-water mark: commits up to it were recorded, whatever the object applied since (a rollback).
	base, baseErr := revision.Parse(entry.Mark())
	if prev == nil || baseErr != nil {
		log.InfoContext(ctx, "first sight of object: revision kept as baseline, nothing recorded")
		export, err := t.firstBaselineExport(ctx, d, head.Digest, log)
		if err != nil {
			return Result{}, err
		}
		return Result{Outcome: Baseline}, t.checkpoint(ctx, d, prev, observed, d.Revision, export)
	}
	if base.Equal(head) {
		return Result{Outcome: Unchanged}, t.checkpoint(ctx, d, prev, observed, entry.Mark(), entry.Export)
	}
	if d.WaitsForHealth && d.Applied.IsZero() {
		// Applied is applied-and-healthy here: wait for Flux's Ready=True on this revision.
		log.DebugContext(ctx, "revision applied, waiting for its health checks before recording")
		return Result{Outcome: AwaitingHealth}, nil
	}

	src, err := t.opts.Providers(ctx, d)
	provider, repo := src.Provider, src.Repository
	if err != nil {
		t.opts.Recorder.AddError(ctx, SourceErrorReason(err), attrs)
		return Result{Outcome: NotRecorded}, fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	release, err := t.slots.acquire(ctx, src.Kind)
	if err != nil {
		return Result{}, err
	}
	defer release()
	attrs.Repository = redact.URL(repo.String())
	span.SetAttributes(attribute.String("vcs.repository.url.full", attrs.Repository))
	if src.CredentialsWithheld {
		t.opts.Recorder.AddError(ctx, telemetry.ReasonCredentialsWithheld, attrs)
	}

	rng, err := provider.Range(ctx, repo, base.Digest, head.Digest)
	switch {
	case errors.Is(err, commits.ErrNotFound):
		t.opts.Recorder.AddError(ctx, telemetry.ReasonCommitNotFound, attrs)
		if _, herr := provider.Commit(ctx, repo, head.Digest); herr == nil {
			// The recorded commit is gone (force-push, then garbage collection): the new revision is a fresh baseline.
			log.WarnContext(ctx, "recorded commit no longer in the repository: new revision kept as baseline, nothing recorded",
				"repository", attrs.Repository, "previous_revision", entry.Mark())
			export, err := t.baselineExport(ctx, src, d, head.Digest, log)
			if err != nil {
				return Result{}, err
			}
			return Result{Outcome: NotRecorded}, t.checkpoint(ctx, d, prev, observed, d.Revision, export)
		}
		log.WarnContext(ctx, "commit not found in repository: nothing recorded until a revision it knows", "repository", attrs.Repository, "base", base.Digest)
		return Result{Outcome: NotRecorded}, fmt.Errorf("%w: range %s..%s in %s: %w", ErrPermanent, base.Digest, head.Digest, attrs.Repository, err)
	case err != nil:
		t.opts.Recorder.AddError(ctx, lookupReason(src, err), attrs)
		return Result{}, fmt.Errorf("range %s..%s in %s: %w", base.Digest, head.Digest, attrs.Repository, err)
	}
	switch rng.Status {
	case commits.Ahead:
	case commits.Behind:
		// A rollback: the mark stays where it is, so a roll-forward records only commits past it.
		t.opts.Recorder.AddNotRecorded(ctx, rng.Status, attrs)
		log.WarnContext(ctx, "revision is behind the furthest recorded one (rollback): nothing recorded, mark kept",
			"status", string(rng.Status), "recorded_revision", entry.Mark())
		return Result{Outcome: NotRecorded}, t.checkpoint(ctx, d, prev, observed, entry.Mark(), entry.Export)
	case commits.Identical:
		return Result{Outcome: NotRecorded}, t.checkpoint(ctx, d, prev, observed, entry.Mark(), entry.Export)
	default:
		var done bool
		var res Result
		if rng, done, res, err = t.diverged(ctx, src, d, prev, entry, head.Digest, rng, observed, attrs, log); done {
			return res, err
		}
	}
	if rng.Truncated > 0 {
		t.opts.Recorder.AddTruncated(ctx, rng.Truncated, attrs)
		log.WarnContext(ctx, "commit range exceeds the cap: oldest commits not recorded", "truncated", rng.Truncated, "cap", commits.MaxRangeCommits)
	}

	delivered, export, err := t.delivered(ctx, src, d, rng.Commits, entry.Export, attrs, log)
	if err != nil {
		return Result{}, err
	}

	applied, fromFlux := d.Applied, true
	if applied.IsZero() {
		applied, fromFlux = observed, false
	}
	bounds := latency.Bounds{Now: observed, Tolerance: t.opts.ClockSkewTolerance}
	samples, rejected := latency.Compute(applied, delivered, bounds)
	fetchSamples, fetchRejected := latency.FetchStages(d.Fetched, applied, delivered, bounds)
	samples, rejected = append(samples, fetchSamples...), append(rejected, fetchRejected...)

	// The lookups are done: the slot goes to the next apply while this one waits on its shared ledger write.
	release()
	res := Result{Outcome: Recorded, Commits: delivered, Samples: samples, Applied: applied, AppliedFromFlux: fromFlux,
		repository: attrs.Repository, attrs: attrs, rejected: rejected}
	res.record = Record{Object: attrs, UID: d.UID, Revision: d.Revision, Commits: delivered, Samples: samples,
		Rejected: rejected, Fetched: d.Fetched, Applied: applied, AppliedFromFlux: fromFlux,
		WaitsForHealth: d.WaitsForHealth, Observed: observed, Apply: span.SpanContext(), Forge: d.Forge}
	res.record.Repository, _ = RepositoryOf(d)
	// The ledger is written before anything is emitted, with the notices to deliver: a failed write leaves
	// nothing recorded to repeat, nothing to send.
	if err := t.checkpointWith(ctx, d, prev, observed, d.Revision, export, &res.record); err != nil {
		return Result{}, err
	}
	return res, nil
}

// diverged handles a revision on other history than the mark: after a rollback, the commits built on the
// re-pointed branch are recorded (done false, rng holding them); otherwise it is a new baseline (done true).
func (t *Tracker) diverged(ctx context.Context, src Source, d flux.Deployment, prev *ledger.Entry, entry ledger.Entry, head string,
	rng commits.Range, observed time.Time, attrs telemetry.ObjectAttributes, log *slog.Logger) (commits.Range, bool, Result, error) {
	if entry.Revision != entry.Mark() {
		// After a rollback, the branch may have been re-pointed and built on: what is new since the applied
		// revision, less what lies on the way to the mark, was never recorded.
		cs, ok, err := sinceRollback(ctx, src, entry, head)
		if err != nil {
			t.opts.Recorder.AddError(ctx, lookupReason(src, err), attrs)
			return rng, true, Result{}, err
		}
		if ok {
			return commits.Range{Status: commits.Ahead, Commits: cs}, false, Result{}, nil
		}
	}
	// A force-push onto other history: none of its commits is known to be new, so it is a new baseline.
	t.opts.Recorder.AddNotRecorded(ctx, rng.Status, attrs)
	log.WarnContext(ctx, "revision diverged from the furthest recorded one (force-push): kept as baseline, nothing recorded",
		"status", string(rng.Status), "recorded_revision", entry.Mark())
	export, err := t.baselineExport(ctx, src, d, head, log)
	if err != nil {
		return rng, true, Result{}, err
	}
	return rng, true, Result{Outcome: NotRecorded}, t.checkpoint(ctx, d, prev, observed, d.Revision, export)
}

// sinceRollback returns the commits in (entry.Revision, head] that are not on the way from entry.Revision to
// the mark, when both ranges are plain first-parent histories from the applied revision.
func sinceRollback(ctx context.Context, src Source, entry ledger.Entry, head string) ([]commits.Commit, bool, error) {
	applied, err1 := revision.Parse(entry.Revision)
	mark, err2 := revision.Parse(entry.Mark())
	if err1 != nil || err2 != nil {
		return nil, false, nil
	}
	toHead, err := src.Provider.Range(ctx, src.Repository, applied.Digest, head)
	if err != nil || toHead.Status != commits.Ahead || toHead.Truncated > 0 {
		return nil, false, ignoreNotFound(err)
	}
	toMark, err := src.Provider.Range(ctx, src.Repository, applied.Digest, mark.Digest)
	if err != nil || toMark.Status != commits.Ahead || toMark.Truncated > 0 {
		return nil, false, ignoreNotFound(err)
	}
	recorded := make(map[string]bool, len(toMark.Commits))
	for _, c := range toMark.Commits {
		recorded[c.SHA] = true
	}
	var fresh []commits.Commit
	for _, c := range toHead.Commits {
		if !recorded[c.SHA] {
			fresh = append(fresh, c)
		}
	}
	return fresh, len(fresh) > 0, nil
}

func ignoreNotFound(err error) error {
	if errors.Is(err, commits.ErrNotFound) {
		return nil
	}
	return err
}

// lookupReason is the error reason counted for a failed lookup through src.
func lookupReason(src Source, err error) string {
	var rl *commits.RateLimitError
	switch {
	case errors.As(err, &rl):
		return telemetry.ReasonRateLimited
	case errors.Is(err, context.DeadlineExceeded):
		return telemetry.ReasonTimeout
	case errors.Is(err, commits.ErrBadResponse):
		return telemetry.ReasonBadResponse
	}
	return src.lookupReason()
}

// delivered pairs each commit of a range with its upstream commits; export is the last export recorded before
// the range, and the returned one the last export it holds.
func (t *Tracker) delivered(ctx context.Context, src Source, d flux.Deployment, cs []commits.Commit, export string, attrs telemetry.ObjectAttributes, log *slog.Logger) ([]latency.DeliveredCommit, string, error) {
	out := make([]latency.DeliveredCommit, 0, len(cs))
	for i, c := range cs {
		upstream, id, err := t.upstream(ctx, src, d, c.SHA, attrs, log)
		if i == len(cs)-1 && err == nil {
			upstream, id, err = t.artifactUpstream(ctx, d, upstream, id, attrs, log)
		}
		if err != nil {
			return nil, "", err
		}
		if id != "" && id == export {
			upstream = nil // the file is the one an earlier commit exported: not this commit's upstream
		}
		if id != "" {
			export = id
		}
		out = append(out, latency.DeliveredCommit{SHA: c.SHA, Committed: c.Time(t.opts.CommitTime), Upstream: upstream})
	}
	return out, export, nil
}

// exporterInfoPath is where d's exporter-info.json is, empty when disabled.
func (t *Tracker) exporterInfoPath(d flux.Deployment) string {
	if d.HasExporterInfoPath {
		return d.ExporterInfoPath
	}
	return t.opts.ExporterInfoPath
}

// upstream reads the exporter-info file at sha and returns its upstream commits and the export's identity
// (empty when there is none); a missing file means no upstream stage.
func (t *Tracker) upstream(ctx context.Context, src Source, d flux.Deployment, sha string, attrs telemetry.ObjectAttributes, log *slog.Logger) ([]latency.UpstreamCommit, string, error) {
	path := t.exporterInfoPath(d)
	if path == "" {
		return nil, "", nil
	}
	data, err := src.Provider.File(ctx, src.Repository, sha, path, exporterinfo.MaxSize)
	switch {
	case errors.Is(err, commits.ErrNotFound):
		return nil, "", nil
	case errors.Is(err, commits.ErrTooLarge):
		t.opts.Recorder.AddError(ctx, telemetry.ReasonExporterInfo, attrs)
		log.WarnContext(ctx, "exporter info too large: commit recorded without upstream stage", "commit", sha, "path", path, "error", err)
		return nil, "", nil
	case err != nil:
		t.opts.Recorder.AddError(ctx, lookupReason(src, err), attrs)
		return nil, "", fmt.Errorf("read %s at %s: %w", path, sha, err)
	}
	info, err := exporterinfo.Decode(data)
	if err != nil {
		t.opts.Recorder.AddError(ctx, telemetry.ReasonExporterInfo, attrs)
		log.WarnContext(ctx, "bad exporter info: commit recorded without upstream stage", "commit", sha, "path", path, "error", err)
		return nil, "", nil
	}
	t.countUpstreamCap(ctx, info, attrs, log)
	return upstreamCommits(info), info.ID(), nil
}

// artifactUpstream reads the applied OCI artifact's exporter-info layer, which names the upstream commits of the
// head commit; without an artifact or a layer, the git answer (upstream, id) stands.
func (t *Tracker) artifactUpstream(ctx context.Context, d flux.Deployment, upstream []latency.UpstreamCommit, id string, attrs telemetry.ObjectAttributes, log *slog.Logger) ([]latency.UpstreamCommit, string, error) {
	if t.opts.Artifacts == nil || d.OCIURL == "" || d.OCIDigest == "" || t.exporterInfoPath(d) == "" {
		return upstream, id, nil
	}
	a, err := t.opts.Artifacts.Artifact(ctx, d.OCIURL, d.OCIDigest)
	switch {
	case errors.Is(err, commits.ErrNotFound):
		return upstream, id, nil
	case errors.Is(err, commits.ErrTooLarge):
		t.opts.Recorder.AddError(ctx, telemetry.ReasonExporterInfo, attrs)
		log.WarnContext(ctx, "exporter info layer too large: commit recorded without upstream stage", "artifact", d.OCIDigest, "error", err)
		return nil, "", nil
	case err != nil:
		t.opts.Recorder.AddError(ctx, telemetry.ReasonOCI, attrs)
		return nil, "", fmt.Errorf("read OCI artifact %s: %w", d.OCIDigest, err)
	case a.ExporterInfo == nil:
		return upstream, id, nil
	}
	info, err := exporterinfo.Decode(a.ExporterInfo)
	if err != nil {
		t.opts.Recorder.AddError(ctx, telemetry.ReasonExporterInfo, attrs)
		log.WarnContext(ctx, "bad exporter info layer: commit recorded without upstream stage", "artifact", d.OCIDigest, "error", err)
		return nil, "", nil
	}
	t.countUpstreamCap(ctx, info, attrs, log)
	return upstreamCommits(info), info.ID(), nil
}

// countUpstreamCap counts and says so when an export listed more upstream commits than are kept.
func (t *Tracker) countUpstreamCap(ctx context.Context, info exporterinfo.Info, attrs telemetry.ObjectAttributes, log *slog.Logger) {
	if info.Truncated > 0 {
		t.opts.Recorder.AddError(ctx, telemetry.ReasonUpstreamCap, attrs)
		log.WarnContext(ctx, "exporter info lists more upstream commits than the cap: the oldest are not recorded",
			"truncated", info.Truncated, "cap", exporterinfo.MaxCommits)
	}
}

// upstreamCommits lists an export's upstream commits for the latency stages.
func upstreamCommits(info exporterinfo.Info) []latency.UpstreamCommit {
	out := make([]latency.UpstreamCommit, 0, len(info.Commits))
	for _, u := range info.Commits {
		out = append(out, latency.UpstreamCommit{SHA: u.Hash, Time: u.Time})
	}
	return out
}

// firstBaselineExport is baselineExport at an object's first sight, before its source is known.
func (t *Tracker) firstBaselineExport(ctx context.Context, d flux.Deployment, sha string, log *slog.Logger) (string, error) {
	if t.exporterInfoPath(d) == "" {
		return "", nil
	}
	src, err := t.opts.Providers(ctx, d)
	if err != nil {
		return "", nil // recording fails on the same source later, and says why
	}
	release, err := t.slots.acquire(ctx, src.Kind)
	if err != nil {
		return "", err
	}
	defer release()
	return t.baselineExport(ctx, src, d, sha, log)
}

// baselineExport identifies the exporter-info.json at a new baseline, so commits after it that leave the file
// alone do not record its upstream commits again. A transient failure (a limit, a deadline, a bad answer) is
// retried later rather than losing that protection; a missing or bad file means there is nothing to protect.
func (t *Tracker) baselineExport(ctx context.Context, src Source, d flux.Deployment, sha string, log *slog.Logger) (string, error) {
	if t.exporterInfoPath(d) == "" {
		return "", nil
	}
	_, id, err := t.upstream(ctx, src, d, sha, telemetry.ObjectAttributes{}, log)
	_, limited := commits.RetryAfter(err, t.opts.Clock.Now())
	switch {
	case limited, errors.Is(err, context.DeadlineExceeded), errors.Is(err, commits.ErrBadResponse):
		return "", fmt.Errorf("exporter info at baseline %s: %w", sha, err)
	case err != nil:
		// The repository cannot be read as it is (credentials, a missing commit): the baseline still counts.
		log.WarnContext(ctx, "exporter info at baseline not read: the next commit that leaves it alone may report its upstream commits", "error", err)
	}
	return id, nil
}

// Forget drops the ledger entries, gauge state and metric series of a deleted object.
func (t *Tracker) Forget(ctx context.Context, kind, namespace, name string) error {
	t.forgetObject(ctx, kind, namespace, name)
	// Found without copying the ledger: many objects may be deleted at once, each on its own worker.
	for _, uid := range t.opts.Ledger.Find(func(e ledger.Entry) bool { return e.Kind == kind && e.Namespace == namespace && e.Name == name }) {
		if err := t.removeEntry(ctx, uid, ledger.Entry{Kind: kind, Namespace: namespace, Name: name}); err != nil {
			return err
		}
	}
	return nil
}

// removeEntry deletes the ledger entry uid of the object e names.
func (t *Tracker) removeEntry(ctx context.Context, uid string, e ledger.Entry) error {
	if err := t.opts.Ledger.Delete(ctx, uid); err != nil {
		return fmt.Errorf("forget %s %s/%s: %w", e.Kind, e.Namespace, e.Name, err)
	}
	t.opts.Logger.InfoContext(ctx, "object gone: ledger entry removed", "kind", e.Kind, "namespace", e.Namespace, "name", e.Name, "uid", uid)
	return nil
}

// Prune drops the ledger entries for which exists reports false: objects deleted while the tracker was down,
// or deleted and created again under the same name (a new UID).
func (t *Tracker) Prune(ctx context.Context, exists func(uid string, e ledger.Entry) (bool, error)) error {
	for uid, e := range t.opts.Ledger.Entries() {
		ok, err := exists(uid, e)
		if err != nil {
			return fmt.Errorf("prune ledger: %w", err)
		}
		if ok {
			continue
		}
		t.forgetObject(ctx, e.Kind, e.Namespace, e.Name)
		if err := t.removeEntry(ctx, uid, e); err != nil {
			return err
		}
	}
	return nil
}

// checkpoint stores d's revision with mark as the furthest recorded revision, guarded by prev (the entry the
// decision was made from). A conflict is returned as is, for the caller to decide again.
func (t *Tracker) checkpoint(ctx context.Context, d flux.Deployment, prev *ledger.Entry, at time.Time, mark, export string) error {
	return t.checkpointWith(ctx, d, prev, at, mark, export, nil)
}

// appliesOf is prev's applies, with d's revision added when it is a new one: applied when rec (nil when nothing
// was recorded) or Flux says, else unknown and left out.
func appliesOf(d flux.Deployment, prev *ledger.Entry, rec *Record) []ledger.Apply {
	var applies []ledger.Apply
	if prev != nil {
		applies = prev.Applies
		if prev.Revision == d.Revision {
			return applies
		}
	}
	at := d.Applied
	if rec != nil {
		at = rec.Applied
	}
	head, err := revision.Parse(d.Revision)
	if err != nil || at.IsZero() {
		return applies
	}
	return ledger.WithApply(applies, ledger.Apply{Digest: head.Digest, At: at})
}

// checkpointWith is checkpoint that also queues, in the same write, the notices of rec (the Record of the apply,
// nil when it recorded nothing) and those of a stuck episode the apply ends.
func (t *Tracker) checkpointWith(ctx context.Context, d flux.Deployment, prev *ledger.Entry, at time.Time, mark, export string, rec *Record) error {
	e := ledger.Entry{Kind: d.Kind, Namespace: d.Namespace, Name: d.Name, Revision: d.Revision, Export: export, UpdatedAt: at.UTC().Truncate(time.Second)}
	if mark != d.Revision {
		e.Recorded = mark
	}
	e.Applies = appliesOf(d, prev, rec)
	items, err := t.recovery(d, prev, &e, at, rec)
	if err != nil {
		return err
	}
	if prev != nil && e.SameCheckpoint(*prev) {
		return nil // only the time would change: not worth a write
	}
	if rec != nil {
		notices, err := t.notices(*rec)
		if err != nil {
			return err
		}
		items = append(notices, items...)
	}
	if len(items) > 0 {
		err = t.outbox.SwapQueue(ctx, d.UID, prev, e, items)
	} else {
		err = t.opts.Ledger.Swap(ctx, d.UID, prev, e)
	}
	if errors.Is(err, ledger.ErrConflict) {
		return err
	}
	if err != nil {
		t.opts.Recorder.AddError(ctx, telemetry.ReasonLedger, telemetry.ObjectAttributes{
			Cluster: t.opts.ClusterName, Namespace: d.Namespace, Kind: d.Kind, Name: d.Name, Repository: redact.URL(d.RepositoryURL)})
		return fmt.Errorf("checkpoint %s/%s at %s: %w", d.Namespace, d.Name, d.Revision, err)
	}
	return nil
}
