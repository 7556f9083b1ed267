package monitoring

import (
	"fmt"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Dashboard UIDs.
const (
	CommitDeliveryUID = "flux-commit-delivery"
	FluxClusterUID    = "flux-cluster-readiness"
)

// quantiles are the latency percentiles the dashboard draws.
var quantiles = []struct {
	q     string
	label string
}{{"0.5", "p50"}, {"0.9", "p90"}, {"0.99", "p99"}}

// traceLink opens an exemplar's trace (its trace_id) in the traces datasource.
var traceLink = map[string]any{
	"title": "Trace of this commit",
	"url": `/explore?schemaVersion=1&panes={"trace":{"datasource":"${` + VarTraces + `}","queries":[{"refId":"A",` +
		`"datasource":{"type":"tempo","uid":"${` + VarTraces + `}"},"queryType":"traceql","query":"${__value.raw}"}],` +
		`"range":{"from":"now-1h","to":"now"}}}`,
	"targetBlank": true,
}

// traceLinks put traceLink on the exemplars' trace_id field.
var traceLinks = []dashboard.DynamicConfigValue{{Id: "links", Value: []any{traceLink}}}

// delivery builds the commit delivery dashboard's panels on n's names.
type delivery struct {
	n   names
	sel string // the variables' label matchers
}

// quantile is the q-quantile of histogram family over window, summed by the labels in by (le is added).
func (d delivery) quantile(q, family, by, window string) string {
	group := "le"
	if by != "" {
		group += ", " + by
	}
	return fmt.Sprintf("histogram_quantile(%s, sum by (%s) (rate(%s_bucket{%s}[%s])))", q, group, family, d.sel, window)
}

// latency is a time series of the p50, p90 and p99 of family, one line each per group of by, with exemplars
// linking to the commits' traces.
func (d delivery) latency(title, description, family, by, legend string) *timeseries.PanelBuilder {
	p := series(title, description, "s", 8, 12).
		OverrideByName("trace_id", traceLinks)
	for i, qt := range quantiles {
		p.WithTarget(query(string(rune('A'+i)), d.quantile(qt.q, family, by, "$__rate_interval"), strings.TrimSpace(legend+" "+qt.label)).Exemplar(true))
	}
	return p
}

// latencyTable lists, per group of by, the p50, p90 and p99 of reconcile and e2e time over the dashboard's range.
func (d delivery) latencyTable(title, description string, by []string, columns ...string) *table.PanelBuilder {
	p := tablePanel(title, description, 9, 24).Unit("s").Decimals(0)
	var rename []string
	for i, l := range by {
		rename = append(rename, l, columns[i])
	}
	ref := 'A'
	for _, h := range []struct{ name, family string }{{"reconcile", d.n.reconcile}, {"e2e", d.n.e2e}} {
		for _, qt := range quantiles {
			p.WithTarget(instantTable(string(ref), d.quantile(qt.q, h.family, strings.Join(by, ", "), "$__range")))
			rename = append(rename, "Value #"+string(ref), h.name+" "+qt.label)
			ref++
		}
	}
	var keep []string
	for i := 1; i < len(rename); i += 2 {
		keep = append(keep, rename[i])
	}
	return p.WithTransformation(merge()).WithTransformation(organize(rename...)).WithTransformation(keepColumns(keep...))
}

// ageTable lists the objects whose gauge is above zero, oldest first.
func (d delivery) ageTable(title, description, gauge string) *table.PanelBuilder {
	n := d.n
	expr := fmt.Sprintf("max by (%s) (%s{%s}) > 0", n.object(), gauge, d.sel)
	return tablePanel(title, description, 8, 12).NoValue("None").
		WithTarget(instantTable("A", expr)).
		WithTransformation(organize(n.cluster, "Cluster", n.namespace, "Namespace", n.kind, "Kind", n.name, "Name", "Value", "Age")).
		WithTransformation(keepColumns("Cluster", "Namespace", "Kind", "Name", "Age")).
		OverrideByName("Age", []dashboard.DynamicConfigValue{{Id: "unit", Value: "s"}, {Id: "decimals", Value: 0},
			{Id: "custom.cellOptions", Value: map[string]any{"type": "color-background", "mode": "basic"}},
			{Id: "thresholds", Value: map[string]any{"mode": "absolute", "steps": []any{
				map[string]any{"color": "yellow", "value": nil}, map[string]any{"color": "red", "value": 900}}}}}).
		SortBy([]cog.Builder[common.TableSortByFieldState]{common.NewTableSortByFieldStateBuilder().DisplayName("Age").Desc(true)})
}

// CommitDelivery is the dashboard of commit → applied latency: percentiles by cluster, namespace and object, the
// stage split, deployment frequency, what is stuck now, errors and clock skew, with exemplars linking to the
// commits' traces and the Grafana annotations sink's commit regions.
func CommitDelivery() (Dashboard, error) {
	n, err := newNames()
	if err != nil {
		return Dashboard{}, err
	}
	d := delivery{n: n, sel: fmt.Sprintf(`%s=~"$%s", %s=~"$%s", %s=~"$%s"`, n.cluster, VarCluster, n.namespace, VarNamespace, n.name, VarObject)}
	objectLabels := []string{n.cluster, n.namespace, n.kind, n.name}
	mean := func(family string) string {
		return fmt.Sprintf("sum(rate(%[1]s_sum{%[2]s}[$__rate_interval])) / sum(rate(%[1]s_count{%[2]s}[$__rate_interval]))", family, d.sel)
	}
	stages := []struct{ name, family string }{{"export", n.export}, {"fetch", n.fetch}, {"apply", n.apply}}
	stageMean := bars("Stage split, mean: export, fetch, apply",
		"Where a commit's time goes, on average: upstream commit → manifests commit (export), → fetched by the Flux source (fetch), → applied (apply). Stacked, they add up to about the mean end-to-end time (export is per upstream commit, fetch and apply per manifests commit).",
		8, 12, true).Unit("s")
	stageP90 := series("Stage split, p90: export, fetch, apply",
		"The 90th percentile of each stage; percentiles do not add up, so these are drawn apart.", "s", 8, 12).
		OverrideByName("trace_id", traceLinks)
	for i, s := range stages {
		ref := string(rune('A' + i))
		stageMean.WithTarget(query(ref, mean(s.family), s.name))
		stageP90.WithTarget(query(ref, d.quantile("0.9", s.family, "", "$__rate_interval"), s.name).Exemplar(true))
	}
	sel := d.sel
	b := newDashboard("Flux commit delivery").Uid(CommitDeliveryUID).
		Description("How long commits take from commit to applied by Flux, where the time goes, and what is stuck now; from flux-commit-tracker.").
		Tags([]string{"flux", product}).Editable().Refresh("1m").Time("now-24h", "now").
		Timezone(common.TimeZoneBrowser).Tooltip(dashboard.DashboardCursorSyncCrosshair).
		WithVariable(datasourceVariable(VarDatasource, "Prometheus", "prometheus")).
		WithVariable(datasourceVariable(VarTraces, "Traces", "tempo")).
		WithVariable(labelVariable(VarCluster, "Cluster", n.pending, n.cluster)).
		WithVariable(labelVariable(VarNamespace, "Namespace", fmt.Sprintf(`%s{%s=~"$%s"}`, n.pending, n.cluster, VarCluster), n.namespace)).
		WithVariable(labelVariable(VarObject, "Object", fmt.Sprintf(`%s{%s=~"$%s", %s=~"$%s"}`, n.pending, n.cluster, VarCluster, n.namespace, VarNamespace), n.name)).
		Annotation(dashboard.NewAnnotationQueryBuilder().Name("Annotations & Alerts").BuiltIn(1).Type("dashboard").
			Datasource(grafanaDS).Enable(true).Hide(true).IconColor("rgba(0, 211, 255, 1)")).
		Annotation(dashboard.NewAnnotationQueryBuilder().Name("Commits landed").Datasource(grafanaDS).Enable(true).
			IconColor("#5794F2").Target(cog.Builder[variants.Dataquery](tagsTarget{tags: []string{AnnotationTag}}))).
		Link(dashboard.NewDashboardLinkBuilder("Flux cluster").Type(dashboard.DashboardLinkTypeLink).
			Url("/d/" + FluxClusterUID).KeepTime(true).IncludeVars(false)).
		WithRow(dashboard.NewRowBuilder("Commit → applied")).
		WithPanel(d.latency("Reconcile time: manifests commit → applied",
			"Percentiles of flux_commit_tracker_flux_reconcile_time_seconds: from the manifests commit to Flux applying it. Exemplars (diamonds) open the commit's trace.",
			n.reconcile, "", "")).
		WithPanel(d.latency("End-to-end time: upstream commit → applied",
			"Percentiles of flux_commit_tracker_e2e_export_time_seconds: from the upstream commit (or the manifests commit when there is none) to applied.",
			n.e2e, "", "")).
		WithPanel(d.latency("Reconcile time by cluster", "p50, p90 and p99 of the reconcile time, per cluster.",
			n.reconcile, n.cluster, "{{"+n.cluster+"}}")).
		WithPanel(d.latency("End-to-end time by cluster", "p50, p90 and p99 of the end-to-end time, per cluster.",
			n.e2e, n.cluster, "{{"+n.cluster+"}}")).
		WithPanel(d.latencyTable("Latency by namespace", "Reconcile and end-to-end percentiles over the dashboard's time range, per cluster and namespace.",
			[]string{n.cluster, n.namespace}, "Cluster", "Namespace")).
		WithPanel(d.latencyTable("Latency by object", "Reconcile and end-to-end percentiles over the dashboard's time range, per Flux object.",
			objectLabels, "Cluster", "Namespace", "Kind", "Name")).
		WithRow(dashboard.NewRowBuilder("Where the time goes")).
		WithPanel(stageMean).
		WithPanel(stageP90).
		WithRow(dashboard.NewRowBuilder("Deliveries and health")).
		WithPanel(bars("Commits recorded per hour (deployment frequency)",
			"Manifests commits applied per hour, per cluster (flux_commit_tracker_commits_recorded_total).", 8, 12, true).
			Decimals(0).Interval("1h").
			WithTarget(query("A", fmt.Sprintf("sum by (%s) (increase(%s{%s}[1h]))", n.cluster, n.recorded, sel), "{{"+n.cluster+"}}"))).
		WithPanel(bars("Errors by reason",
			"Errors that stopped a revision or commit from being recorded (flux_commit_tracker_errors_total), by reason.", 8, 12, true).
			WithTarget(query("A", fmt.Sprintf("sum by (%s) (increase(%s{%s}[$__rate_interval]))", n.reason, n.errors, sel), "{{"+n.reason+"}}"))).
		WithPanel(d.ageTable("Pending commits",
			"Objects with a commit their source fetched but they have not applied, by the age of the oldest such commit (flux_commit_tracker_pending_commit_age_seconds).",
			n.pending)).
		WithPanel(d.ageTable("Failing revisions",
			"Objects failing on a revision (Ready=False, lastAttemptedRevision not applied), by how long (flux_commit_tracker_failing_revision_age_seconds).",
			n.failing)).
		WithPanel(bars("Clock skew",
			"Stage durations that came out negative and were recorded as 0 (flux_commit_tracker_clock_skew_total), per cluster and stage: a committer's or a cluster's clock is off.",
			6, 24, false).
			WithTarget(query("A", fmt.Sprintf("sum by (%s, %s) (increase(%s{%s}[$__rate_interval]))", n.cluster, n.stage, n.skew, sel),
				"{{"+n.cluster+"}} {{"+n.stage+"}}")))
	dash, err := b.Build()
	if err != nil {
		return Dashboard{}, fmt.Errorf("monitoring: commit delivery dashboard: %w", err)
	}
	numberPanels(&dash)
	return dash, nil
}
