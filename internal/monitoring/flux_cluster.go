package monitoring

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
)

// Flux kinds the cluster dashboard groups: what applies, and where it comes from.
const (
	reconcilerKinds = "Kustomization|HelmRelease"
	sourceKinds     = "GitRepository|HelmRepository|Bucket|OCIRepository"
)

// fluxObjects are the gotk_resource_info series of kinds in the chosen namespaces (only the failing ones when
// failing is set), one per object: every tracker replica serves them, so the scrape labels that tell replicas
// apart are dropped.
func fluxObjects(kinds string, failing bool) string {
	s := fmt.Sprintf(`%s{exported_namespace=~"$%s", customresource_kind=~"%s"`, FluxResourceInfo, VarNamespace, kinds)
	if failing {
		s += `, ready="False"`
	}
	return "max without (instance, pod) (" + s + "})"
}

// fluxCount is a stat of how many objects match; 0 when none does.
func fluxCount(title, description, kinds string, failing bool) *stat.PanelBuilder {
	th := thresholds("blue")
	if failing {
		th = thresholds("green", dashboard.Threshold{Value: cog.ToPtr(1.0), Color: "red"})
	}
	return stat.NewPanelBuilder().Title(title).Description(description).Datasource(promDS).
		Unit("short").Decimals(0).NoValue("0").Thresholds(th).Height(5).Span(6).
		Orientation(common.VizOrientationAuto).ColorMode(common.BigValueColorModeValue).GraphMode(common.BigValueGraphModeNone).TextMode(common.BigValueTextModeValue).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false)).
		WithTarget(prometheus.NewDataqueryBuilder().Datasource(promDS).RefId("A").Instant().
			Expr(fmt.Sprintf("count(%s)", fluxObjects(kinds, failing))))
}

// readyMapping shows Flux's Ready condition status as words and colours.
var readyMapping = dashboard.ValueMapping{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText,
	Options: map[string]dashboard.ValueMappingResult{
		"True":    {Text: cog.ToPtr("Ready"), Color: cog.ToPtr("green"), Index: cog.ToPtr[int32](0)},
		"False":   {Text: cog.ToPtr("Not ready"), Color: cog.ToPtr("red"), Index: cog.ToPtr[int32](1)},
		"Unknown": {Text: cog.ToPtr("Reconciling"), Color: cog.ToPtr("yellow"), Index: cog.ToPtr[int32](2)},
	}}}

// fluxTable lists the objects of kinds with their readiness, failing first.
func fluxTable(title, description, kinds string) *table.PanelBuilder {
	return tablePanel(title, description, 14, 12).Mappings([]dashboard.ValueMapping{readyMapping}).
		WithTarget(instantTable("A", fluxObjects(kinds, false))).
		WithTransformation(organize("exported_namespace", "Namespace", "customresource_kind", "Kind", "name", "Name",
			"ready", "Status", "suspended", "Suspended", "revision", "Revision")).
		WithTransformation(keepColumns("Namespace", "Kind", "Name", "Status", "Suspended", "Revision")).
		OverrideByName("Status", []dashboard.DynamicConfigValue{
			{Id: "custom.cellOptions", Value: map[string]any{"type": "color-background", "mode": "basic"}},
			{Id: "noValue", Value: "Unknown"},
		}).
		SortBy([]cog.Builder[common.TableSortByFieldState]{common.NewTableSortByFieldStateBuilder().DisplayName("Status")})
}

// FluxCluster is the dashboard of Flux object readiness in the cluster, on gotk_resource_info: how many
// reconcilers and sources there are, how many fail, and each one's status.
func FluxCluster() (Dashboard, error) {
	b := newDashboard("Flux cluster").Uid(FluxClusterUID).
		Description("Flux reconcilers and sources and their readiness, from gotk_resource_info.").
		Tags([]string{"flux", product}).Editable().Refresh("30s").Time("now-15m", "now").
		Timezone(common.TimeZoneBrowser).
		WithVariable(datasourceVariable(VarDatasource, "Prometheus", "prometheus")).
		WithVariable(labelVariable(VarNamespace, "Namespace", FluxResourceInfo, "exported_namespace")).
		Link(dashboard.NewDashboardLinkBuilder("Flux commit delivery").Type(dashboard.DashboardLinkTypeLink).
			Url("/d/" + CommitDeliveryUID).KeepTime(true)).
		WithPanel(fluxCount("Cluster Reconcilers", "Kustomizations and HelmReleases.", reconcilerKinds, false)).
		WithPanel(fluxCount("Failing Reconcilers", "Kustomizations and HelmReleases whose Ready condition is False.", reconcilerKinds, true)).
		WithPanel(fluxCount("Kubernetes Manifests Sources", "GitRepositories, HelmRepositories, Buckets and OCIRepositories.", sourceKinds, false)).
		WithPanel(fluxCount("Failing Sources", "Sources whose Ready condition is False.", sourceKinds, true)).
		WithPanel(fluxTable("Cluster reconciliation readiness", "Each Kustomization and HelmRelease, its Ready status and last applied revision.", reconcilerKinds)).
		WithPanel(fluxTable("Source acquisition readiness", "Each source, its Ready status and the revision of its artifact.", sourceKinds))
	dash, err := b.Build()
	if err != nil {
		return Dashboard{}, fmt.Errorf("monitoring: flux cluster dashboard: %w", err)
	}
	numberPanels(&dash)
	return dash, nil
}
