package telemetry

import (
	"fmt"
	"strings"

	"github.com/prometheus/otlptranslator"
)

// promStrategy is how the Prometheus exporter translates names; Setup passes
// the same strategy so the README and /metrics cannot drift apart.
var promStrategy = otlptranslator.UnderscoreEscapingWithSuffixes

// PrometheusName is the metric family name the OTel Prometheus exporter gives
// d: dots and dashes become underscores, the unit is appended as a suffix
// (units in braces are dropped) and counters end in _total. Histograms expose
// the _bucket, _sum and _count series of this family.
func PrometheusName(d Definition) (string, error) {
	types := map[Kind]otlptranslator.MetricType{
		Histogram: otlptranslator.MetricTypeHistogram,
		Counter:   otlptranslator.MetricTypeMonotonicCounter,
		Gauge:     otlptranslator.MetricTypeGauge,
	}
	t, ok := types[d.Kind]
	if !ok {
		return "", fmt.Errorf("telemetry: metric %s: unknown kind %q", d.Name, d.Kind)
	}
	namer := otlptranslator.NewMetricNamer("", promStrategy)
	return namer.Build(otlptranslator.Metric{Name: d.Name, Unit: d.Unit, Type: t})
}

// PrometheusLabel is the Prometheus label name of an attribute key.
func PrometheusLabel(key string) (string, error) {
	namer := otlptranslator.LabelNamer{UTF8Allowed: !promStrategy.ShouldEscape()}
	return namer.Build(key)
}

// readmeNotes follow the table in the README.
var readmeNotes = []string{
	"Prometheus label names are the attribute keys with `.` replaced by `_` (`k8s.cluster.name` → `k8s_cluster_name`).",
	"`flux.kind` is the Flux object's kind (`Kustomization`, `HelmRelease`), `flux.name` its name. " +
		"An attribute value the tracker lacks is recorded as an empty string, which Prometheus treats as no label.",
	"Commit SHAs are never labels: find them in traces, logs and exemplars (exemplars need the OpenMetrics format).",
	"`--metrics-aggregation namespace` sums each metric over `flux.kind`, `flux.name` and `vcs.repository.url.full`, " +
		"dropping those labels (the rollout gauges then report the namespace's oldest object); `cluster` drops `k8s.namespace.name` too.",
	"A metric keeps at most `--metrics-cardinality-limit` series (default 20000, its overflow series included); past it new series merge into one " +
		"labelled only `otel_metric_overflow=\"true\"`, a warning names the metric once, and `flux_commit_tracker_metric_overflow_total` counts it. " +
		"The series of a deleted Flux object leave `/metrics` and OTLP at their next collection.",
	"`/metrics` also serves `target_info`, the OTel resource (`service.name`, `service.version`, `k8s.cluster.name`); " +
		"the `otel_scope_*` labels are left out, as every metric comes from one scope.",
}

// MarkdownTable renders [Definitions] as the README's metrics section: one
// table row per metric, then the notes needed to query them.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| OTel name | Prometheus name | type | unit | description | attributes |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, d := range Definitions {
		prom, err := PrometheusName(d)
		if err != nil {
			prom = "(" + err.Error() + ")"
		}
		attrs := make([]string, 0, len(d.Attributes))
		for _, k := range d.Attributes {
			a := "`" + k + "`"
			if vs := d.Values[k]; len(vs) > 0 {
				a += " (`" + strings.Join(vs, "`, `") + "`)"
			}
			attrs = append(attrs, a)
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | `%s` | %s | %s |\n",
			d.Name, prom, d.Kind, d.Unit, d.Description, strings.Join(attrs, ", "))
	}
	b.WriteString("\n")
	b.WriteString(bucketNotes())
	for _, note := range readmeNotes {
		b.WriteString("- " + note + "\n")
	}
	return b.String()
}

// bucketNotes lists histogram buckets, once when all histograms share them.
func bucketNotes() string {
	var order []string
	names := map[string][]string{}
	for _, d := range Definitions {
		if d.Kind != Histogram {
			continue
		}
		s := make([]string, len(d.Buckets))
		for i, v := range d.Buckets {
			s[i] = fmt.Sprint(v)
		}
		key := strings.Join(s, ", ")
		if _, ok := names[key]; !ok {
			order = append(order, key)
		}
		names[key] = append(names[key], "`"+d.Name+"`")
	}
	const series = " Each histogram is the `_bucket`, `_sum` and `_count` series in Prometheus.\n"
	if len(order) == 1 {
		return "- Histogram buckets (seconds): " + order[0] + "." + series
	}
	var b strings.Builder
	for _, key := range order {
		fmt.Fprintf(&b, "- Buckets (seconds) of %s: %s.\n", strings.Join(names[key], ", "), key)
	}
	return b.String() + "-" + series
}
