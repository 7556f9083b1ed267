package monitoring

import (
	"errors"
	"fmt"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
)

// Metrics that are not the tracker's own definitions but that the dashboards and rules query.
const (
	// FluxResourceInfo is the state of each Flux object, served by the tracker (--flux-resource-metrics) or by
	// kube-state-metrics with Flux's configuration.
	FluxResourceInfo = "gotk_resource_info"
	// Up is Prometheus's scrape health of a target.
	Up = "up"
)

// names are the Prometheus metric and label names the dashboards and rules use, built from
// telemetry.Definitions by the same translation the exporter applies.
type names struct {
	reconcile, e2e, export, fetch, apply string
	pending, failing                     string
	recorded, errors, skew               string
	outboxDepth                          string
	cluster, namespace, kind, name       string
	reason, stage                        string
}

// newNames resolves every name, failing when a metric or attribute the monitoring uses is not defined.
func newNames() (names, error) {
	defs := map[string]telemetry.Definition{}
	for _, d := range telemetry.Definitions {
		defs[d.Name] = d
	}
	var errs []error
	metric := func(otel string) string {
		d, ok := defs[otel]
		if !ok {
			errs = append(errs, fmt.Errorf("monitoring: metric %s is not defined", otel))
			return ""
		}
		n, err := telemetry.PrometheusName(d)
		errs = append(errs, err)
		return n
	}
	label := func(key string) string {
		l, err := telemetry.PrometheusLabel(key)
		errs = append(errs, err)
		return l
	}
	n := names{
		reconcile: metric(telemetry.MetricReconcile), e2e: metric(telemetry.MetricE2E),
		export: metric(telemetry.MetricExport), fetch: metric(telemetry.MetricFetch), apply: metric(telemetry.MetricApply),
		pending: metric(telemetry.MetricPendingAge), failing: metric(telemetry.MetricFailingAge),
		recorded: metric(telemetry.MetricCommitsRecorded), errors: metric(telemetry.MetricErrors),
		skew: metric(telemetry.MetricClockSkew), outboxDepth: metric(telemetry.MetricOutboxDepth),
		cluster: label(telemetry.AttrCluster), namespace: label(telemetry.AttrNamespace),
		kind: label(telemetry.AttrKind), name: label(telemetry.AttrName),
		reason: label(telemetry.AttrReason), stage: label(telemetry.AttrStage),
	}
	return n, errors.Join(errs...)
}

// object is the label list that names one Flux object in one cluster.
func (n names) object() string {
	return n.cluster + ", " + n.namespace + ", " + n.kind + ", " + n.name
}
