package app

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func runArgs(t *testing.T, args []string, env map[string]string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := Run(context.Background(), args, Deps{Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &out})
	return code, out.String()
}

func TestHelpDocumentsEveryFlagAndItsEnvVar(t *testing.T) {
	code, out := runArgs(t, []string{"--help"}, map[string]string{"GITHUB_TOKEN": "ghp_secret_value"})
	if code != 0 {
		t.Fatalf("--help exit = %d, want 0", code)
	}
	for flag, env := range envNames {
		if !strings.Contains(out, "--"+flag) {
			t.Errorf("--help lacks --%s", flag)
		}
		if !strings.Contains(out, "[env "+env+"]") {
			t.Errorf("--help lacks the env var %s of --%s", env, flag)
		}
	}
	for _, want := range []string{"GITHUB_TOKEN", "GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY", "GITHUB_APP_INSTALLATION_ID"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help does not explain %s", want)
		}
	}
	if strings.Contains(out, "ghp_secret_value") {
		t.Error("--help shows the token")
	}
}

// The README's configuration table names every flag with its environment variable, and every variable read
// from the environment only.
func TestREADMEDocumentsEveryFlagAndItsEnvVar(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	for flag, env := range envNames {
		if !strings.Contains(readme, "| `--"+flag+"` | `"+env+"` |") {
			t.Errorf("README's configuration table lacks --%s (%s)", flag, env)
		}
	}
	for _, env := range []string{"GITHUB_TOKEN", "GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY", "GITHUB_APP_INSTALLATION_ID", "NOTIFY_WEBHOOK_SECRET",
		"SLACK_WEBHOOK_URL", "TEAMS_WEBHOOK_URL", "GRAFANA_TOKEN", "GITLAB_TOKEN", "GITEA_TOKEN"} {
		if !strings.Contains(readme, "`"+env+"`") {
			t.Errorf("README does not explain %s", env)
		}
	}
}

func TestBadValuesExitTwoNamingTheFlag(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"commit time", []string{"--commit-time=merged"}, nil, "--commit-time"},
		{"commit time from env", nil, map[string]string{"COMMIT_TIME": "merged"}, "--commit-time"},
		{"telemetry mode", []string{"--telemetry-mode=loud"}, nil, "telemetry-mode"},
		{"telemetry mode from env", nil, map[string]string{"TELEMETRY_MODE": "loud"}, "--telemetry-mode (from TELEMETRY_MODE)"},
		{"log level", []string{"--log-level=chatty"}, nil, "log level"},
		{"insecure from env", nil, map[string]string{"TELEMETRY_INSECURE": "maybe"}, "--telemetry-insecure (from TELEMETRY_INSECURE)"},
		{"metrics addr", []string{"--metrics-addr=8888"}, nil, "--metrics-addr"},
		{"health addr from env", nil, map[string]string{"HEALTH_ADDR": "nohost"}, "--health-addr"},
		{"label selector", []string{"--watch-label-selector=a in (b"}, nil, "--watch-label-selector"},
		{"namespace", []string{"--namespace=Not_Valid"}, nil, "--namespace"},
		{"github api url", []string{"--github-api-url=ftp://x"}, nil, "--github-api-url"},
		{"concurrency", []string{"--concurrency=0"}, nil, "--concurrency"},
		{"workers not above concurrency", []string{"--concurrency=8", "--workers=8"}, nil, "--workers 8: must be more than --concurrency"},
		{"webhook url", []string{"--notify-webhook-url=ftp://secretkeymaterial@hooks.example.com/x"}, nil, "invalid --notify-webhook-url"},
		{"slack url", nil, map[string]string{"SLACK_WEBHOOK_URL": "hooks.slack.com/services/secretkeymaterial"}, "invalid SLACK_WEBHOOK_URL"},
		{"negative stuck threshold", []string{"--notify-stuck-after=-1m"}, nil, "invalid --notify-stuck-after -1m0s"},
		{"grafana without token", []string{"--grafana-url=https://grafana.example.com"}, nil, "--grafana-url needs GRAFANA_TOKEN"},
		{"pprof addr from env", nil, map[string]string{"PPROF_ADDR": "6060"}, "--pprof-addr"},
		{"unknown flag", []string{"--nope"}, nil, "unknown flag: --nope"},
		{"app id", nil, map[string]string{"GITHUB_APP_ID": "abc"}, "GITHUB_APP_ID"},
		{"incomplete app", nil, map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\nsecretkeymaterial"}, "GITHUB_APP_INSTALLATION_ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := runArgs(t, tt.args, tt.env)
			if code != ExitUsage {
				t.Errorf("exit = %d, want %d; output:\n%s", code, ExitUsage, out)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("output %q does not name %q", out, tt.want)
			}
			if lines := strings.Count(strings.TrimSpace(out), "\n"); lines > 0 && tt.name != "incomplete app" {
				t.Errorf("error spans %d lines, want one: %q", lines+1, out)
			}
			if strings.Contains(out, "secretkeymaterial") {
				t.Errorf("output leaks the private key: %q", out)
			}
		})
	}
}

func TestEnvSetsFlagsAndFlagsWin(t *testing.T) {
	opts := DefaultOptions()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	opts.BindFlags(fs)
	if err := fs.Parse([]string{"--cluster-name=from-flag"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CLUSTER_NAME": "from-env", "WATCH_NAMESPACE": "apps", "TELEMETRY_MODE": "otlp", "TELEMETRY_INSECURE": "false", "GITHUB_TOKEN": "tok", "GITHUB_APP_INSTALLATION_ID": "7"}
	if err := opts.ApplyEnv(fs, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if opts.ClusterName != "from-flag" {
		t.Errorf("cluster name = %q, want the flag's value", opts.ClusterName)
	}
	if opts.WatchNamespace != "apps" || string(opts.Telemetry.Mode) != "otlp" || opts.Telemetry.Insecure {
		t.Errorf("env not applied: watch-namespace=%q mode=%q insecure=%v", opts.WatchNamespace, opts.Telemetry.Mode, opts.Telemetry.Insecure)
	}
	if opts.GitHubToken != "tok" || opts.GitHubAppInstallationID != 7 {
		t.Errorf("credentials not read: token set=%v installation=%d", opts.GitHubToken != "", opts.GitHubAppInstallationID)
	}
}

func TestNamespaceDefaults(t *testing.T) {
	opts := DefaultOptions()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	opts.BindFlags(fs)
	if err := opts.ApplyEnv(fs, func(k string) string { return map[string]string{"RUNTIME_NAMESPACE": "tracking"}[k] }); err != nil {
		t.Fatal(err)
	}
	if err := opts.Validate(); err != nil {
		t.Fatal(err)
	}
	if opts.Namespace != "tracking" {
		t.Errorf("namespace = %q, want RUNTIME_NAMESPACE's", opts.Namespace)
	}
	none := DefaultOptions()
	if err := none.Validate(); err != nil {
		t.Fatal(err)
	}
	if none.Namespace != defaultNamespace() || (defaultNamespace() != "flux-system" && !strings.Contains(inClusterNamespaceFile, "serviceaccount")) {
		t.Errorf("namespace = %q, want the in-cluster namespace or flux-system", none.Namespace)
	}
}
