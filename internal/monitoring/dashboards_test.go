package monitoring

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/notify"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/notify/grafanatest"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// grafanaJSON is the generic form of a dashboard, as Grafana reads it.
type grafanaJSON map[string]any

func decode(t *testing.T, build func() ([]byte, error)) grafanaJSON {
	t.Helper()
	raw, err := build()
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaJSON
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func object(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// panels are the dashboard's panels by title, rows left out.
func (d grafanaJSON) panels() map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, p := range list(d["panels"]) {
		if object(p)["type"] != "row" {
			out[object(p)["title"].(string)] = object(p)
		}
	}
	return out
}

func (d grafanaJSON) variables() []string {
	var out []string
	for _, v := range list(object(d["templating"])["list"]) {
		out = append(out, object(v)["name"].(string))
	}
	return out
}

func TestCommitDeliveryDashboard(t *testing.T) {
	d := decode(t, commitDeliveryJSON)
	if got, want := d.variables(), []string{VarDatasource, VarTraces, VarCluster, VarNamespace, VarObject}; !slices.Equal(got, want) {
		t.Errorf("variables %v, want %v", got, want)
	}
	panels := d.panels()
	var titles []string
	for title := range panels {
		titles = append(titles, title)
	}
	slices.Sort(titles)
	want := []string{
		"Clock skew", "Commits recorded per hour (deployment frequency)", "End-to-end time by cluster",
		"End-to-end time: upstream commit → applied", "Errors by reason", "Failing revisions", "Latency by namespace",
		"Latency by object", "Pending commits", "Reconcile time by cluster", "Reconcile time: manifests commit → applied",
		"Stage split, mean: export, fetch, apply", "Stage split, p90: export, fetch, apply",
	}
	if !slices.Equal(titles, want) {
		t.Errorf("panels %v, want %v", titles, want)
	}
	// Latency series carry exemplars, whose trace_id opens the trace in the traces datasource.
	for _, title := range []string{"Reconcile time: manifests commit → applied", "End-to-end time: upstream commit → applied",
		"Reconcile time by cluster", "End-to-end time by cluster", "Stage split, p90: export, fetch, apply"} {
		p := panels[title]
		for _, q := range list(p["targets"]) {
			if object(q)["exemplar"] != true {
				t.Errorf("%s: query %v without exemplars", title, object(q)["refId"])
			}
			if ds := object(object(q)["datasource"]); ds["uid"] != "${datasource}" {
				t.Errorf("%s: datasource %v", title, ds)
			}
		}
		override := object(list(object(p["fieldConfig"])["overrides"])[0])
		link := object(list(object(list(override["properties"])[0])["value"])[0])
		if object(override["matcher"])["options"] != "trace_id" || !strings.Contains(link["url"].(string), `"query":"${__value.raw}"`) ||
			!strings.Contains(link["url"].(string), `"uid":"${traces}"`) {
			t.Errorf("%s: exemplar link %v on %v", title, link, override["matcher"])
		}
	}
	for _, title := range []string{"Reconcile time: manifests commit → applied", "Reconcile time by cluster"} {
		var qs []string
		for _, q := range list(panels[title]["targets"]) {
			qs = append(qs, object(q)["expr"].(string)[:len("histogram_quantile(0.99")])
		}
		if !slices.Equal(qs, []string{"histogram_quantile(0.5,", "histogram_quantile(0.9,", "histogram_quantile(0.99"}) {
			t.Errorf("%s: quantiles %v, want p50, p90, p99", title, qs)
		}
	}
	// Every query is narrowed by the cluster, namespace and object variables.
	for title, p := range panels {
		for _, q := range list(p["targets"]) {
			expr := object(q)["expr"].(string)
			for _, m := range []string{`k8s_cluster_name=~"$cluster"`, `k8s_namespace_name=~"$namespace"`, `flux_name=~"$object"`} {
				if !strings.Contains(expr, m) {
					t.Errorf("%s: %s lacks %s", title, expr, m)
				}
			}
		}
	}
	// The commit regions of the Grafana annotations sink.
	var tags []any
	for _, a := range list(object(d["annotations"])["list"]) {
		if object(a)["name"] == "Commits landed" {
			tags = list(object(object(a)["target"])["tags"])
			if ds := object(object(a)["datasource"]); ds["type"] != "grafana" {
				t.Errorf("annotation datasource %v", ds)
			}
		}
	}
	if len(tags) != 1 || tags[0] != AnnotationTag {
		t.Errorf("commit annotation tags %v, want [%s]", tags, AnnotationTag)
	}
}

// TestAnnotationTagIsTheGrafanaSinks sends a landed commit through the Grafana sink and finds the dashboard's
// tag on its region.
func TestAnnotationTagIsTheGrafanaSinks(t *testing.T) {
	fake := grafanatest.New("token")
	srv := httptest.NewServer(fake)
	defer srv.Close()
	g := &notify.Grafana{URL: srv.URL, Token: "token", Client: srv.Client()}
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	body, ok, err := g.Notice(tracker.Record{
		Object: telemetry.ObjectAttributes{Cluster: "prod-eu", Namespace: "apps", Kind: "Kustomization", Name: "web",
			Repository: "https://github.com/acme/app"},
		Commits: []latency.DeliveredCommit{{SHA: strings.Repeat("a", 40), Committed: t0}},
		Applied: t0.Add(time.Minute),
	})
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if err := g.Send(context.Background(), ledger.Item{ID: "n1", Sink: g.Name(), Body: body}); err != nil {
		t.Fatal(err)
	}
	annotations := fake.Annotations()
	if len(annotations) != 1 {
		t.Fatalf("%d annotations, want 1", len(annotations))
	}
	for _, a := range annotations {
		if tags, _ := a["tags"].([]any); !slices.Contains(tags, any(AnnotationTag)) {
			t.Errorf("region tags %v lack the dashboard's %q", tags, AnnotationTag)
		}
	}
}

func TestFluxClusterDashboard(t *testing.T) {
	d := decode(t, fluxClusterJSON)
	if got := d.variables(); !slices.Equal(got, []string{VarDatasource, VarNamespace}) {
		t.Errorf("variables %v", got)
	}
	ns := object(list(object(d["templating"])["list"])[1])
	if ns["definition"] != "label_values(gotk_resource_info, exported_namespace)" || ns["includeAll"] != true || ns["multi"] != true {
		t.Errorf("namespace variable %v", ns)
	}
	want := map[string]string{
		"Cluster Reconcilers":              `count(max without (instance, pod) (gotk_resource_info{exported_namespace=~"$namespace", customresource_kind=~"Kustomization|HelmRelease"}))`,
		"Failing Reconcilers":              `count(max without (instance, pod) (gotk_resource_info{exported_namespace=~"$namespace", customresource_kind=~"Kustomization|HelmRelease", ready="False"}))`,
		"Kubernetes Manifests Sources":     `count(max without (instance, pod) (gotk_resource_info{exported_namespace=~"$namespace", customresource_kind=~"GitRepository|HelmRepository|Bucket|OCIRepository"}))`,
		"Failing Sources":                  `count(max without (instance, pod) (gotk_resource_info{exported_namespace=~"$namespace", customresource_kind=~"GitRepository|HelmRepository|Bucket|OCIRepository", ready="False"}))`,
		"Cluster reconciliation readiness": `max without (instance, pod) (gotk_resource_info{exported_namespace=~"$namespace", customresource_kind=~"Kustomization|HelmRelease"})`,
		"Source acquisition readiness":     `max without (instance, pod) (gotk_resource_info{exported_namespace=~"$namespace", customresource_kind=~"GitRepository|HelmRepository|Bucket|OCIRepository"})`,
	}
	panels := d.panels()
	if len(panels) != len(want) {
		t.Errorf("%d panels, want %d", len(panels), len(want))
	}
	for title, expr := range want {
		p, ok := panels[title]
		if !ok {
			t.Errorf("no panel %q", title)
			continue
		}
		q := object(list(p["targets"])[0])
		if q["expr"] != expr || q["instant"] != true {
			t.Errorf("%s: %v (instant %v), want the instant query %s", title, q["expr"], q["instant"], expr)
		}
		defaults := object(object(p["fieldConfig"])["defaults"])
		switch p["type"] {
		case "stat":
			if defaults["noValue"] != "0" {
				t.Errorf("%s: no value shows %v, want 0", title, defaults["noValue"])
			}
		case "table":
			if q["format"] != "table" {
				t.Errorf("%s: format %v", title, q["format"])
			}
			mapping := object(object(list(defaults["mappings"])[0])["options"])
			if object(mapping["False"])["text"] != "Not ready" || object(mapping["True"])["text"] != "Ready" {
				t.Errorf("%s: ready mapping %v", title, mapping)
			}
		default:
			t.Errorf("%s: type %v", title, p["type"])
		}
	}
}
