package monitoring

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// Expression is one PromQL expression the shipped dashboards or rules evaluate.
type Expression struct {
	// Dashboard is the dashboard's title; empty for a rule.
	Dashboard string
	// Panel is the panel's title, or "variable <name>" for a dashboard variable's query.
	Panel string
	// Group and Rule name the rule group and the alert or recorded series; empty for a dashboard query.
	Group, Rule string
	// Query is the expression as written: in a dashboard, with Grafana variables.
	Query string
	// PromQL is what Prometheus evaluates: Query with $__rate_interval, $__range and $__interval at 5m, 1h and
	// 1m and every dashboard variable at its All value.
	PromQL string
	// Instant is set when the dashboard runs the query at one instant rather than over its time range.
	Instant bool
}

// Where is the expression's source, for messages: "dashboard / panel" or "group / rule".
func (e Expression) Where() string {
	if e.Dashboard != "" {
		return e.Dashboard + " / " + e.Panel
	}
	return e.Group + " / " + e.Rule
}

// grafanaVars stand in for Grafana's variables when a query is evaluated outside Grafana.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "5m", "$__range", "1h", "$__interval", "1m",
	"$"+VarCluster, AllValue, "$"+VarNamespace, AllValue, "$"+VarObject, AllValue,
)

// labelValues reads a Grafana label_values(selector, label) variable query.
var labelValues = regexp.MustCompile(`^label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\)$`)

// Expressions lists every PromQL expression of the dashboards (each panel query and each variable's selector)
// and of the default rules (each recording and alerting rule), in the order they appear.
func Expressions() ([]Expression, error) {
	var out []Expression
	for _, build := range []func() ([]byte, error){commitDeliveryJSON, fluxClusterJSON} {
		raw, err := build()
		if err != nil {
			return nil, err
		}
		exprs, err := dashboardExpressions(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, exprs...)
	}
	spec, err := Rules(DefaultOptions())
	if err != nil {
		return nil, err
	}
	for _, g := range spec.Groups {
		for _, r := range g.Rules {
			name := r.Alert
			if name == "" {
				name = r.Record
			}
			q := r.Expr.StrVal
			out = append(out, Expression{Group: g.Name, Rule: name, Query: q, PromQL: q})
		}
	}
	return out, nil
}

func commitDeliveryJSON() ([]byte, error) {
	d, err := CommitDelivery()
	if err != nil {
		return nil, err
	}
	return dashboardJSON(d)
}

func fluxClusterJSON() ([]byte, error) {
	d, err := FluxCluster()
	if err != nil {
		return nil, err
	}
	return dashboardJSON(d)
}

// dashboardJSONShape is the part of Grafana's dashboard JSON that holds queries.
type dashboardJSONShape struct {
	Title  string `json:"title"`
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr    string `json:"expr"`
			Instant bool   `json:"instant"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

// dashboardExpressions lists the queries of a dashboard's JSON, as Grafana reads it.
func dashboardExpressions(raw []byte) ([]Expression, error) {
	var d dashboardJSONShape
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("monitoring: read dashboard: %w", err)
	}
	var out []Expression
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			return nil, fmt.Errorf("monitoring: dashboard %s: variable %s: %q is not label_values(selector, label)", d.Title, v.Name, v.Definition)
		}
		out = append(out, Expression{Dashboard: d.Title, Panel: "variable " + v.Name, Query: v.Definition,
			PromQL: grafanaVars.Replace(m[1]), Instant: true})
	}
	for _, p := range d.Panels {
		for _, t := range p.Targets {
			if t.Expr == "" {
				continue
			}
			out = append(out, Expression{Dashboard: d.Title, Panel: p.Title, Query: t.Expr, PromQL: grafanaVars.Replace(t.Expr), Instant: t.Instant})
		}
	}
	return out, nil
}
