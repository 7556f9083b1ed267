package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
)

// scrape GETs /metrics in the Prometheus text format and parses it.
func scrape(t *testing.T, h http.Handler) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	body := get(t, h, "")
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	return body, fams
}

// get GETs h, asking for accept when not empty, and returns the body.
func get(t *testing.T, h http.Handler, accept string) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	req.Header.Set("Accept-Encoding", "identity") // gzip costs seconds under -race
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	return string(body)
}

// setupMetrics runs Setup for cfg, shut down when t ends, and builds Metrics on its provider.
func setupMetrics(t *testing.T, cfg Config) (*Telemetry, *Metrics) {
	t.Helper()
	tel, err := Setup(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	m, err := NewMetrics(tel.MeterProvider)
	if err != nil {
		t.Fatal(err)
	}
	return tel, m
}

// checkLabels fails unless every series of fam has the labels of exactly the attribute keys.
func checkLabels(t *testing.T, fam *dto.MetricFamily, keys []string) {
	t.Helper()
	var want []string
	for _, k := range keys {
		l, err := PrometheusLabel(k)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, l)
	}
	slices.Sort(want)
	for _, mt := range fam.GetMetric() {
		var got []string
		for _, lp := range mt.GetLabel() {
			got = append(got, lp.GetName())
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: labels %v, want %v", fam.GetName(), got, want)
		}
	}
}

// TestPrometheusExport scrapes the real exporter and checks its names against
// PrometheusName, so the README table is what /metrics serves.
func TestPrometheusExport(t *testing.T) {
	tel, m := setupMetrics(t, Config{Stdout: io.Discard, ServiceVersion: "v1.2.3", ClusterName: "prod-eu"})
	ctx := context.Background()
	m.ObserveE2E(ctx, 90*time.Second, obj)
	m.ObserveExport(ctx, 30*time.Second, obj)
	m.ObserveReconcile(ctx, 60*time.Second, obj)
	m.AddCommitsRecorded(ctx, 2, obj)
	m.AddError(ctx, ReasonGitHub, obj)
	m.AddClockSkew(ctx, latency.StageApply, obj)
	m.AddTruncated(ctx, 5, obj)
	m.AddNotRecorded(ctx, commits.Behind, obj)
	m.AddGitHubCall(ctx, commits.CallSuccess)
	m.AddGitCall(ctx, commits.CallCacheHit)
	m.ObserveFetch(ctx, 20*time.Second, obj)
	m.ObserveApply(ctx, 40*time.Second, obj)
	m.AddDelivery(ctx, "webhook", "delivered", 3*time.Second)
	m.AddForgePost(ctx, "status", "posted")
	if _, err := m.ObserveOutbox(func() map[string]int { return map[string]int{"webhook": 2, "pager": 1} }); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	if _, err := m.ObserveRollouts(func() []RolloutState {
		return []RolloutState{{Attributes: obj, PendingSince: now.Add(-42 * time.Second)}}
	}, func() time.Time { return now }); err != nil {
		t.Fatal(err)
	}

	body, fams := scrape(t, tel.MetricsHandler)

	// The names the README promises, spelled out.
	for _, series := range []string{
		"flux_commit_tracker_e2e_export_time_seconds_bucket{",
		"flux_commit_tracker_e2e_export_time_seconds_sum{",
		"flux_commit_tracker_e2e_export_time_seconds_count{",
		"flux_commit_tracker_kube_manifests_exporter_export_time_seconds_bucket{",
		"flux_commit_tracker_kube_manifests_exporter_export_time_seconds_sum{",
		"flux_commit_tracker_kube_manifests_exporter_export_time_seconds_count{",
		"flux_commit_tracker_flux_reconcile_time_seconds_bucket{",
		"flux_commit_tracker_flux_reconcile_time_seconds_sum{",
		"flux_commit_tracker_flux_reconcile_time_seconds_count{",
		"flux_commit_tracker_commits_recorded_total{",
		`flux_commit_tracker_e2e_export_time_seconds_bucket{flux_kind="Kustomization",flux_name="apps",k8s_cluster_name="prod-eu",k8s_namespace_name="flux-system",vcs_repository_url_full="https://github.com/acme/kube-manifests",le="120"} 1`,
		`flux_commit_tracker_github_calls_total{outcome="success"} 1`,
		"flux_commit_tracker_flux_fetch_time_seconds_count{",
		"flux_commit_tracker_flux_apply_time_seconds_sum{",
		`flux_commit_tracker_pending_commit_age_seconds{flux_kind="Kustomization",flux_name="apps",k8s_cluster_name="prod-eu",k8s_namespace_name="flux-system",vcs_repository_url_full="https://github.com/acme/kube-manifests"} 42`,
		`flux_commit_tracker_failing_revision_age_seconds{flux_kind="Kustomization",flux_name="apps",k8s_cluster_name="prod-eu",k8s_namespace_name="flux-system",vcs_repository_url_full="https://github.com/acme/kube-manifests"} 0`,
	} {
		if !strings.Contains(body, series) {
			t.Errorf("scrape lacks %q", series)
		}
	}
	if strings.Contains(body, "otel_scope_") {
		t.Error("otel_scope_* labels present; the exporter should run WithoutScopeInfo")
	}

	// Every definition: family name, type and label names.
	types := map[Kind]dto.MetricType{Histogram: dto.MetricType_HISTOGRAM, Counter: dto.MetricType_COUNTER, Gauge: dto.MetricType_GAUGE}
	for _, d := range Definitions {
		name, err := PrometheusName(d)
		if err != nil {
			t.Fatal(err)
		}
		fam, ok := fams[name]
		if !ok {
			t.Errorf("%s: family %s not scraped", d.Name, name)
			continue
		}
		if fam.GetType() != types[d.Kind] {
			t.Errorf("%s: type %v, want %v", name, fam.GetType(), types[d.Kind])
		}
		checkLabels(t, fam, d.Attributes)
	}

	// target_info carries the resource.
	ti, ok := fams["target_info"]
	if !ok {
		t.Fatal("no target_info")
	}
	labels := map[string]string{}
	for _, lp := range ti.GetMetric()[0].GetLabel() {
		labels[lp.GetName()] = lp.GetValue()
	}
	for k, v := range map[string]string{"service_name": "flux-commit-tracker", "service_version": "v1.2.3", "k8s_cluster_name": "prod-eu"} {
		if labels[k] != v {
			t.Errorf("target_info %s = %q, want %q", k, labels[k], v)
		}
	}
}
