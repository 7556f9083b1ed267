package monitoring

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"go.yaml.in/yaml/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
)

// Severities of the alerts: a critical alert pages, a warning opens a ticket.
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
)

// Options tune the generated rules.
type Options struct {
	// Objective is the share of commits the delivery SLO wants applied within Threshold, in (0, 1).
	Objective float64
	// Threshold is the commit → applied time the SLO allows: a bucket boundary of the reconcile-time histogram.
	Threshold time.Duration
	// StuckAfter is how long a commit may wait to be applied, or an object fail on a revision, before an alert.
	StuckAfter time.Duration
	// NotReadyFor is how long a Flux object may report Ready=False before an alert.
	NotReadyFor time.Duration
}

// DefaultOptions are the shipped rules: 99% of commits applied within 15 minutes.
func DefaultOptions() Options {
	return Options{Objective: 0.99, Threshold: 15 * time.Minute, StuckAfter: 15 * time.Minute, NotReadyFor: 15 * time.Minute}
}

// Validate refuses an objective outside (0, 1), non-positive durations and a threshold that is not a bucket
// boundary of the reconcile-time histogram (the ratio of commits within it could not be read from buckets).
func (o Options) Validate() error {
	if !(o.Objective > 0 && o.Objective < 1) {
		return fmt.Errorf("monitoring: objective %v is not between 0 and 1", o.Objective)
	}
	if o.StuckAfter <= 0 || o.NotReadyFor <= 0 {
		return errors.New("monitoring: StuckAfter and NotReadyFor must be positive")
	}
	buckets, err := reconcileBuckets()
	if err != nil {
		return err
	}
	if !slices.Contains(buckets, o.Threshold.Seconds()) {
		return fmt.Errorf("monitoring: threshold %s is not a bucket boundary of %s (buckets in seconds: %v)",
			o.Threshold, telemetry.MetricReconcile, buckets)
	}
	return nil
}

// reconcileBuckets are the bucket boundaries of the reconcile-time histogram.
func reconcileBuckets() ([]float64, error) {
	for _, d := range telemetry.Definitions {
		if d.Name == telemetry.MetricReconcile {
			return d.Buckets, nil
		}
	}
	return nil, fmt.Errorf("monitoring: metric %s is not defined", telemetry.MetricReconcile)
}

// burn is one multi-window burn-rate condition: both error ratios over factor × the error budget.
type burn struct {
	long, short time.Duration
	factor      float64
}

const day = 24 * time.Hour

// The SRE workbook's windows for a 30-day budget: pages spend 2% (1h) or 5% (6h) of it, tickets 10% (1d, 3d).
var (
	pageBurns   = []burn{{time.Hour, 5 * time.Minute, 14.4}, {6 * time.Hour, 30 * time.Minute, 6}}
	ticketBurns = []burn{{day, 2 * time.Hour, 3}, {3 * day, 6 * time.Hour, 1}}
)

// sloWindows are the windows of the recorded error ratios, shortest first.
func sloWindows() []time.Duration {
	var out []time.Duration
	for _, b := range slices.Concat(pageBurns, ticketBurns) {
		out = append(out, b.long, b.short)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// sloRatioName is the recorded error ratio (commits slower than the threshold) over window, per cluster.
func sloRatioName(n names, window time.Duration) string {
	return n.cluster + ":flux_commit_tracker_commits_slow:ratio_rate" + promDuration(window)
}

// leMatcher matches the bucket boundary seconds whether the le value reads "900" or "900.0" (Prometheus 3
// normalises classic histogram boundaries to floats on ingestion).
func leMatcher(seconds float64) string {
	s := strconv.FormatFloat(seconds, 'f', -1, 64)
	re := strings.ReplaceAll(s, ".", `\\.`)
	if seconds == math.Trunc(seconds) {
		re += `(\\.0)?`
	}
	return `le=~"` + re + `"`
}

// promDuration writes d the way Prometheus durations read: 15m, 1h30m, 3d.
func promDuration(d time.Duration) string {
	var b strings.Builder
	for _, u := range []struct {
		unit   time.Duration
		suffix string
	}{{day, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.unit; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.suffix)
			d -= n * u.unit
		}
	}
	if b.Len() == 0 {
		return "0s"
	}
	return b.String()
}

// humanDuration writes d for people: 15 minutes, 2 hours.
func humanDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return plural(int(d/time.Hour), "hour")
	case d%time.Minute == 0:
		return plural(int(d/time.Minute), "minute")
	}
	return d.String()
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// percent writes a share as a percentage: 0.99 → 99%, 0.995 → 99.5%.
func percent(share float64) string {
	return strconv.FormatFloat(math.Round(share*1e6)/1e4, 'f', -1, 64) + "%"
}

// Rule group names.
const (
	GroupSLO    = "flux-commit-tracker.slo"
	GroupAlerts = "flux-commit-tracker.alerts"
)

// Rules builds the recording and alerting rules for o, as the spec of a PrometheusRule; its groups are also
// the plain Prometheus rule file.
func Rules(o Options) (monitoringv1.PrometheusRuleSpec, error) {
	if err := o.Validate(); err != nil {
		return monitoringv1.PrometheusRuleSpec{}, err
	}
	n, err := newNames()
	if err != nil {
		return monitoringv1.PrometheusRuleSpec{}, err
	}
	return monitoringv1.PrometheusRuleSpec{Groups: []monitoringv1.RuleGroup{
		{Name: GroupSLO, Rules: sloRecords(n, o)},
		{Name: GroupAlerts, Rules: slices.Concat(readinessAlerts(o), rolloutAlerts(n, o), sloAlerts(n, o), trackerAlerts(n))},
	}}, nil
}

// sloRecords record, per cluster and window, the share of commits applied later than the threshold.
func sloRecords(n names, o Options) []monitoringv1.Rule {
	var out []monitoringv1.Rule
	for _, w := range sloWindows() {
		expr := fmt.Sprintf("1 - (\n  sum by (%[1]s) (rate(%[2]s_bucket{%[3]s}[%[4]s]))\n  /\n  sum by (%[1]s) (rate(%[2]s_count[%[4]s]))\n)\n",
			n.cluster, n.reconcile, leMatcher(o.Threshold.Seconds()), promDuration(w))
		out = append(out, monitoringv1.Rule{Record: sloRatioName(n, w), Expr: intstr.FromString(expr)})
	}
	return out
}

// alert is the one shape every alert here takes.
func alert(name, expr string, hold time.Duration, severity, summary, description string) monitoringv1.Rule {
	r := monitoringv1.Rule{
		Alert: name, Expr: intstr.FromString(expr),
		Labels:      map[string]string{"severity": severity},
		Annotations: map[string]string{"summary": summary, "description": description},
	}
	if hold > 0 {
		d := monitoringv1.Duration(promDuration(hold))
		r.For = &d
	}
	return r
}

// readinessAlerts fire on Flux objects that report Ready=False for o.NotReadyFor.
func readinessAlerts(o Options) []monitoringv1.Rule {
	const obj = "{{ $labels.exported_namespace }}/{{ $labels.name }}"
	held := humanDuration(o.NotReadyFor)
	expr := func(kind string) string {
		return fmt.Sprintf(`max without (instance, pod) (%s{customresource_kind=%q, ready="False"})`, FluxResourceInfo, kind) + "\n"
	}
	return []monitoringv1.Rule{
		alert("FluxGitRepositoryNotReady", expr("GitRepository"), o.NotReadyFor, SeverityWarning,
			"GitRepository "+obj+" is not ready",
			"GitRepository "+obj+" has reported Ready=False for over "+held+": source-controller cannot fetch it, so "+
				"no new commit reaches the objects that use it (last artifact revision {{ $labels.revision }}). "+
				"See `kubectl -n {{ $labels.exported_namespace }} describe gitrepository {{ $labels.name }}`."),
		alert("FluxKustomizationNotReady", expr("Kustomization"), o.NotReadyFor, SeverityWarning,
			"Kustomization "+obj+" is not reconciling successfully",
			"Kustomization "+obj+" has reported Ready=False for over "+held+": its latest revision is not applied "+
				"(last applied {{ $labels.revision }}). See `flux -n {{ $labels.exported_namespace }} get kustomization {{ $labels.name }}`."),
		alert("FluxHelmReleaseNotReady", expr("HelmRelease"), o.NotReadyFor, SeverityWarning,
			"HelmRelease "+obj+" is not reconciling successfully",
			"HelmRelease "+obj+" has reported Ready=False for over "+held+": its latest release failed or is not healthy "+
				"(last applied {{ $labels.revision }}). See `flux -n {{ $labels.exported_namespace }} get helmrelease {{ $labels.name }}`."),
	}
}

// rolloutAlerts fire on objects whose commit waits, or whose revision fails, for longer than o.StuckAfter.
func rolloutAlerts(n names, o Options) []monitoringv1.Rule {
	const obj = "{{ $labels.flux_kind }} {{ $labels.k8s_namespace_name }}/{{ $labels.flux_name }} in cluster {{ $labels.k8s_cluster_name }}"
	after := humanDuration(o.StuckAfter)
	limit := strconv.FormatFloat(o.StuckAfter.Seconds(), 'f', -1, 64)
	expr := func(metric string) string {
		return fmt.Sprintf("max by (%s) (%s) > %s\n", n.object(), metric, limit)
	}
	return []monitoringv1.Rule{
		alert("FluxCommitStuck", expr(n.pending), 0, SeverityWarning,
			obj+" has a commit waiting for over "+after,
			"The oldest commit the source of "+obj+" fetched has waited {{ $value | humanizeDuration }} without being applied. "+
				"Run `flux-commit-tracker where` on the object's latest commit to see where it stands."),
		alert("FluxRevisionFailing", expr(n.failing), 0, SeverityWarning,
			obj+" has failed on a revision for over "+after,
			obj+" has been failing to apply its latest revision for {{ $value | humanizeDuration }} (Ready=False, "+
				"lastAttemptedRevision not applied); the commits in it have not landed."),
	}
}

// sloAlerts are the multi-window, multi-burn-rate alerts of the delivery SLO.
func sloAlerts(n names, o Options) []monitoringv1.Rule {
	budget := strconv.FormatFloat(1-o.Objective, 'g', 10, 64)
	cond := func(bs []burn) string {
		var parts []string
		for _, b := range bs {
			f := strconv.FormatFloat(b.factor, 'f', -1, 64)
			parts = append(parts, fmt.Sprintf("(\n  %s > (%s * %s)\n  and\n  %s > (%s * %s)\n)",
				sloRatioName(n, b.long), f, budget, sloRatioName(n, b.short), f, budget))
		}
		return strings.Join(parts, "\nor\n") + "\n"
	}
	windows := func(bs []burn) string {
		var parts []string
		for _, b := range bs {
			parts = append(parts, fmt.Sprintf("%s and %s over %s×", promDuration(b.long), promDuration(b.short), strconv.FormatFloat(b.factor, 'f', -1, 64)))
		}
		return strings.Join(parts, ", or ")
	}
	slo := percent(o.Objective) + " of commits applied within " + humanDuration(o.Threshold)
	const where = " in cluster {{ $labels.k8s_cluster_name }}"
	return []monitoringv1.Rule{
		alert("FluxCommitDeliverySLOBurnFast", cond(pageBurns), 0, SeverityCritical,
			"Commits"+where+" are missing the delivery SLO fast",
			"The SLO is "+slo+" (commit → applied, flux_commit_tracker_flux_reconcile_time_seconds). The share of commits slower "+
				"than that is burning a 30-day error budget of "+percent(1-o.Objective)+" fast ("+windows(pageBurns)+
				" the budget): at this pace it is gone in days. Look for stuck or failing objects (FluxCommitStuck, FluxRevisionFailing) "+
				"and the stage split on the Commit delivery dashboard."),
		alert("FluxCommitDeliverySLOBurnSlow", cond(ticketBurns), 0, SeverityWarning,
			"Commits"+where+" are missing the delivery SLO",
			"The SLO is "+slo+". The share of commits slower than that is using up a 30-day error budget of "+
				percent(1-o.Objective)+" ("+windows(ticketBurns)+" the budget). See the stage split on the Commit delivery dashboard: "+
				"a slow source interval, a long dependsOn chain or slow health checks."),
	}
}

// trackerAlerts watch the tracker itself.
func trackerAlerts(n names) []monitoringv1.Rule {
	absent := fmt.Sprintf("absent(%s)\n", n.outboxDepth)
	notRecording := fmt.Sprintf("(sum by (%[1]s) (increase(%[2]s[30m])) > 0)\nunless on (%[1]s)\n(sum by (%[1]s) (increase(%[3]s[1h])) > 0)\n",
		n.cluster, n.errors, n.recorded)
	return []monitoringv1.Rule{
		alert("FluxCommitTrackerAbsent", absent, 10*time.Minute, SeverityWarning,
			"No flux-commit-tracker is running and leading",
			"Prometheus has had no "+n.outboxDepth+" for 10 minutes. The leading tracker replica reports it once its ledger "+
				"is loaded, with or without notice sinks, so no tracker is running, scraped, leading and able to read its ledger: "+
				"commits are not being recorded, and the delivery SLO alerts cannot fire."),
		alert("FluxCommitTrackerNotRecording", notRecording, time.Hour, SeverityWarning,
			"flux-commit-tracker in cluster {{ $labels.k8s_cluster_name }} keeps failing and records no commits",
			"For an hour the tracker has counted errors (flux_commit_tracker_errors_total) at least every 30 minutes and "+
				"recorded no commit (flux_commit_tracker_commits_recorded_total): it is running but failing to record, e.g. a "+
				"revoked GitHub token, a rate limit or a ledger it cannot write. A quiet cluster with no errors does not fire. "+
				"Check the errors by reason on the Commit delivery dashboard and the tracker's logs."),
	}
}

// generatedHeader starts every generated YAML file.
const generatedHeader = "# Generated by `go run ./hack/gen-monitoring` from internal/monitoring; do not edit.\n"

// RulesFile renders spec as a Prometheus rule file.
func RulesFile(spec monitoringv1.PrometheusRuleSpec) ([]byte, error) {
	return toYAML(spec)
}

// PrometheusRuleObject wraps spec in a prometheus-operator PrometheusRule named flux-commit-tracker.
func PrometheusRuleObject(spec monitoringv1.PrometheusRuleSpec) monitoringv1.PrometheusRule {
	return monitoringv1.PrometheusRule{
		TypeMeta: metav1.TypeMeta{APIVersion: monitoringv1.SchemeGroupVersion.String(), Kind: monitoringv1.PrometheusRuleKind},
		ObjectMeta: metav1.ObjectMeta{Name: product, Labels: map[string]string{
			"app.kubernetes.io/name": product, "app.kubernetes.io/component": "monitoring",
		}},
		Spec: spec,
	}
}

// PrometheusRuleFile renders spec as a PrometheusRule manifest.
func PrometheusRuleFile(spec monitoringv1.PrometheusRuleSpec) ([]byte, error) {
	return toYAML(PrometheusRuleObject(spec))
}

// toYAML renders v's JSON form as block-style YAML in the JSON field order, without folding long lines.
func toYAML(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("monitoring: encode rules: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("monitoring: encode rules: %w", err)
	}
	blockStyle(&doc)
	var b bytes.Buffer
	b.WriteString(generatedHeader)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("monitoring: encode rules: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("monitoring: encode rules: %w", err)
	}
	return b.Bytes(), nil
}

// blockStyle drops the flow and quoting styles JSON input gives every node, so the encoder picks YAML's own.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}
