package deploy_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/diff"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

const (
	// chartDir is the Helm chart, relative to this package.
	chartDir = "../../charts/flux-commit-tracker"
	// monitoringOverlay is config/deploy with the monitoring component.
	monitoringOverlay = "../../config/overlays/monitoring"
	// releaseName and releaseNamespace install the chart as config/deploy installs itself.
	releaseName      = "flux-commit-tracker"
	releaseNamespace = "flux-system"
)

// kustomizeValues are the chart values whose rendering equals config/deploy: the chart's defaults are the
// kustomization's but for the image, which the kustomization leaves to an `images:` edit, and the cluster name.
func kustomizeValues() map[string]any {
	return map[string]any{
		"image":       map[string]any{"repository": "flux-commit-tracker", "tag": "latest", "pullPolicy": ""},
		"clusterName": "my-cluster",
	}
}

// monitoringValues turn on what config/components/monitoring adds.
func monitoringValues() map[string]any {
	v := kustomizeValues()
	for _, k := range []string{"serviceMonitor", "prometheusRule", "dashboards"} {
		v[k] = map[string]any{"enabled": true}
	}
	return v
}

// renderChart renders the chart as `helm template flux-commit-tracker -n flux-system` does, values checked
// against values.schema.json.
func renderChart(values map[string]any) ([]*unstructured.Unstructured, error) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		return nil, fmt.Errorf("load chart: %w", err)
	}
	opts := common.ReleaseOptions{Name: releaseName, Namespace: releaseNamespace, Revision: 1, IsInstall: true}
	vals, err := util.ToRenderValuesWithSchemaValidation(ch, values, opts, common.DefaultCapabilities, false)
	if err != nil {
		return nil, fmt.Errorf("chart values: %w", err)
	}
	files, err := engine.Render(ch, vals)
	if err != nil {
		return nil, fmt.Errorf("render chart: %w", err)
	}
	var objs []*unstructured.Unstructured
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if path.Ext(name) != ".yaml" {
			continue // NOTES.txt
		}
		docs, err := decodeYAML(files[name])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		objs = append(objs, docs...)
	}
	return objs, nil
}

// renderChartT is renderChart that fails the test.
func renderChartT(t testing.TB, values map[string]any) []*unstructured.Unstructured {
	t.Helper()
	objs, err := renderChart(values)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// decodeYAML splits a multi-document YAML stream into objects, skipping empty documents.
func decodeYAML(s string) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(s), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode YAML: %w", err)
		}
		if len(m) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
}

// renderKustomization builds dir with the kustomize API and its default (root-only) load restrictions, as
// `kubectl apply -k` does.
func renderKustomization(t testing.TB, dir string) []*unstructured.Unstructured {
	t.Helper()
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	y, err := resources.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeYAML(string(y))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	return objs
}

// helmOnlyLabels are the labels the chart adds for Helm's bookkeeping and for several releases side by side;
// the comparison ignores them wherever labels or selectors appear.
var helmOnlyLabels = []string{"helm.sh/chart", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "app.kubernetes.io/version"}

// normalized is obj without what legitimately differs between the chart and the kustomization: Helm's own
// labels, and the order of environment variables (neither uses $(VAR) references).
func normalized(obj *unstructured.Unstructured) map[string]any {
	o := obj.DeepCopy().Object
	for _, p := range [][]string{
		{"metadata", "labels"}, {"spec", "selector", "matchLabels"}, {"spec", "template", "metadata", "labels"},
	} {
		if m, ok, _ := unstructured.NestedStringMap(o, p...); ok {
			for _, l := range helmOnlyLabels {
				delete(m, l)
			}
			_ = unstructured.SetNestedStringMap(o, m, p...)
		}
	}
	if obj.GetKind() == "Service" {
		if m, ok, _ := unstructured.NestedStringMap(o, "spec", "selector"); ok {
			for _, l := range helmOnlyLabels {
				delete(m, l)
			}
			_ = unstructured.SetNestedStringMap(o, m, "spec", "selector")
		}
	}
	if cs, ok, _ := unstructured.NestedSlice(o, "spec", "template", "spec", "containers"); ok {
		for _, c := range cs {
			c := c.(map[string]any)
			if env, ok := c["env"].([]any); ok {
				sort.SliceStable(env, func(i, j int) bool {
					return env[i].(map[string]any)["name"].(string) < env[j].(map[string]any)["name"].(string)
				})
			}
		}
		_ = unstructured.SetNestedSlice(o, cs, "spec", "template", "spec", "containers")
	}
	return o
}

// objectKey names an object by kind, namespace and name.
func objectKey(o *unstructured.Unstructured) string {
	return o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
}

// compareInstalls fails unless both renderings hold the same objects, equal but for what normalized drops.
func compareInstalls(t *testing.T, chart, kustomized []*unstructured.Unstructured) {
	t.Helper()
	index := func(objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
		m := map[string]*unstructured.Unstructured{}
		for _, o := range objs {
			if _, dup := m[objectKey(o)]; dup {
				t.Errorf("%s rendered twice", objectKey(o))
			}
			m[objectKey(o)] = o
		}
		return m
	}
	c, k := index(chart), index(kustomized)
	if got, want := slices.Sorted(maps.Keys(c)), slices.Sorted(maps.Keys(k)); !slices.Equal(got, want) {
		t.Fatalf("the chart renders\n  %s\nthe kustomization\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	for key, ko := range k {
		if a, b := normalized(c[key]), normalized(ko); !reflect.DeepEqual(a, b) {
			t.Errorf("%s differs between the chart (-) and the kustomization (+):\n%s", key, diff.Diff(a, b))
		}
	}
}

// TestChartRendersTheKustomizeInstall: with the kustomization's settings, the chart renders config/deploy's
// objects field for field: the Deployment's args, env, probes, ports and security contexts, and the RBAC.
func TestChartRendersTheKustomizeInstall(t *testing.T) {
	chart := renderChartT(t, kustomizeValues())
	compareInstalls(t, chart, renderKustomization(t, deployDir))
	// Not vacuous: the rendering carries the RBAC and the Deployment.
	kinds := map[string]int{}
	for _, o := range chart {
		kinds[o.GetKind()]++
	}
	for _, k := range []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Deployment"} {
		if kinds[k] != 1 {
			t.Errorf("the chart renders %d %s, want 1", kinds[k], k)
		}
	}
}

// TestChartRendersTheMonitoringComponent: with the monitoring values on, the chart renders what the monitoring
// overlay does: the metrics Service, the ServiceMonitor, the PrometheusRule of the generated rules and one
// dashboard ConfigMap per generated dashboard with the sidecar label.
func TestChartRendersTheMonitoringComponent(t *testing.T) {
	chart := renderChartT(t, monitoringValues())
	compareInstalls(t, chart, renderKustomization(t, monitoringOverlay))
	var dashboards, rules int
	for _, o := range chart {
		switch o.GetKind() {
		case "ConfigMap":
			if o.GetLabels()["grafana_dashboard"] != "1" {
				t.Errorf("ConfigMap %s lacks grafana_dashboard: \"1\"", o.GetName())
			}
			data, _, _ := unstructured.NestedStringMap(o.Object, "data")
			for k, v := range data {
				if !strings.HasSuffix(k, ".json") || !strings.HasPrefix(strings.TrimSpace(v), "{") {
					t.Errorf("ConfigMap %s key %s is not a dashboard's JSON", o.GetName(), k)
				}
			}
			dashboards++
		case "PrometheusRule":
			groups, _, _ := unstructured.NestedSlice(o.Object, "spec", "groups")
			rules = len(groups)
		}
	}
	if dashboards < 2 || rules == 0 {
		t.Errorf("monitoring renders %d dashboards and %d rule groups, want the generated ones", dashboards, rules)
	}
	// Off by default, as the kustomize base has none of it.
	for _, o := range renderChartT(t, kustomizeValues()) {
		if k := o.GetKind(); k == "Service" || k == "ServiceMonitor" || k == "PrometheusRule" || k == "ConfigMap" {
			t.Errorf("default values render %s", objectKey(o))
		}
	}
}

// TestChartLeaderElection: more than one replica always elects a leader; one replica does unless turned off.
func TestChartLeaderElection(t *testing.T) {
	for _, tc := range []struct {
		replicas int
		enabled  bool
		want     bool
	}{{1, false, false}, {1, true, true}, {2, false, true}, {3, true, true}} {
		v := kustomizeValues()
		v["replicaCount"], v["leaderElection"] = tc.replicas, map[string]any{"enabled": tc.enabled}
		d := chartDeployment(t, v)
		args, _, _ := unstructured.NestedStringSlice(containerOf(t, d), "args")
		if got := slices.Contains(args, "--enable-leader-election"); got != tc.want {
			t.Errorf("replicas %d, leaderElection.enabled %v: args %q, want leader election %v", tc.replicas, tc.enabled, args, tc.want)
		}
		if r, _, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "replicas"); fmt.Sprint(r) != fmt.Sprint(tc.replicas) {
			t.Errorf("replicas = %v, want %d", r, tc.replicas)
		}
	}
}

// chartDeployment is the Deployment the chart renders with values.
func chartDeployment(t testing.TB, values map[string]any) *unstructured.Unstructured {
	t.Helper()
	for _, o := range renderChartT(t, values) {
		if o.GetKind() == "Deployment" {
			return o
		}
	}
	t.Fatal("the chart renders no Deployment")
	return nil
}

// containerOf is the Deployment's one container.
func containerOf(t testing.TB, d *unstructured.Unstructured) map[string]any {
	t.Helper()
	cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if len(cs) != 1 {
		t.Fatalf("Deployment has %d containers, want 1", len(cs))
	}
	return cs[0].(map[string]any)
}

// TestChartImageTagDefaultsToAppVersion: no tag means the chart's appVersion.
func TestChartImageTagDefaultsToAppVersion(t *testing.T) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	c := containerOf(t, chartDeployment(t, map[string]any{}))
	want := "ghcr.io/flux-commit-tracker/flux-commit-tracker:" + ch.Metadata.AppVersion
	if c["image"] != want || c["imagePullPolicy"] != "IfNotPresent" {
		t.Errorf("image %v (%v), want %s (IfNotPresent)", c["image"], c["imagePullPolicy"], want)
	}
}

// TestChartSchemaRejectsBadValues: values.schema.json stops typos, impossible settings and credentials in clear.
func TestChartSchemaRejectsBadValues(t *testing.T) {
	for name, v := range map[string]map[string]any{
		"unknown top-level key":   {"replicas": 2},
		"bad telemetry mode":      {"telemetry": map[string]any{"mode": "loud"}},
		"negative replicas":       {"replicaCount": -1},
		"a token in clear":        {"github": map[string]any{"token": map[string]any{"value": "ghp_secret"}}},
		"a Slack URL in clear":    {"notify": map[string]any{"slack": map[string]any{"url": "https://hooks.slack.com/x"}}},
		"bad duration":            {"notify": map[string]any{"stuckAfter": "fifteen minutes"}},
		"bad commit status scope": {"commitStatus": map[string]any{"scope": "repo"}},
	} {
		if _, err := renderChart(v); err == nil || !strings.Contains(err.Error(), "schema") {
			t.Errorf("%s: render error = %v, want a schema violation", name, err)
		}
	}
	v := kustomizeValues()
	v["grafana"] = map[string]any{"url": "https://grafana.example"}
	if _, err := renderChart(v); err == nil || !strings.Contains(err.Error(), "grafana.token.existingSecret") {
		t.Errorf("grafana.url without a token: error = %v, want it refused", err)
	}
}

// TestChartLints: `helm lint` finds nothing with the default and the monitoring values.
func TestChartLints(t *testing.T) {
	for name, v := range map[string]map[string]any{"defaults": {}, "monitoring": monitoringValues(), "every option": everyOptionValues()} {
		res := lint.RunAll(chartDir, v, releaseNamespace)
		for _, m := range res.Messages {
			if m.Severity >= support.WarningSev {
				t.Errorf("%s: helm lint: %s", name, m.Error())
			}
		}
	}
}

// TestChartDashboardsAreTheGeneratedFiles: each dashboard ConfigMap holds its file byte for byte.
func TestChartDashboardsAreTheGeneratedFiles(t *testing.T) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range ch.Files {
		if strings.HasPrefix(f.Name, "files/dashboards/") {
			files[path.Base(f.Name)] = f.Data
		}
	}
	seen := 0
	for _, o := range renderChartT(t, monitoringValues()) {
		if o.GetKind() != "ConfigMap" {
			continue
		}
		data, _, _ := unstructured.NestedStringMap(o.Object, "data")
		for k, v := range data {
			if !bytes.Equal([]byte(v), files[k]) {
				t.Errorf("ConfigMap %s key %s is not files/dashboards/%s", o.GetName(), k, k)
			}
			seen++
		}
	}
	if seen != len(files) || seen == 0 {
		t.Errorf("%d dashboards in ConfigMaps, %d in files/dashboards", seen, len(files))
	}
}

// TestChartValuesReachTheTrackersOptions: every sink, credential and setting of values.yaml becomes the option
// the tracker reads, through its own flag and environment parsing; Secrets are resolved as the kubelet would.
func TestChartValuesReachTheTrackersOptions(t *testing.T) {
	values := everyOptionValues()
	secrets := map[string]string{
		"gh/pat": "ghp_token", "hooks/hmac": "hmac-key", "chat/slack": "https://hooks.slack.example/T0/B0/x",
		"chat/teams": "https://teams.example/workflow", "grafana/sa": "glsa_token", "forges/gitlab": "glpat", "forges/gitea": "gitea-token",
	}
	c := containerOf(t, chartDeployment(t, values))
	env := map[string]string{}
	envs, _, _ := unstructured.NestedSlice(c, "env")
	for _, e := range envs {
		e := e.(map[string]any)
		name := e["name"].(string)
		if v, ok := e["value"].(string); ok {
			env[name] = v
			continue
		}
		if ref, ok, _ := unstructured.NestedMap(e, "valueFrom", "secretKeyRef"); ok {
			v, found := secrets[fmt.Sprint(ref["name"], "/", ref["key"])]
			if !found {
				t.Fatalf("env %s reads Secret %s key %s, not one of the values' Secrets", name, ref["name"], ref["key"])
			}
			env[name] = v
		}
	}
	args, _, _ := unstructured.NestedStringSlice(c, "args")
	opts := parseTrackerOptions(t, args, env)

	for what, got := range map[string][2]any{
		"cluster name":           {opts.ClusterName, "prod-eu"},
		"telemetry mode":         {string(opts.Telemetry.Mode), "otlp"},
		"telemetry endpoint":     {opts.Telemetry.Endpoint, "collector:4317"},
		"telemetry insecure":     {opts.Telemetry.Insecure, false},
		"log level":              {opts.Telemetry.LogLevel, "debug"},
		"metrics aggregation":    {string(opts.Telemetry.Aggregation), "namespace"},
		"watch namespace":        {opts.WatchNamespace, "apps"},
		"label selector":         {opts.WatchLabelSelector, "team=payments"},
		"leader election":        {opts.EnableLeaderElection, false},
		"concurrency":            {opts.Concurrency, 8},
		"GitHub API":             {opts.GitHubAPIURL, "https://ghe.example/api/v3"},
		"GitHub token":           {opts.GitHubToken, "ghp_token"},
		"git cache":              {opts.GitCacheDir, "/var/cache/flux-commit-tracker/git"},
		"webhook URL":            {opts.NotifyWebhookURL, "https://hooks.example/landed"},
		"webhook secret":         {string(opts.NotifyWebhookSecret), "hmac-key"},
		"Slack":                  {opts.SlackWebhookURL, "https://hooks.slack.example/T0/B0/x"},
		"Teams":                  {opts.TeamsWebhookURL, "https://teams.example/workflow"},
		"stuck after":            {opts.NotifyStuckAfter.String(), "30m0s"},
		"Grafana URL":            {opts.GrafanaURL, "https://grafana.example"},
		"Grafana dashboard":      {opts.GrafanaDashboardUID, "fct"},
		"Grafana token":          {opts.GrafanaToken, "glsa_token"},
		"commit status":          {opts.CommitStatus, true},
		"commit status scope":    {opts.CommitStatusScope, "object"},
		"commit status URL":      {opts.CommitStatusURL, "https://traces.example/{trace_id}"},
		"GitLab API":             {opts.GitLabAPIURL, "https://gitlab.example/api/v4"},
		"GitLab token":           {opts.GitLabToken, "glpat"},
		"Gitea API":              {opts.GiteaAPIURL, "https://gitea.example/api/v1"},
		"Gitea token":            {opts.GiteaToken, "gitea-token"},
		"GitHub deployments":     {opts.GitHubDeployments, true},
		"deployment environment": {opts.DeploymentEnvironment, "prod-{cluster}"},
		"deployment production":  {opts.DeploymentProduction, true},
	} {
		if got[0] != got[1] {
			t.Errorf("%s = %v, want %v", what, got[0], got[1])
		}
	}
	// The OTel SDK reads these two itself.
	if env["OTEL_SERVICE_NAME"] != "tracker-eu" || env["OTEL_RESOURCE_ATTRIBUTES"] != "deployment.environment.name=prod" {
		t.Errorf("OTEL_SERVICE_NAME %q, OTEL_RESOURCE_ATTRIBUTES %q", env["OTEL_SERVICE_NAME"], env["OTEL_RESOURCE_ATTRIBUTES"])
	}

	// A GitHub App instead of the token: its three variables from one Secret.
	values["github"] = map[string]any{"token": map[string]any{"existingSecret": ""}, "app": map[string]any{"existingSecret": "gh-app"}}
	c = containerOf(t, chartDeployment(t, values))
	envs, _, _ = unstructured.NestedSlice(c, "env")
	app := map[string]string{}
	for _, e := range envs {
		e := e.(map[string]any)
		if ref, ok, _ := unstructured.NestedMap(e, "valueFrom", "secretKeyRef"); ok && ref["name"] == "gh-app" {
			app[e["name"].(string)] = fmt.Sprint(ref["key"])
			if ref["optional"] != nil {
				t.Errorf("%s is optional: a configured GitHub App must not start without it", e["name"])
			}
		}
		if e["name"] == "GITHUB_TOKEN" {
			t.Error("GITHUB_TOKEN set with github.token.existingSecret empty")
		}
	}
	want := map[string]string{"GITHUB_APP_ID": "appID", "GITHUB_APP_INSTALLATION_ID": "installationID", "GITHUB_APP_PRIVATE_KEY": "privateKey"}
	if !maps.Equal(app, want) {
		t.Errorf("GitHub App variables = %v, want %v", app, want)
	}
}

// everyOptionValues set every value of the chart, credentials as Secret references.
func everyOptionValues() map[string]any {
	secretRef := func(name, key string) map[string]any { return map[string]any{"existingSecret": name, "key": key} }
	return map[string]any{
		"replicaCount": 1, "leaderElection": map[string]any{"enabled": false},
		"clusterName": "prod-eu",
		"telemetry": map[string]any{"mode": "otlp", "endpoint": "collector:4317", "insecure": false, "logLevel": "debug",
			"serviceName": "tracker-eu", "resourceAttributes": map[string]any{"deployment.environment.name": "prod"}},
		"watch":  map[string]any{"namespace": "apps", "labelSelector": "team=payments"},
		"github": map[string]any{"apiURL": "https://ghe.example/api/v3", "token": secretRef("gh", "pat")},
		"notify": map[string]any{
			"webhook": map[string]any{"url": "https://hooks.example/landed", "secret": secretRef("hooks", "hmac")},
			"slack":   secretRef("chat", "slack"), "teams": secretRef("chat", "teams"), "stuckAfter": "30m",
		},
		"grafana":           map[string]any{"url": "https://grafana.example", "dashboardUID": "fct", "token": secretRef("grafana", "sa")},
		"commitStatus":      map[string]any{"enabled": true, "scope": "object", "url": "https://traces.example/{trace_id}"},
		"gitlab":            map[string]any{"apiURL": "https://gitlab.example/api/v4", "token": secretRef("forges", "gitlab")},
		"gitea":             map[string]any{"apiURL": "https://gitea.example/api/v1", "token": secretRef("forges", "gitea")},
		"githubDeployments": map[string]any{"enabled": true, "environment": "prod-{cluster}", "production": true},
		"extraArgs":         []any{"--metrics-aggregation=namespace"},
		"extraEnv":          []any{map[string]any{"name": "CONCURRENCY", "value": "8"}},
		"podAnnotations":    map[string]any{"example.com/team": "delivery"},
		"nodeSelector":      map[string]any{"kubernetes.io/os": "linux"},
		"tolerations":       []any{map[string]any{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}},
		"serviceMonitor":    map[string]any{"enabled": true, "labels": map[string]any{"release": "kube-prometheus-stack"}, "interval": "30s", "scrapeTimeout": "10s"},
		"prometheusRule":    map[string]any{"enabled": true, "labels": map[string]any{"release": "kube-prometheus-stack"}},
		"dashboards":        map[string]any{"enabled": true, "annotations": map[string]any{"grafana_folder": "Flux"}},
	}
}
