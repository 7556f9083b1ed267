package monitoring

import (
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Dashboard variable names.
const (
	VarDatasource = "datasource"
	VarTraces     = "traces"
	VarCluster    = "cluster"
	VarNamespace  = "namespace"
	VarObject     = "object"
)

// AllValue is what a multi-value variable set to All stands for in the queries.
const AllValue = ".*"

// AnnotationTag is the tag every Grafana region of the tracker's annotations sink carries.
const AnnotationTag = "flux-commit-tracker"

// product names the tracker on what it ships: dashboard tags, the PrometheusRule.
const product = "flux-commit-tracker"

// Dashboard is a Grafana dashboard in the classic JSON model, the one every Grafana imports and provisions from
// files (the v2 schema the SDK prefers needs Grafana 12 and its new API).
type Dashboard = dashboard.Dashboard //nolint:staticcheck // the classic model on purpose, see above

// newDashboard starts a classic-model dashboard.
var newDashboard = dashboard.NewDashboardBuilder //nolint:staticcheck // the classic model on purpose, see Dashboard

// promDS is the Prometheus the dashboards query: the one the datasource variable picks.
var promDS = common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${" + VarDatasource + "}")}

// grafanaDS is Grafana's own annotations store.
var grafanaDS = common.DataSourceRef{Type: cog.ToPtr("grafana"), Uid: cog.ToPtr("-- Grafana --")}

// query is a range query on the dashboard's Prometheus.
func query(ref, expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(promDS).RefId(ref).Expr(expr).LegendFormat(legend).Range()
}

// series is a time series panel on the dashboard's Prometheus, with a table legend and a shared tooltip.
func series(title, description, unit string, height, width uint32) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().Title(title).Description(description).Datasource(promDS).
		Unit(unit).Min(0).Height(height).Span(width).ShowPoints(common.VisibilityModeNever).
		Legend(common.NewVizLegendOptionsBuilder().ShowLegend(true).DisplayMode(common.LegendDisplayModeTable).
			Placement(common.LegendPlacementBottom).Calcs([]string{"mean", "max"})).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending))
}

// bars is a series panel drawn as bars, stacked when stacked is set.
func bars(title, description string, height, width uint32, stacked bool) *timeseries.PanelBuilder {
	p := series(title, description, "short", height, width).DrawStyle(common.GraphDrawStyleBars).FillOpacity(80)
	if stacked {
		p.Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal))
	}
	return p
}

// tablePanel is a filterable table on the dashboard's Prometheus, without a footer.
func tablePanel(title, description string, height, width uint32) *table.PanelBuilder {
	return table.NewPanelBuilder().Title(title).Description(description).Datasource(promDS).Height(height).Span(width).
		Filterable(true).Footer(common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{"sum"}))
}

// instantTable is an instant query whose result a table shows as rows.
func instantTable(ref, expr string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(promDS).RefId(ref).Expr(expr).Instant().Format(prometheus.PromQueryFormatTable)
}

// datasourceVariable picks a datasource of pluginType.
func datasourceVariable(name, label, pluginType string) *dashboard.DatasourceVariableBuilder {
	return dashboard.NewDatasourceVariableBuilder(name).Label(label).Type(pluginType)
}

// labelVariable is a multi-value variable over the values of label on selector, All by default.
func labelVariable(name, label, selector, promLabel string) *dashboard.QueryVariableBuilder {
	q := fmt.Sprintf("label_values(%s, %s)", selector, promLabel)
	return dashboard.NewQueryVariableBuilder(name).Label(label).Datasource(promDS).
		Query(dashboard.StringOrMap{Map: map[string]any{"query": q, "refId": "PrometheusVariableQueryEditor-VariableQuery", "qryType": 1}}).
		Definition(q).Refresh(dashboard.VariableRefreshOnTimeRangeChanged).Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).IncludeAll(true).AllValue(AllValue).
		Current(dashboard.VariableOption{Text: dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}},
			Value: dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}}})
}

// tagsTarget is an annotation query on Grafana's own annotations by tag.
type tagsTarget struct{ tags []string }

var _ cog.Builder[variants.Dataquery] = tagsTarget{}

func (t tagsTarget) Build() (variants.Dataquery, error) {
	return variants.UnknownDataquery{"type": "tags", "tags": t.tags, "matchAny": false, "limit": 500}, nil
}

// thresholds colour values from base, then by the steps above it.
func thresholds(base string, steps ...dashboard.Threshold) *dashboard.ThresholdsConfigBuilder {
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).
		Steps(append([]dashboard.Threshold{{Color: base}}, steps...))
}

// organize renames table columns, given as label, title pairs, and orders them so.
func organize(columns ...string) dashboard.DataTransformerConfig {
	rename := map[string]string{}
	index := map[string]int{}
	for i := 0; i+1 < len(columns); i += 2 {
		rename[columns[i]] = columns[i+1]
		index[columns[i]] = i / 2
	}
	return dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{"renameByName": rename, "indexByName": index}}
}

// keepColumns drops every column but those named.
func keepColumns(names ...string) dashboard.DataTransformerConfig {
	return dashboard.DataTransformerConfig{Id: "filterFieldsByName", Options: map[string]any{"include": map[string]any{"names": names}}}
}

// merge joins the tables of several instant queries on their labels.
func merge() dashboard.DataTransformerConfig {
	return dashboard.DataTransformerConfig{Id: "merge", Options: map[string]any{}}
}

// numberPanels gives every panel and row of d an ID, in order, as Grafana would on import.
func numberPanels(d *Dashboard) {
	for i := range d.Panels {
		id := uint32(i + 1)
		switch p := d.Panels[i]; {
		case p.Panel != nil:
			p.Panel.Id = &id
		case p.RowPanel != nil:
			p.RowPanel.Id = id
		}
	}
}

// dashboardJSON renders d as Grafana dashboard JSON.
func dashboardJSON(d Dashboard) ([]byte, error) {
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("monitoring: dashboard: %w", err)
	}
	return append(out, '\n'), nil
}
