package telemetry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/forge"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/outbox"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/redact"
)

// ScopeName is the instrumentation scope of every meter, tracer and logger the
// tracker creates.
const ScopeName = "github.com/flux-commit-tracker/flux-commit-tracker"

// Metric names. The three histograms keep the seed project's names so existing
// dashboards and SLOs carry over.
const (
	MetricE2E             = "flux_commit_tracker.e2e.export-time"
	MetricExport          = "flux_commit_tracker.kube-manifests-exporter.export-time"
	MetricReconcile       = "flux_commit_tracker.flux.reconcile-time"
	MetricFetch           = "flux_commit_tracker.flux.fetch-time"
	MetricApply           = "flux_commit_tracker.flux.apply-time"
	MetricPendingAge      = "flux_commit_tracker.pending-commit-age"
	MetricFailingAge      = "flux_commit_tracker.failing-revision-age"
	MetricCommitsRecorded = "flux_commit_tracker.commits.recorded"
	MetricErrors          = "flux_commit_tracker.errors"
	MetricClockSkew       = "flux_commit_tracker.clock-skew"
	MetricTruncated       = "flux_commit_tracker.range.truncated-commits"
	MetricNotRecorded     = "flux_commit_tracker.range.not-recorded"
	MetricGitHubCalls     = "flux_commit_tracker.github.calls"
	MetricGitCalls        = "flux_commit_tracker.git.calls"
	MetricOverflow        = "flux_commit_tracker.metric.overflow"
	MetricDeliveries      = "flux_commit_tracker.outbox.deliveries"
	MetricDeliveryLatency = "flux_commit_tracker.outbox.delivery-latency"
	MetricOutboxDepth     = "flux_commit_tracker.outbox.depth"
	MetricForgePosts      = "flux_commit_tracker.forge.posts"
)

// Attribute keys. Object attributes identify the Flux object a sample is about;
// commit SHAs never become attributes (they go to traces, logs and exemplars).
const (
	AttrCluster    = string(semconv.K8SClusterNameKey)       // k8s.cluster.name
	AttrNamespace  = string(semconv.K8SNamespaceNameKey)     // k8s.namespace.name
	AttrKind       = "flux.kind"                             // Kustomization, HelmRelease
	AttrName       = "flux.name"                             // the Flux object's name
	AttrRepository = string(semconv.VCSRepositoryURLFullKey) // vcs.repository.url.full
	AttrReason     = "reason"
	AttrStage      = "stage"
	AttrStatus     = "status"
	AttrOutcome    = "outcome"
	AttrMetric     = "metric" // the OTel name of the metric a sample is about
	AttrSink       = "sink"
	AttrPost       = "post" // what was posted on a forge: status, deployment
	AttrResult     = "result"
)

// Other is what an enumerated attribute records when given a value outside its
// fixed set, so a caller's typo cannot grow cardinality.
const Other = "other"

// Values of the error counter's reason attribute.
const (
	ReasonInvalidRevision     = "invalid_revision"     // a Flux revision that does not parse
	ReasonRepositoryURL       = "repository_url"       // a source URL no provider understands
	ReasonCommitNotFound      = "commit_not_found"     // the provider has no such commit
	ReasonGitHub              = "github"               // the GitHub API failed
	ReasonGit                 = "git"                  // a git fetch or log failed
	ReasonOCI                 = "oci"                  // an OCI registry call failed
	ReasonExporterInfo        = "exporter_info"        // exporter-info.json missing or invalid
	ReasonLedger              = "ledger"               // the exactly-once ledger failed
	ReasonLedgerBadEntry      = "ledger_bad_entry"     // a ledger key that does not decode; skipped
	ReasonBadResponse         = "bad_response"         // an empty, null, truncated or wrongly typed answer
	ReasonRateLimited         = "rate_limited"         // a provider rate limit; the object is requeued
	ReasonTimeout             = "timeout"              // an outbound call passed its deadline
	ReasonImplausibleTime     = "implausible_time"     // a time before 2005 or beyond the clock-skew tolerance
	ReasonUpstreamCap         = "upstream_truncated"   // upstream commits beyond the exporter-info cap
	ReasonUnsafeURL           = "unsafe_url"           // a local scheme, or credentials over plain http
	ReasonCredentialsWithheld = "credentials_withheld" // an override pointing away from the source's host: read anonymously
)

// The clock-skew counter's stage attribute takes latency's stages, the not-recorded counter's status attribute
// the range statuses that record nothing, and the call counters' outcome attribute the providers' outcomes.

// names lists enum values as attribute values, then Other.
func names[T ~string](values ...T) []string {
	out := make([]string, 0, len(values)+1)
	for _, v := range values {
		out = append(out, string(v))
	}
	return append(out, Other)
}

// Kind is the instrument type of a [Definition].
type Kind string

// Instrument kinds.
const (
	Histogram Kind = "histogram" // float64 histogram with explicit buckets
	Counter   Kind = "counter"   // int64 monotonic counter
	Gauge     Kind = "gauge"     // float64 observable gauge, read at collection time
)

// Definition declares one metric. [Definitions] is the single source of truth
// for instruments, tests and the README.
type Definition struct {
	Name        string
	Kind        Kind
	Unit        string
	Description string
	// Attributes lists the attribute keys every sample carries, in order.
	Attributes []string
	// Values fixes the allowed values of enumerated attributes; anything else
	// is recorded as [Other].
	Values map[string][]string
	// Buckets are a histogram's explicit bucket boundaries.
	Buckets []float64
	// FromStore marks a metric the [Store] emits itself rather than one recorded through an instrument.
	FromStore bool
}

// LatencyBuckets suit commit latencies from a second to two hours.
var LatencyBuckets = []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200}

// ObjectAttributeKeys are the attributes of [ObjectAttributes], in order.
var ObjectAttributeKeys = []string{AttrCluster, AttrNamespace, AttrKind, AttrName, AttrRepository}

// Definitions is every metric the tracker records.
var Definitions = []Definition{
	{
		Name: MetricE2E, Kind: Histogram, Unit: "s", Buckets: LatencyBuckets,
		Description: "Upstream commit (or the manifests commit when there is none) to applied by Flux; one sample per upstream commit.",
		Attributes:  ObjectAttributeKeys,
	},
	{
		Name: MetricExport, Kind: Histogram, Unit: "s", Buckets: LatencyBuckets,
		Description: "Upstream commit to the manifests commit that exported it; one sample per upstream commit.",
		Attributes:  ObjectAttributeKeys,
	},
	{
		Name: MetricReconcile, Kind: Histogram, Unit: "s", Buckets: LatencyBuckets,
		Description: "Manifests commit to applied by Flux; one sample per manifests commit.",
		Attributes:  ObjectAttributeKeys,
	},
	{
		Name: MetricFetch, Kind: Histogram, Unit: "s", Buckets: LatencyBuckets,
		Description: "Manifests commit to fetched by the Flux source (its artifact's lastUpdateTime); one sample per manifests commit, when Flux reports the fetch of the applied revision.",
		Attributes:  ObjectAttributeKeys,
	},
	{
		Name: MetricApply, Kind: Histogram, Unit: "s", Buckets: LatencyBuckets,
		Description: "Fetched by the Flux source to applied by Flux; one sample per manifests commit, when Flux reports the fetch of the applied revision.",
		Attributes:  ObjectAttributeKeys,
	},
	{
		Name: MetricPendingAge, Kind: Gauge, Unit: "s",
		Description: "Age of the oldest commit the source has fetched but the object has not applied; 0 when the object is up to date.",
		Attributes:  ObjectAttributeKeys,
	},
	{
		Name: MetricFailingAge, Kind: Gauge, Unit: "s",
		Description: "How long the object has been failing on a revision (Ready=False and lastAttemptedRevision not applied); 0 when healthy.",
		Attributes:  ObjectAttributeKeys,
	},
	{
		Name: MetricCommitsRecorded, Kind: Counter, Unit: "{commit}",
		Description: "Manifests commits recorded as applied.",
		Attributes:  ObjectAttributeKeys,
	},
	{
		Name: MetricErrors, Kind: Counter, Unit: "{error}",
		Description: "Errors that stopped a revision or commit from being recorded, by reason.",
		Attributes:  withKey(AttrReason),
		Values: map[string][]string{AttrReason: {
			ReasonInvalidRevision, ReasonRepositoryURL, ReasonCommitNotFound, ReasonGitHub,
			ReasonGit, ReasonOCI, ReasonExporterInfo, ReasonLedger, ReasonLedgerBadEntry, ReasonBadResponse,
			ReasonRateLimited, ReasonTimeout, ReasonImplausibleTime, ReasonUpstreamCap, ReasonUnsafeURL,
			ReasonCredentialsWithheld, Other,
		}},
	},
	{
		Name: MetricClockSkew, Kind: Counter, Unit: "{sample}",
		Description: "Stage durations that came out negative (skewed clocks) and were recorded as 0.",
		Attributes:  withKey(AttrStage),
		Values:      map[string][]string{AttrStage: names(latency.Stages...)},
	},
	{
		Name: MetricTruncated, Kind: Counter, Unit: "{commit}",
		Description: "Commits not recorded because a revision delivered more than the commit range cap.",
		Attributes:  ObjectAttributeKeys,
	},
	{
		Name: MetricNotRecorded, Kind: Counter, Unit: "{revision}",
		Description: "Applied revisions whose commits were not recorded because they are behind (rollback) or diverged from (force-push) the last recorded one.",
		Attributes:  withKey(AttrStatus),
		Values:      map[string][]string{AttrStatus: names(commits.Behind, commits.Diverged)},
	},
	{
		Name: MetricGitHubCalls, Kind: Counter, Unit: "{call}",
		Description: "GitHub API lookups, by outcome.",
		Attributes:  []string{AttrOutcome},
		Values:      map[string][]string{AttrOutcome: names(commits.CallCacheHit, commits.CallNotModified, commits.CallSuccess, commits.CallError)},
	},
	{
		Name: MetricGitCalls, Kind: Counter, Unit: "{call}",
		Description: "Plain-git lookups, by outcome: answered from the local mirror (cache_hit), or a fetch that succeeded or failed.",
		Attributes:  []string{AttrOutcome},
		Values:      map[string][]string{AttrOutcome: names(commits.CallCacheHit, commits.CallSuccess, commits.CallError)},
	},
	{
		Name: MetricDeliveries, Kind: Counter, Unit: "{attempt}",
		Description: "Attempts to deliver a notice from the outbox, by sink and result: delivered, retry (the destination failed; tried again with backoff), refused, unconfigured or overflow (dropped).",
		Attributes:  []string{AttrSink, AttrResult},
		Values:      map[string][]string{AttrSink: names(outbox.Sinks...), AttrResult: names(outbox.Results...)},
	},
	{
		Name: MetricForgePosts, Kind: Counter, Unit: "{post}",
		Description: "Commit statuses and GitHub deployment statuses that were due, by kind and result: posted, unchanged (the forge already showed it), capped, refused or error (retried later).",
		Attributes:  []string{AttrPost, AttrResult},
		Values:      map[string][]string{AttrPost: names(forge.PostKinds...), AttrResult: names(forge.PostResults...)},
	},
	{
		Name: MetricDeliveryLatency, Kind: Histogram, Unit: "s", Buckets: LatencyBuckets,
		Description: "From the apply that made a notice to its delivery, by sink.",
		Attributes:  []string{AttrSink},
		Values:      map[string][]string{AttrSink: names(outbox.Sinks...)},
	},
	{
		Name: MetricOutboxDepth, Kind: Gauge, Unit: "{notice}",
		Description: "Notices waiting in the outbox, by sink; read from the leading replica's ledger.",
		Attributes:  []string{AttrSink},
		Values:      map[string][]string{AttrSink: names(outbox.Sinks...)},
	},
	{
		Name: MetricOverflow, Kind: Counter, Unit: "{point}", FromStore: true,
		Description: "Collected data points merged into a metric's otel.metric.overflow series because it had reached --metrics-cardinality-limit series, by metric; 0 until the first.",
		Attributes:  []string{AttrMetric},
	},
}

// definition returns the definition of metric name.
func definition(name string) (Definition, bool) {
	i := slices.IndexFunc(Definitions, func(d Definition) bool { return d.Name == name })
	if i < 0 {
		return Definition{}, false
	}
	return Definitions[i], true
}

func withKey(key string) []string {
	return append(slices.Clone(ObjectAttributeKeys), key)
}

// ObjectAttributes identify the Flux object a sample is about. Empty fields are
// recorded as empty strings so every series of a metric has the same labels.
type ObjectAttributes struct {
	Cluster, Namespace, Kind, Name, Repository string
}

func (a ObjectAttributes) set(extra ...attribute.KeyValue) attribute.Set {
	kvs := append([]attribute.KeyValue{
		attribute.String(AttrCluster, a.Cluster),
		attribute.String(AttrNamespace, a.Namespace),
		attribute.String(AttrKind, a.Kind),
		attribute.String(AttrName, a.Name),
		attribute.String(AttrRepository, redact.URL(a.Repository)), // never a URL's userinfo or query
	}, extra...)
	return attribute.NewSet(kvs...)
}

// Metrics records the tracker's metrics. Build it once with [NewMetrics] and
// pass it to whoever records. A nil *Metrics records nothing.
type Metrics struct {
	meter                                         metric.Meter
	e2e, export, reconcile, fetch, apply          metric.Float64Histogram
	pendingAge, failingAge                        metric.Float64ObservableGauge
	commitsRecorded, errors, clockSkew            metric.Int64Counter
	truncated, notRecorded, githubCalls, gitCalls metric.Int64Counter
	deliveries, forgePosts                        metric.Int64Counter
	deliveryLatency                               metric.Float64Histogram
	outboxDepth                                   metric.Float64ObservableGauge
	values                                        map[string]map[string][]string // metric → key → allowed

	// store, from a [MeterProvider], forgets deleted objects' series; nil with any other provider.
	store *Store
	// aggregate sums object attributes away at the provider's [Aggregation]; nil keeps them.
	aggregate attribute.Filter
	members   *members
}

// NewMetrics creates every instrument in [Definitions] on mp's meter for
// [ScopeName]. With a [MeterProvider], [Metrics.ForgetObject] drops series and
// the rollout gauges follow its aggregation.
func NewMetrics(mp metric.MeterProvider) (*Metrics, error) {
	if mp == nil {
		return nil, errors.New("telemetry: nil MeterProvider")
	}
	meter := mp.Meter(ScopeName)
	inst, err := newInstruments(meter, Definitions)
	if err != nil {
		return nil, err
	}
	var errs []error
	m := &Metrics{
		meter:           meter,
		fetch:           instrument[metric.Float64Histogram](inst, MetricFetch, &errs),
		apply:           instrument[metric.Float64Histogram](inst, MetricApply, &errs),
		pendingAge:      instrument[metric.Float64ObservableGauge](inst, MetricPendingAge, &errs),
		failingAge:      instrument[metric.Float64ObservableGauge](inst, MetricFailingAge, &errs),
		e2e:             instrument[metric.Float64Histogram](inst, MetricE2E, &errs),
		export:          instrument[metric.Float64Histogram](inst, MetricExport, &errs),
		reconcile:       instrument[metric.Float64Histogram](inst, MetricReconcile, &errs),
		commitsRecorded: instrument[metric.Int64Counter](inst, MetricCommitsRecorded, &errs),
		errors:          instrument[metric.Int64Counter](inst, MetricErrors, &errs),
		clockSkew:       instrument[metric.Int64Counter](inst, MetricClockSkew, &errs),
		truncated:       instrument[metric.Int64Counter](inst, MetricTruncated, &errs),
		notRecorded:     instrument[metric.Int64Counter](inst, MetricNotRecorded, &errs),
		githubCalls:     instrument[metric.Int64Counter](inst, MetricGitHubCalls, &errs),
		gitCalls:        instrument[metric.Int64Counter](inst, MetricGitCalls, &errs),
		deliveries:      instrument[metric.Int64Counter](inst, MetricDeliveries, &errs),
		forgePosts:      instrument[metric.Int64Counter](inst, MetricForgePosts, &errs),
		deliveryLatency: instrument[metric.Float64Histogram](inst, MetricDeliveryLatency, &errs),
		outboxDepth:     instrument[metric.Float64ObservableGauge](inst, MetricOutboxDepth, &errs),
		values:          map[string]map[string][]string{},
	}
	for _, d := range Definitions {
		m.values[d.Name] = d.Values
	}
	if p, ok := mp.(*MeterProvider); ok {
		m.store, m.aggregate, m.members = p.Store, p.aggregation.filter(), newMembers(p.aggregation)
	}
	return m, errors.Join(errs...)
}

// newInstruments creates one instrument per definition, keyed by name.
func newInstruments(meter metric.Meter, defs []Definition) (map[string]any, error) {
	inst := make(map[string]any, len(defs))
	for _, d := range defs {
		if d.FromStore {
			continue
		}
		var (
			in  any
			err error
		)
		switch d.Kind {
		case Histogram:
			in, err = meter.Float64Histogram(d.Name, metric.WithUnit(d.Unit), metric.WithDescription(d.Description),
				metric.WithExplicitBucketBoundaries(d.Buckets...))
		case Counter:
			in, err = meter.Int64Counter(d.Name, metric.WithUnit(d.Unit), metric.WithDescription(d.Description))
		case Gauge:
			in, err = meter.Float64ObservableGauge(d.Name, metric.WithUnit(d.Unit), metric.WithDescription(d.Description))
		default:
			err = fmt.Errorf("unknown kind %q", d.Kind)
		}
		if err != nil {
			return nil, fmt.Errorf("telemetry: metric %s: %w", d.Name, err)
		}
		inst[d.Name] = in
	}
	return inst, nil
}

func instrument[T any](inst map[string]any, name string, errs *[]error) T {
	in, ok := inst[name].(T)
	if !ok {
		var zero T
		*errs = append(*errs, fmt.Errorf("telemetry: metric %s: not defined as %T", name, zero))
	}
	return in
}

// object is the attribute set of a sample about a, noted as a member of its group.
func (m *Metrics) object(a ObjectAttributes, extra ...attribute.KeyValue) attribute.Set {
	set := a.set(extra...)
	if m.members != nil {
		m.members.add(a, set)
	}
	return set
}

// ForgetObject drops every series of a deleted Flux object, matched by namespace, kind and name, from /metrics
// and OTLP export at their next collection. Aggregated to namespace or cluster, a group's series go with its
// last object. A no-op without a [MeterProvider] and on a nil *Metrics.
func (m *Metrics) ForgetObject(ctx context.Context, a ObjectAttributes) {
	if m == nil || m.store == nil {
		return
	}
	if group, last := m.members.remove(a); last {
		m.store.Forget(ctx, group)
	}
}

// enum returns v if it is an allowed value of key on metric name, else Other.
func (m *Metrics) enum(name, key, v string) attribute.KeyValue {
	if !slices.Contains(m.values[name][key], v) {
		v = Other
	}
	return attribute.String(key, v)
}

// Durations must not be negative: the caller clamps skew to 0 (and calls
// AddClockSkew). A negative duration reaching here is a caller bug and is
// dropped rather than recorded.

// ObserveE2E records upstream commit (or manifests commit) → applied.
func (m *Metrics) ObserveE2E(ctx context.Context, d time.Duration, a ObjectAttributes) {
	if m != nil && d >= 0 {
		m.e2e.Record(ctx, d.Seconds(), metric.WithAttributeSet(m.object(a)))
	}
}

// ObserveExport records upstream commit → manifests commit.
func (m *Metrics) ObserveExport(ctx context.Context, d time.Duration, a ObjectAttributes) {
	if m != nil && d >= 0 {
		m.export.Record(ctx, d.Seconds(), metric.WithAttributeSet(m.object(a)))
	}
}

// ObserveReconcile records manifests commit → applied.
func (m *Metrics) ObserveReconcile(ctx context.Context, d time.Duration, a ObjectAttributes) {
	if m != nil && d >= 0 {
		m.reconcile.Record(ctx, d.Seconds(), metric.WithAttributeSet(m.object(a)))
	}
}

// AddCommitsRecorded counts n manifests commits recorded; n <= 0 is ignored.
func (m *Metrics) AddCommitsRecorded(ctx context.Context, n int, a ObjectAttributes) {
	if m != nil && n > 0 {
		m.commitsRecorded.Add(ctx, int64(n), metric.WithAttributeSet(m.object(a)))
	}
}

// AddError counts one error; reason is one of the Reason* constants.
func (m *Metrics) AddError(ctx context.Context, reason string, a ObjectAttributes) {
	if m != nil {
		m.errors.Add(ctx, 1, metric.WithAttributeSet(m.object(a, m.enum(MetricErrors, AttrReason, reason))))
	}
}

// AddClockSkew counts one negative duration clamped to 0 at stage.
func (m *Metrics) AddClockSkew(ctx context.Context, stage latency.Stage, a ObjectAttributes) {
	if m != nil {
		m.clockSkew.Add(ctx, 1, metric.WithAttributeSet(m.object(a, m.enum(MetricClockSkew, AttrStage, string(stage)))))
	}
}

// AddTruncated counts n commits cut by the range cap; n <= 0 is ignored.
func (m *Metrics) AddTruncated(ctx context.Context, n int, a ObjectAttributes) {
	if m != nil && n > 0 {
		m.truncated.Add(ctx, int64(n), metric.WithAttributeSet(m.object(a)))
	}
}

// AddNotRecorded counts one revision not recorded; status is commits.Behind or commits.Diverged.
func (m *Metrics) AddNotRecorded(ctx context.Context, status commits.RangeStatus, a ObjectAttributes) {
	if m != nil {
		m.notRecorded.Add(ctx, 1, metric.WithAttributeSet(m.object(a, m.enum(MetricNotRecorded, AttrStatus, string(status)))))
	}
}

// AddGitHubCall counts one GitHub lookup by its outcome.
func (m *Metrics) AddGitHubCall(ctx context.Context, outcome commits.CallOutcome) {
	if m != nil {
		m.githubCalls.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(m.enum(MetricGitHubCalls, AttrOutcome, string(outcome)))))
	}
}

// AddGitCall counts one plain-git lookup by its outcome.
func (m *Metrics) AddGitCall(ctx context.Context, outcome commits.CallOutcome) {
	if m != nil {
		m.gitCalls.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(m.enum(MetricGitCalls, AttrOutcome, string(outcome)))))
	}
}

// ObserveFetch records manifests commit → fetched by the Flux source.
func (m *Metrics) ObserveFetch(ctx context.Context, d time.Duration, a ObjectAttributes) {
	if m != nil && d >= 0 {
		m.fetch.Record(ctx, d.Seconds(), metric.WithAttributeSet(m.object(a)))
	}
}

// ObserveApply records fetched by the Flux source → applied.
func (m *Metrics) ObserveApply(ctx context.Context, d time.Duration, a ObjectAttributes) {
	if m != nil && d >= 0 {
		m.apply.Record(ctx, d.Seconds(), metric.WithAttributeSet(m.object(a)))
	}
}

// RolloutState is what the stuck-rollout gauges report for one object.
type RolloutState struct {
	Attributes ObjectAttributes
	// PendingSince is the commit time of the oldest fetched but unapplied commit; zero when up to date.
	PendingSince time.Time
	// FailingSince is when the object started failing on its attempted revision; zero when healthy.
	FailingSince time.Time
}

// ObserveRollouts reports the stuck-rollout gauges from states at every
// collection, as ages at now(). Aggregated, a series reports its oldest object.
func (m *Metrics) ObserveRollouts(states func() []RolloutState, now func() time.Time) (metric.Registration, error) {
	type ages struct {
		set              attribute.Set
		pending, failing float64
	}
	reg, err := m.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		t := now()
		var order []*ages
		group := map[attribute.Distinct]*ages{}
		for _, s := range states() {
			set := s.Attributes.set()
			if m.aggregate != nil {
				set, _ = set.Filter(m.aggregate)
			}
			g, ok := group[set.Equivalent()]
			if !ok {
				g = &ages{set: set}
				group[set.Equivalent()] = g
				order = append(order, g)
			}
			g.pending, g.failing = max(g.pending, age(t, s.PendingSince)), max(g.failing, age(t, s.FailingSince))
		}
		for _, g := range order {
			o.ObserveFloat64(m.pendingAge, g.pending, metric.WithAttributeSet(g.set))
			o.ObserveFloat64(m.failingAge, g.failing, metric.WithAttributeSet(g.set))
		}
		return nil
	}, m.pendingAge, m.failingAge)
	if err != nil {
		return nil, fmt.Errorf("telemetry: register rollout gauges: %w", err)
	}
	return reg, nil
}

// age is the seconds from since to now, 0 for a zero since or a future one.
func age(now, since time.Time) float64 {
	if since.IsZero() || since.After(now) {
		return 0
	}
	return now.Sub(since).Seconds()
}

// AddDelivery counts one attempt to deliver a notice of sink, and the latency of a delivered one.
func (m *Metrics) AddDelivery(ctx context.Context, sink, result string, took time.Duration) {
	if m == nil {
		return
	}
	sinkAttr := m.enum(MetricDeliveries, AttrSink, sink)
	m.deliveries.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(sinkAttr, m.enum(MetricDeliveries, AttrResult, result))))
	if took > 0 {
		m.deliveryLatency.Record(ctx, took.Seconds(), metric.WithAttributeSet(attribute.NewSet(sinkAttr)))
	}
}

// AddForgePost counts one status or deployment status that was due on a forge, and how it ended.
func (m *Metrics) AddForgePost(ctx context.Context, kind, result string) {
	if m == nil {
		return
	}
	m.forgePosts.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(m.enum(MetricForgePosts, AttrPost, kind), m.enum(MetricForgePosts, AttrResult, result))))
}

// ObserveOutbox reports, at each collection, the notices depth returns waiting per sink.
func (m *Metrics) ObserveOutbox(depth func() map[string]int) (metric.Registration, error) {
	reg, err := m.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		counts := map[string]int{}
		for sink, n := range depth() {
			counts[m.enum(MetricOutboxDepth, AttrSink, sink).Value.AsString()] += n
		}
		for _, sink := range m.values[MetricOutboxDepth][AttrSink] {
			o.ObserveFloat64(m.outboxDepth, float64(counts[sink]), metric.WithAttributeSet(attribute.NewSet(attribute.String(AttrSink, sink))))
		}
		return nil
	}, m.outboxDepth)
	if err != nil {
		return nil, fmt.Errorf("telemetry: register outbox gauge: %w", err)
	}
	return reg, nil
}
