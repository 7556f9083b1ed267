package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/monitoring"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/apptest"
)

// rulesFile is the shipped Prometheus rules file, relative to this package.
const rulesFile = "../../config/monitoring/rules.yaml"

// promRunner is a Prometheus server this test started, scraping the tracker every second and evaluating the
// shipped rules every second.
type promRunner struct {
	t   *testing.T
	url string
}

// startPrometheus starts Debian's prometheus on a free port, scraping target as job flux-commit-tracker.
func startPrometheus(t *testing.T, target string) *promRunner {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("prometheus is not installed: make test-assets installs Debian's prometheus package")
		}
		t.Skip("prometheus is not installed: run make test-assets")
	}
	rules, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: flux-commit-tracker
    static_configs:
      - targets: [%q]
`, rules, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := apptest.FreeAddr(t)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	logs, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logs.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logs.Name()); err == nil {
				t.Logf("prometheus log:\n%s", b)
			}
		}
	})
	p := &promRunner{t: t, url: "http://" + addr}
	apptest.Eventually(t, 30*time.Second, "prometheus ready", func() bool {
		resp, err := http.Get(p.url + "/-/ready")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// promSample is one element of an instant vector answer.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// get asks the HTTP API path with query parameters q and decodes its data into out; the error is Prometheus's.
func (p *promRunner) get(path string, q url.Values, out any) error {
	resp, err := http.Get(p.url + path + "?" + q.Encode())
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var answer struct {
		Status    string          `json:"status"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return fmt.Errorf("%s: HTTP %d: %s", path, resp.StatusCode, body)
	}
	if answer.Status != "success" {
		return fmt.Errorf("%s: %s: %s", path, answer.ErrorType, answer.Error)
	}
	return json.Unmarshal(answer.Data, out)
}

// query evaluates expr now; a scalar or string answer is an error (every shipped expression is a vector).
func (p *promRunner) query(expr string) ([]promSample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.get("/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("result type %s, want vector", data.ResultType)
	}
	var out []promSample
	return out, json.Unmarshal(data.Result, &out)
}

// series lists the label sets of metric's series.
func (p *promRunner) series(metric string) ([]map[string]string, error) {
	var out []map[string]string
	return out, p.get("/api/v1/series", url.Values{"match[]": {metric}, "start": {fmt.Sprint(time.Now().Add(-time.Hour).Unix())}}, &out)
}

// has reports whether expr returns at least one sample.
func (p *promRunner) has(expr string) bool {
	s, err := p.query(expr)
	return err == nil && len(s) > 0
}

// The shipped dashboards and rules against a real Prometheus scraping the tracker while two Kustomizations apply two
// commits, one then fails on a broken manifest and a GitRepository cannot fetch: every query and rule expression runs without error; every metric
// and label they name is one the tracker exports (or a rule records), except the metrics this scenario cannot
// produce, named below; the panels the scenario exercises return data; and Prometheus evaluates every rule healthy.
func TestShippedDashboardsAndRulesOnARealPrometheus(t *testing.T) {
	w := newWorld(t, "app", "web")
	tr := w.startTracker()
	prom := startPrometheus(t, tr.MetricsAddr)
	apptest.Eventually(t, 20*time.Second, "baseline", func() bool { return tr.Logged("first sight of object: revision kept as baseline, nothing recorded") })
	recorded := fmt.Sprintf(`sum(flux_commit_tracker_commits_recorded_total{k8s_namespace_name=%q})`, w.ns)
	// Two commits apart, so that rates see an increase after the histograms' first sample.
	for i, version := range []string{"1", "2"} {
		sha := w.commit("commit "+version, version, nil)
		w.reconcile()
		applied := map[string]time.Time{}
		for _, k := range []string{"app", "web"} {
			applied[k] = w.waitApplied(k, sha)
		}
		want := fmt.Sprintf("%s == %d", recorded, 2*(i+1))
		apptest.Eventually(t, 30*time.Second, "prometheus scraped "+want, func() bool { return prom.has(want) })
	}
	broken := w.commit("broken", "3", map[string]string{"app/broken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: [not, a, map]\n"})
	w.reconcile()
	w.waitFailing("app", broken)
	// A source that cannot fetch, for the failing-sources panel.
	if err := flux.CreateGitRepository(w.ctx, w.ns, "missing", flux.GitURL("no-such-repository")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf(`gotk_resource_info{exported_namespace=%q, customresource_kind="GitRepository", name="missing", ready="False"}`, w.ns),
		fmt.Sprintf(`flux_commit_tracker_failing_revision_age_seconds{k8s_namespace_name=%q, flux_name="app"} > 0`, w.ns),
		fmt.Sprintf(`gotk_resource_info{exported_namespace=%q, customresource_kind="Kustomization", name="app", ready="False"}`, w.ns),
		`k8s_cluster_name:flux_commit_tracker_commits_slow:ratio_rate5m`,
	} {
		apptest.Eventually(t, 60*time.Second, "prometheus has "+want, func() bool { return prom.has(want) })
	}

	exprs, err := monitoring.Expressions()
	if err != nil {
		t.Fatal(err)
	}
	// What this scenario cannot produce: no upstream exporter-info, no skewed clocks, no lookup errors.
	unexercised := map[string]string{
		"flux_commit_tracker_kube_manifests_exporter_export_time_seconds_sum":    "no upstream commits (exporter-info.json)",
		"flux_commit_tracker_kube_manifests_exporter_export_time_seconds_count":  "no upstream commits (exporter-info.json)",
		"flux_commit_tracker_kube_manifests_exporter_export_time_seconds_bucket": "no upstream commits (exporter-info.json)",
		"flux_commit_tracker_clock_skew_total":                                   "no skewed clocks",
		"flux_commit_tracker_errors_total":                                       "no lookup failures",
	}
	// The panels and variables this scenario fills.
	filled := []string{
		"Flux commit delivery / variable cluster",
		"Flux commit delivery / variable namespace",
		"Flux commit delivery / variable object",
		"Flux commit delivery / Reconcile time: manifests commit → applied",
		"Flux commit delivery / End-to-end time: upstream commit → applied",
		"Flux commit delivery / Reconcile time by cluster",
		"Flux commit delivery / End-to-end time by cluster",
		"Flux commit delivery / Latency by namespace",
		"Flux commit delivery / Latency by object",
		"Flux commit delivery / Commits recorded per hour (deployment frequency)",
		"Flux commit delivery / Failing revisions",
		"Flux cluster / Cluster Reconcilers",
		"Flux cluster / Failing Reconcilers",
		"Flux cluster / Kubernetes Manifests Sources",
		"Flux cluster / Failing Sources",
		"Flux cluster / Cluster reconciliation readiness",
		"Flux cluster / Source acquisition readiness",
		"flux-commit-tracker.slo / k8s_cluster_name:flux_commit_tracker_commits_slow:ratio_rate5m",
		"flux-commit-tracker.alerts / FluxKustomizationNotReady",
		"flux-commit-tracker.alerts / FluxGitRepositoryNotReady",
	}
	seen := map[string]bool{}
	labelsOf := map[string][]map[string]string{}
	for _, e := range exprs {
		samples, err := prom.query(e.PromQL)
		if err != nil {
			t.Errorf("%s: %s: %v", e.Where(), e.PromQL, err)
			continue
		}
		if len(samples) > 0 {
			seen[e.Where()] = true
		}
		parsed, err := parser.NewParser(parser.Options{}).ParseExpr(e.PromQL)
		if err != nil {
			t.Errorf("%s: %v", e.Where(), err)
			continue
		}
		parser.Inspect(parsed, func(node parser.Node, path []parser.Node) error {
			vs, ok := node.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			if _, skip := unexercised[vs.Name]; skip || vs.Name == "" {
				return nil
			}
			sets, ok := labelsOf[vs.Name]
			if !ok {
				if sets, err = prom.series(vs.Name); err != nil {
					t.Errorf("%s: series of %s: %v", e.Where(), vs.Name, err)
				}
				labelsOf[vs.Name] = sets
			}
			if len(sets) == 0 {
				t.Errorf("%s: names %s, which Prometheus has no series of", e.Where(), vs.Name)
				return nil
			}
			names := []string{}
			for _, m := range vs.LabelMatchers {
				if m.Name != model.MetricNameLabel {
					names = append(names, m.Name)
				}
			}
			// Labels an enclosing aggregation groups by are labels of this metric too.
			for _, n := range path {
				if agg, ok := n.(*parser.AggregateExpr); ok && !agg.Without {
					names = append(names, agg.Grouping...)
				}
			}
			for _, name := range names {
				if name == "le" && !strings.HasSuffix(vs.Name, "_bucket") {
					continue
				}
				if !slices.ContainsFunc(sets, func(s map[string]string) bool { _, ok := s[name]; return ok }) {
					t.Errorf("%s: uses label %s, which no series of %s has", e.Where(), name, vs.Name)
				}
			}
			return nil
		})
	}
	for _, where := range filled {
		if !seen[where] {
			t.Errorf("%s returned no data", where)
		}
	}

	// Prometheus loaded the shipped rules file and evaluates every rule without error.
	var rules struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Name           string    `json:"name"`
				Health         string    `json:"health"`
				LastError      string    `json:"lastError"`
				LastEvaluation time.Time `json:"lastEvaluation"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := prom.get("/api/v1/rules", url.Values{}, &rules); err != nil {
		t.Fatal(err)
	}
	loaded := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			loaded++
			if r.Health != "ok" || r.LastError != "" || r.LastEvaluation.IsZero() {
				t.Errorf("rule %s / %s: health %q, last error %q, evaluated %v", g.Name, r.Name, r.Health, r.LastError, r.LastEvaluation)
			}
		}
	}
	ruleExprs := 0
	for _, e := range exprs {
		if e.Rule != "" {
			ruleExprs++
		}
	}
	if loaded != ruleExprs || loaded == 0 {
		t.Errorf("prometheus loaded %d rules from %s, the rules list %d", loaded, rulesFile, ruleExprs)
	}
}
