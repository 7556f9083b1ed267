package monitoring

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"
)

func TestOptionsValidate(t *testing.T) {
	base := DefaultOptions()
	for _, tc := range []struct {
		name    string
		edit    func(*Options)
		wantErr string
	}{
		{"default", func(*Options) {}, ""},
		{"another bucket", func(o *Options) { o.Threshold = 10 * time.Minute }, ""},
		{"not a bucket", func(o *Options) { o.Threshold = 1000 * time.Second }, "not a bucket boundary"},
		{"between buckets", func(o *Options) { o.Threshold = 20 * time.Minute }, "not a bucket boundary"},
		{"objective 1", func(o *Options) { o.Objective = 1 }, "not between 0 and 1"},
		{"objective 0", func(o *Options) { o.Objective = 0 }, "not between 0 and 1"},
		{"no stuck delay", func(o *Options) { o.StuckAfter = 0 }, "must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.edit(&o)
			err := o.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Validate = %v, want an error with %q", err, tc.wantErr)
			}
			if _, rerr := Rules(o); (rerr == nil) != (err == nil) {
				t.Errorf("Rules error %v, Validate error %v", rerr, err)
			}
		})
	}
}

// rule finds a rule of spec by its alert or record name.
func rule(t *testing.T, spec monitoringv1.PrometheusRuleSpec, name string) monitoringv1.Rule {
	t.Helper()
	for _, g := range spec.Groups {
		for _, r := range g.Rules {
			if r.Alert == name || r.Record == name {
				return r
			}
		}
	}
	t.Fatalf("no rule %s", name)
	return monitoringv1.Rule{}
}

func TestRulesFollowOptions(t *testing.T) {
	spec, err := Rules(Options{Objective: 0.995, Threshold: 10 * time.Minute, StuckAfter: 30 * time.Minute, NotReadyFor: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ratio := rule(t, spec, "k8s_cluster_name:flux_commit_tracker_commits_slow:ratio_rate1h").Expr.StrVal
	if !strings.Contains(ratio, `flux_commit_tracker_flux_reconcile_time_seconds_bucket{le=~"600(\\.0)?"}[1h]`) {
		t.Errorf("1h ratio does not read the 600 s bucket:\n%s", ratio)
	}
	fast := rule(t, spec, "FluxCommitDeliverySLOBurnFast")
	for _, want := range []string{
		"k8s_cluster_name:flux_commit_tracker_commits_slow:ratio_rate1h > (14.4 * 0.005)",
		"k8s_cluster_name:flux_commit_tracker_commits_slow:ratio_rate5m > (14.4 * 0.005)",
		"k8s_cluster_name:flux_commit_tracker_commits_slow:ratio_rate6h > (6 * 0.005)",
		"k8s_cluster_name:flux_commit_tracker_commits_slow:ratio_rate30m > (6 * 0.005)",
	} {
		if !strings.Contains(fast.Expr.StrVal, want) {
			t.Errorf("fast burn lacks %q:\n%s", want, fast.Expr.StrVal)
		}
	}
	if d := fast.Annotations["description"]; !strings.Contains(d, "99.5% of commits applied within 10 minutes") || !strings.Contains(d, "budget of 0.5%") {
		t.Errorf("fast burn description: %s", d)
	}
	slow := rule(t, spec, "FluxCommitDeliverySLOBurnSlow").Expr.StrVal
	for _, want := range []string{"ratio_rate1d > (3 * 0.005)", "ratio_rate2h > (3 * 0.005)", "ratio_rate3d > (1 * 0.005)", "ratio_rate6h > (1 * 0.005)"} {
		if !strings.Contains(slow, want) {
			t.Errorf("slow burn lacks %q:\n%s", want, slow)
		}
	}
	if got := rule(t, spec, "FluxCommitStuck").Expr.StrVal; !strings.HasSuffix(strings.TrimSpace(got), "> 1800") {
		t.Errorf("stuck: %s", got)
	}
	if got := rule(t, spec, "FluxCommitStuck").Annotations["summary"]; !strings.HasSuffix(got, "over 30 minutes") {
		t.Errorf("stuck summary: %s", got)
	}
	if got := rule(t, spec, "FluxKustomizationNotReady").For; got == nil || *got != "1h" {
		t.Errorf("not-ready hold %v, want 1h", got)
	}
}

func TestDefaultRules(t *testing.T) {
	spec, err := Rules(DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	var records []string
	for _, r := range spec.Groups[0].Rules {
		records = append(records, strings.TrimPrefix(r.Record, "k8s_cluster_name:flux_commit_tracker_commits_slow:ratio_rate"))
	}
	if want := []string{"5m", "30m", "1h", "2h", "6h", "1d", "3d"}; !slices.Equal(records, want) {
		t.Errorf("recorded windows %v, want %v", records, want)
	}
	held := map[string]string{}
	severity := map[string]string{}
	for _, r := range spec.Groups[1].Rules {
		if r.For != nil {
			held[r.Alert] = string(*r.For)
		}
		severity[r.Alert] = r.Labels["severity"]
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("%s lacks a summary or description", r.Alert)
		}
		if r.Alert != "FluxCommitTrackerAbsent" && !strings.Contains(r.Annotations["summary"], "$labels.") {
			t.Errorf("%s: summary names no object: %s", r.Alert, r.Annotations["summary"])
		}
	}
	wantHeld := map[string]string{
		"FluxGitRepositoryNotReady": "15m", "FluxKustomizationNotReady": "15m", "FluxHelmReleaseNotReady": "15m",
		"FluxCommitTrackerAbsent": "10m", "FluxCommitTrackerNotRecording": "1h",
	}
	if !maps.Equal(held, wantHeld) {
		t.Errorf("for: %v, want %v", held, wantHeld)
	}
	wantSeverity := map[string]string{
		"FluxGitRepositoryNotReady": SeverityWarning, "FluxKustomizationNotReady": SeverityWarning, "FluxHelmReleaseNotReady": SeverityWarning,
		"FluxCommitStuck": SeverityWarning, "FluxRevisionFailing": SeverityWarning,
		"FluxCommitDeliverySLOBurnFast": SeverityCritical, "FluxCommitDeliverySLOBurnSlow": SeverityWarning,
		"FluxCommitTrackerAbsent": SeverityWarning, "FluxCommitTrackerNotRecording": SeverityWarning,
	}
	if !maps.Equal(severity, wantSeverity) {
		t.Errorf("severities %v, want %v", severity, wantSeverity)
	}
	for kind, alert := range map[string]string{"GitRepository": "FluxGitRepositoryNotReady", "Kustomization": "FluxKustomizationNotReady", "HelmRelease": "FluxHelmReleaseNotReady"} {
		want := `max without (instance, pod) (gotk_resource_info{customresource_kind="` + kind + `", ready="False"})`
		if got := strings.TrimSpace(rule(t, spec, alert).Expr.StrVal); got != want {
			t.Errorf("%s: %s, want %s", alert, got, want)
		}
	}
}

// defaultRuleFiles are the default rules and their two files: the plain rule file and the PrometheusRule.
func defaultRuleFiles(t *testing.T) (spec monitoringv1.PrometheusRuleSpec, plain, object []byte) {
	t.Helper()
	spec, err := Rules(DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if plain, err = RulesFile(spec); err != nil {
		t.Fatal(err)
	}
	if object, err = PrometheusRuleFile(spec); err != nil {
		t.Fatal(err)
	}
	return spec, plain, object
}

// TestRuleFilesAgree reads the plain rule file and the PrometheusRule back: both hold the same groups.
func TestRuleFilesAgree(t *testing.T) {
	spec, plain, object := defaultRuleFiles(t)
	var fromPlain monitoringv1.PrometheusRuleSpec
	if err := yaml.UnmarshalStrict(plain, &fromPlain); err != nil {
		t.Fatal(err)
	}
	var fromObject monitoringv1.PrometheusRule
	if err := yaml.UnmarshalStrict(object, &fromObject); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromPlain, spec) || !reflect.DeepEqual(fromObject.Spec, spec) {
		t.Error("the rule file or the PrometheusRule does not read back as the rules")
	}
	if fromObject.APIVersion != "monitoring.coreos.com/v1" || fromObject.Kind != "PrometheusRule" || fromObject.Name != "flux-commit-tracker" {
		t.Errorf("PrometheusRule %s %s %s", fromObject.APIVersion, fromObject.Kind, fromObject.Name)
	}
	if !strings.HasPrefix(string(plain), generatedHeader) || !strings.HasPrefix(string(object), generatedHeader) {
		t.Error("a rule file lacks the generated header")
	}
}

func TestDurations(t *testing.T) {
	for d, want := range map[time.Duration]string{
		15 * time.Minute: "15m", time.Hour: "1h", 90 * time.Minute: "1h30m", 30 * time.Second: "30s", 0: "0s",
		72 * time.Hour: "3d", 36 * time.Hour: "1d12h",
	} {
		if got := promDuration(d); got != want {
			t.Errorf("promDuration(%s) = %s, want %s", d, got, want)
		}
	}
	for d, want := range map[time.Duration]string{15 * time.Minute: "15 minutes", time.Hour: "1 hour", 2 * time.Hour: "2 hours", time.Minute: "1 minute"} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%s) = %s, want %s", d, got, want)
		}
	}
	for s, want := range map[float64]string{900: `le=~"900(\\.0)?"`, 0.5: `le=~"0\\.5"`} {
		if got := leMatcher(s); got != want {
			t.Errorf("leMatcher(%v) = %s, want %s", s, got, want)
		}
	}
}
