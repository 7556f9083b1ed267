package monitoring

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"
)

// promtool finds promtool; without it the test is skipped, except under CI, where it fails.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("promtool not found under CI (run hack/monitoring-assets.sh): %v", err)
		}
		t.Skipf("promtool not found (run hack/monitoring-assets.sh): %v", err)
	}
	return path
}

func runPromtool(t *testing.T, bin, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

// TestPromtool checks both generated rule files with promtool check rules and runs the unit tests of
// testdata/rules-test.yaml against the plain one.
func TestPromtool(t *testing.T) {
	bin := promtool(t)
	dir := t.TempDir()
	spec, plain, object := defaultRuleFiles(t)
	// promtool reads rule files, so the PrometheusRule's spec is checked as one.
	var pr monitoringv1.PrometheusRule
	if err := yaml.Unmarshal(object, &pr); err != nil {
		t.Fatal(err)
	}
	objectSpec, err := yaml.Marshal(pr.Spec)
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile("testdata/rules-test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{"rules.yaml": plain, "prometheusrule-spec.yaml": objectSpec, "rules-test.yaml": tests} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rules := len(spec.Groups[0].Rules) + len(spec.Groups[1].Rules)
	for _, f := range []string{"rules.yaml", "prometheusrule-spec.yaml"} {
		out := runPromtool(t, bin, dir, "check", "rules", f)
		if want := "SUCCESS: " + strconv.Itoa(rules) + " rules found"; !strings.Contains(out, want) {
			t.Errorf("check rules %s: no %q", f, want)
		}
	}
	if out := runPromtool(t, bin, dir, "test", "rules", "rules-test.yaml"); !strings.Contains(out, "SUCCESS") {
		t.Error("promtool test rules did not succeed")
	}
}

// TestPromtoolTestsCoverEveryAlert fails when an alert has no promtool test expecting it to fire.
func TestPromtoolTestsCoverEveryAlert(t *testing.T) {
	raw, err := os.ReadFile("testdata/rules-test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `json:"alertname"`
				ExpAlerts []map[string]any `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(raw, &tests); err != nil {
		t.Fatal(err)
	}
	fires := map[string]bool{}
	for _, g := range tests.Tests {
		for _, a := range g.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	spec, err := Rules(DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	var alerts []string
	for _, r := range spec.Groups[1].Rules {
		alerts = append(alerts, r.Alert)
	}
	slices.Sort(alerts)
	if got := slices.Sorted(maps.Keys(fires)); !slices.Equal(got, alerts) {
		t.Errorf("promtool tests make %v fire, want every alert %v", got, alerts)
	}
}
