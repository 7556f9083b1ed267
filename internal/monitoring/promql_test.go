package monitoring

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/fluxstate"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
)

// scrapeLabels are the labels Prometheus (and prometheus-operator's relabelling) adds to every scraped series.
var scrapeLabels = []string{"job", "instance", "namespace", "pod", "service", "container", "endpoint"}

// vocabulary maps every series name Prometheus can hold for the tracker to the labels its series carry.
type vocabulary map[string]map[string]bool

func labelSet(t *testing.T, keys []string, extra ...string) map[string]bool {
	t.Helper()
	set := map[string]bool{}
	for _, k := range keys {
		l, err := telemetry.PrometheusLabel(k)
		if err != nil {
			t.Fatal(err)
		}
		set[l] = true
	}
	for _, l := range slices.Concat(extra, scrapeLabels) {
		set[l] = true
	}
	return set
}

// exported is the vocabulary of the telemetry package's definitions, named as the README names them, plus
// gotk_resource_info, the OTel resource's target_info and up.
func exported(t *testing.T) vocabulary {
	t.Helper()
	v := vocabulary{}
	for _, d := range telemetry.Definitions {
		name, err := telemetry.PrometheusName(d)
		if err != nil {
			t.Fatal(err)
		}
		if d.Kind == telemetry.Histogram {
			v[name+"_bucket"] = labelSet(t, d.Attributes, "le")
			v[name+"_sum"] = labelSet(t, d.Attributes)
			v[name+"_count"] = labelSet(t, d.Attributes)
			continue
		}
		v[name] = labelSet(t, d.Attributes)
	}
	v[FluxResourceInfo] = labelSet(t, nil, fluxResourceInfoLabels(t)...)
	v["target_info"] = labelSet(t, []string{"service.name", "service.version", telemetry.AttrCluster})
	v[Up] = labelSet(t, nil)
	return v
}

// fluxResourceInfoLabels are the labels of gotk_resource_info over every kind the tracker reports.
func fluxResourceInfoLabels(t *testing.T) []string {
	t.Helper()
	if fluxstate.MetricName != FluxResourceInfo {
		t.Fatalf("the tracker exports %s, the monitoring queries %s", fluxstate.MetricName, FluxResourceInfo)
	}
	// Every kind has these; the rest are the kinds' own.
	out := []string{"customresource_group", "customresource_kind", "customresource_version", "name", "exported_namespace", "suspended", "ready"}
	for _, k := range fluxstate.Kinds {
		out = append(out, slices.Collect(maps.Keys(k.Labels))...)
	}
	return out
}

var promql = parser.NewParser(parser.Options{})

// selectorName is the metric a selector reads.
func selectorName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == "__name__" {
			return m.Value
		}
	}
	return ""
}

// outputLabels are the labels of the series expr returns; scalar is set when it returns a number.
func (v vocabulary) outputLabels(expr parser.Expr) (labels map[string]bool, scalar bool, err error) {
	switch e := expr.(type) {
	case *parser.ParenExpr:
		return v.outputLabels(e.Expr)
	case *parser.UnaryExpr:
		return v.outputLabels(e.Expr)
	case *parser.NumberLiteral, *parser.StringLiteral:
		return nil, true, nil
	case *parser.VectorSelector:
		set, ok := v[selectorName(e)]
		if !ok {
			return nil, false, fmt.Errorf("no metric %q", selectorName(e))
		}
		return maps.Clone(set), false, nil
	case *parser.MatrixSelector:
		return v.outputLabels(e.VectorSelector)
	case *parser.SubqueryExpr:
		return v.outputLabels(e.Expr)
	case *parser.AggregateExpr:
		inner, _, err := v.outputLabels(e.Expr)
		if err != nil {
			return nil, false, err
		}
		for _, l := range e.Grouping {
			if !inner[l] {
				return nil, false, fmt.Errorf("%s groups by %q, which %s lacks", e.Op, l, e.Expr)
			}
		}
		if e.Without {
			for _, l := range e.Grouping {
				delete(inner, l)
			}
			return inner, false, nil
		}
		out := map[string]bool{}
		for _, l := range e.Grouping {
			out[l] = true
		}
		return out, false, nil
	case *parser.Call:
		return v.callLabels(e)
	case *parser.BinaryExpr:
		lhs, lScalar, err := v.outputLabels(e.LHS)
		if err != nil {
			return nil, false, err
		}
		rhs, rScalar, err := v.outputLabels(e.RHS)
		if err != nil {
			return nil, false, err
		}
		if e.VectorMatching != nil {
			for _, l := range e.VectorMatching.MatchingLabels {
				if !lhs[l] || !rhs[l] {
					return nil, false, fmt.Errorf("%s matches on %q, which a side lacks", e.Op, l)
				}
			}
		}
		switch {
		case lScalar && rScalar:
			return nil, true, nil
		case lScalar:
			return rhs, false, nil
		case e.Op == parser.LOR:
			maps.Copy(lhs, rhs)
		}
		return lhs, false, nil
	}
	return nil, false, fmt.Errorf("cannot tell the labels of %T %s", expr, expr)
}

// callLabels are the labels a function's result keeps.
func (v vocabulary) callLabels(c *parser.Call) (map[string]bool, bool, error) {
	switch c.Func.Name {
	case "absent":
		out := map[string]bool{}
		if vs, ok := c.Args[0].(*parser.VectorSelector); ok {
			if _, _, err := v.outputLabels(vs); err != nil {
				return nil, false, err
			}
			for _, m := range vs.LabelMatchers {
				if m.Name != "__name__" && m.Type.String() == "=" {
					out[m.Name] = true
				}
			}
		}
		return out, false, nil
	case "vector", "time", "scalar":
		return nil, c.Func.Name != "vector", nil
	}
	var out map[string]bool
	for _, a := range c.Args {
		set, scalar, err := v.outputLabels(a)
		if err != nil {
			return nil, false, err
		}
		if !scalar && out == nil {
			out = set
		}
	}
	if out == nil {
		return nil, false, fmt.Errorf("%s has no vector argument", c.Func.Name)
	}
	if c.Func.Name == "histogram_quantile" {
		if !out["le"] {
			return nil, false, fmt.Errorf("histogram_quantile over series without le: %s", c)
		}
		delete(out, "le")
	}
	return out, false, nil
}

// check parses expr and fails unless every selector names a known metric and matches only its labels, and
// every grouping and matching label exists; it returns the labels of the result.
func (v vocabulary) check(expr string) (map[string]bool, error) {
	ast, err := promql.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var errs []string
	parser.Inspect(ast, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := selectorName(vs)
		set, known := v[name]
		if !known {
			errs = append(errs, fmt.Sprintf("metric %q is not exported", name))
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name != "__name__" && !set[m.Name] {
				errs = append(errs, fmt.Sprintf("%s has no label %q", name, m.Name))
			}
		}
		return nil
	})
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	out, _, err := v.outputLabels(ast)
	return out, err
}

// templateLabels are the labels an alert's annotations read.
var templateLabels = regexp.MustCompile(`\$labels\.([A-Za-z_][A-Za-z0-9_]*)`)

// ruleFile is a Prometheus rule file, as far as the checks read it.
type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Record      string            `json:"record"`
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

// checkRules checks every rule's expression against v, learning the recorded series as it goes, and every
// label an annotation reads against what the alert's expression returns; it returns how many rules it read.
func checkRules(v vocabulary, where string, f ruleFile) (int, []error) {
	n := 0
	var errs []error
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			n++
			out, err := v.check(r.Expr)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: rule %s%s: %w\n%s", where, r.Record, r.Alert, err, r.Expr))
				continue
			}
			if r.Record != "" {
				v[r.Record] = out
				continue
			}
			for key, text := range r.Annotations {
				for _, m := range templateLabels.FindAllStringSubmatch(text, -1) {
					if !out[m[1]] {
						errs = append(errs, fmt.Errorf("%s: alert %s: annotation %s reads $labels.%s, which its expression does not return (%v)",
							where, r.Alert, key, m[1], slices.Sorted(maps.Keys(out))))
					}
				}
			}
		}
	}
	return n, errs
}

func TestVocabularyCheckerRefuses(t *testing.T) {
	v := exported(t)
	for _, expr := range []string{
		`flux_commit_tracker_no_such_metric_seconds`,
		`flux_commit_tracker_flux_reconcile_time_seconds`, // a histogram family is only its _bucket, _sum and _count
		`flux_commit_tracker_pending_commit_age_seconds{cluster="prod"}`,
		`max by (cluster) (flux_commit_tracker_pending_commit_age_seconds)`,
		`histogram_quantile(0.9, sum by (k8s_cluster_name) (rate(flux_commit_tracker_flux_reconcile_time_seconds_bucket[5m])))`,
		`gotk_resource_info{kind="Kustomization"}`,
		`up unless on (cluster) target_info`,
		`sum(rate(flux_commit_tracker_errors_total[5m])`,
	} {
		if _, err := v.check(expr); err == nil {
			t.Errorf("check(%s) passed, want an error", expr)
		}
	}
	out, err := v.check(`max by (k8s_cluster_name, flux_name) (flux_commit_tracker_pending_commit_age_seconds{le=""} ) > 900`)
	if err == nil {
		t.Errorf("a gauge has no le label; got labels %v", out)
	}
	out, err = v.check(`max by (k8s_cluster_name, flux_name) (flux_commit_tracker_pending_commit_age_seconds) > 900`)
	if err != nil || !slices.Equal(slices.Sorted(maps.Keys(out)), []string{"flux_name", "k8s_cluster_name"}) {
		t.Errorf("labels %v, %v; want flux_name, k8s_cluster_name", out, err)
	}
}

// TestExpressionsUseExportedMetrics parses every dashboard and rule expression and checks its metrics and
// labels against what the tracker exports.
func TestExpressionsUseExportedMetrics(t *testing.T) {
	exprs, err := Expressions()
	if err != nil {
		t.Fatal(err)
	}
	v := exported(t)
	spec, err := Rules(DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := RulesFile(spec)
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	n, errs := checkRules(v, "rules", f)
	for _, err := range errs {
		t.Error(err)
	}
	if n != len(spec.Groups[0].Rules)+len(spec.Groups[1].Rules) {
		t.Errorf("checked %d rules", n)
	}
	perDashboard := map[string]int{}
	for _, e := range exprs {
		if e.Dashboard == "" {
			continue
		}
		perDashboard[e.Dashboard]++
		if strings.Contains(e.PromQL, "$") {
			t.Errorf("%s: a Grafana variable is left in %s", e.Where(), e.PromQL)
		}
		if _, err := v.check(e.PromQL); err != nil {
			t.Errorf("%s: %v\n%s", e.Where(), err, e.PromQL)
		}
	}
	// The commit delivery dashboard: 3 variables and 35 queries; the Flux one: 1 variable and 6 queries.
	want := map[string]int{"Flux commit delivery": 38, "Flux cluster": 7}
	if !maps.Equal(perDashboard, want) {
		t.Errorf("expressions per dashboard %v, want %v", perDashboard, want)
	}
}

// TestREADMEExampleAlerts checks the README's example rules as the generated ones are checked, so an example
// naming a metric or label the tracker does not export fails.
func TestREADMEExampleAlerts(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	n, errs := checkMarkdownRules(exported(t), string(raw))
	for _, err := range errs {
		t.Errorf("README: %v", err)
	}
	if n == 0 {
		t.Fatal("no example rule found in the README")
	}
}

// checkMarkdownRules checks the rules of every YAML code block of markdown that has one, returning how many.
func checkMarkdownRules(v vocabulary, markdown string) (int, []error) {
	rules := 0
	var errs []error
	for i, b := range regexp.MustCompile("(?s)```ya?ml\n(.*?)```").FindAllStringSubmatch(markdown, -1) {
		if !strings.Contains(b[1], "expr:") {
			continue
		}
		var f ruleFile
		if err := yaml.Unmarshal([]byte(b[1]), &f); err != nil {
			errs = append(errs, fmt.Errorf("yaml block %d: %w", i, err))
			continue
		}
		n, blockErrs := checkRules(v, fmt.Sprintf("yaml block %d", i), f)
		rules += n
		errs = append(errs, blockErrs...)
	}
	return rules, errs
}

func TestMarkdownRulesCheckFails(t *testing.T) {
	for _, block := range []string{
		"groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: flux_commit_tracker_pending_age_seconds > 1\n",
		"groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: max by (flux_name) (flux_commit_tracker_pending_commit_age_seconds) > 1\n" +
			"        annotations:\n          summary: '{{ $labels.k8s_cluster_name }}'\n",
	} {
		n, errs := checkMarkdownRules(exported(t), "text\n```yaml\n"+block+"```\n")
		if n != 1 || len(errs) != 1 {
			t.Errorf("%d rules, errors %v; want one rule and one error for:\n%s", n, errs, block)
		}
	}
}

// TestLegendsNameReturnedLabels fails when a panel's legend reads a label its query does not return.
func TestLegendsNameReturnedLabels(t *testing.T) {
	v := exported(t)
	legendLabel := regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)
	checked := 0
	for _, build := range []func() ([]byte, error){commitDeliveryJSON, fluxClusterJSON} {
		var d struct {
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr         string `json:"expr"`
					LegendFormat string `json:"legendFormat"`
				} `json:"targets"`
			} `json:"panels"`
		}
		raw, err := build()
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		for _, p := range d.Panels {
			for _, q := range p.Targets {
				out, err := v.check(grafanaVars.Replace(q.Expr))
				if err != nil {
					t.Errorf("%s: %v", p.Title, err)
					continue
				}
				for _, m := range legendLabel.FindAllStringSubmatch(q.LegendFormat, -1) {
					checked++
					if !out[m[1]] {
						t.Errorf("%s: legend %q reads %s, which %s does not return", p.Title, q.LegendFormat, m[1], q.Expr)
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Error("no legend label checked")
	}
}
