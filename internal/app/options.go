package app

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
)

// inClusterNamespaceFile holds the pod's namespace when running in a cluster.
const inClusterNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// Options is the controller's configuration, from flags and their environment variables, grouped by concern;
// each group binds its flags, names their environment variables beside them and validates itself.
type Options struct {
	Telemetry telemetry.Config
	ProviderOptions
	KubeOptions
	WatchOptions
	TrackingOptions
	ServeOptions
	NotifyOptions
	FeedbackOptions
}

// KubeOptions say how the tracker reaches the Kubernetes API and where its ledger lives.
type KubeOptions struct {
	Kubeconfig   string
	KubeContext  string
	Namespace    string
	KubeAPIQPS   float32
	KubeAPIBurst int
}

var kubeEnvNames = map[string]string{
	"kubeconfig":     "KUBECONFIG",
	"kube-context":   "KUBE_CONTEXT",
	"namespace":      "RUNTIME_NAMESPACE",
	"kube-api-qps":   "KUBE_API_QPS",
	"kube-api-burst": "KUBE_API_BURST",
}

func (o *KubeOptions) bindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Path to a kubeconfig; empty uses the in-cluster service account or ~/.kube/config")
	fs.StringVar(&o.KubeContext, "kube-context", o.KubeContext, "Kubeconfig context to use (default: the current context)")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "Namespace of the tracker's ledger ConfigMaps and leader-election lease (default: the in-cluster namespace, else flux-system)")
	fs.Float32Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS, "Kubernetes API requests per second the tracker may make (ledger writes)")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst, "Kubernetes API request burst")
}

// validate checks the values and fills the namespace default.
func (o *KubeOptions) validate() []error {
	var errs []error
	if o.Namespace == "" {
		o.Namespace = defaultNamespace()
	}
	if msgs := validation.IsDNS1123Label(o.Namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("invalid --namespace %q: %s", o.Namespace, strings.Join(msgs, "; ")))
	}
	if o.KubeAPIQPS <= 0 || o.KubeAPIBurst < 1 {
		errs = append(errs, fmt.Errorf("invalid --kube-api-qps %v / --kube-api-burst %d: must be positive", o.KubeAPIQPS, o.KubeAPIBurst))
	}
	return errs
}

// WatchOptions say which Flux objects are watched and how many are processed at once.
type WatchOptions struct {
	WatchNamespace       string
	WatchLabelSelector   string
	EnableLeaderElection bool
	Concurrency          int
	Workers              int
}

var watchEnvNames = map[string]string{
	"watch-namespace":        "WATCH_NAMESPACE",
	"watch-label-selector":   "WATCH_LABEL_SELECTOR",
	"enable-leader-election": "ENABLE_LEADER_ELECTION",
	"concurrency":            "CONCURRENCY",
	"workers":                "WORKERS",
}

func (o *WatchOptions) bindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.WatchNamespace, "watch-namespace", o.WatchNamespace, "Only watch Flux objects in this namespace (default: all namespaces)")
	fs.StringVar(&o.WatchLabelSelector, "watch-label-selector", o.WatchLabelSelector, "Only watch Kustomizations and HelmReleases matching this label selector, e.g. team=payments")
	fs.BoolVar(&o.EnableLeaderElection, "enable-leader-election", o.EnableLeaderElection, "Elect a leader so that only one replica records")
	fs.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "Commit lookups (GitHub, git, OCI) in flight at once per kind of provider")
	fs.IntVar(&o.Workers, "workers", o.Workers, "Flux objects in flight at once per kind; most wait on a ledger write they share with others on the same shard")
}

func (o *WatchOptions) validate() []error {
	var errs []error
	if o.WatchNamespace != "" {
		if msgs := validation.IsDNS1123Label(o.WatchNamespace); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("invalid --watch-namespace %q: %s", o.WatchNamespace, strings.Join(msgs, "; ")))
		}
	}
	if _, err := labels.Parse(o.WatchLabelSelector); err != nil {
		errs = append(errs, fmt.Errorf("invalid --watch-label-selector: %w", err))
	}
	if o.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("invalid --concurrency %d: must be at least 1", o.Concurrency))
	}
	if o.Workers <= o.Concurrency {
		errs = append(errs, fmt.Errorf("invalid --workers %d: must be more than --concurrency (%d), so one worker stays free for objects on another provider", o.Workers, o.Concurrency))
	}
	return errs
}

// TrackingOptions say how commits are timed and which cluster they are recorded for.
type TrackingOptions struct {
	ClusterName      string
	CommitTime       string
	ExporterInfoPath string
	// ClockSkewTolerance is how far in the future a commit time may be before it is rejected as implausible.
	ClockSkewTolerance time.Duration
}

var trackingEnvNames = map[string]string{
	"cluster-name":         "CLUSTER_NAME",
	"commit-time":          "COMMIT_TIME",
	"exporter-info-path":   "EXPORTER_INFO_PATH",
	"clock-skew-tolerance": "CLOCK_SKEW_TOLERANCE",
}

func (o *TrackingOptions) bindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.ClusterName, "cluster-name", o.ClusterName, "Value of the k8s.cluster.name attribute on every metric, span and log")
	fs.StringVar(&o.CommitTime, "commit-time", o.CommitTime, "Which git time is a commit's time: committer or author")
	fs.StringVar(&o.ExporterInfoPath, "exporter-info-path", o.ExporterInfoPath, "Path of exporter-info.json in the manifests repository; empty disables upstream commits")
	fs.DurationVar(&o.ClockSkewTolerance, "clock-skew-tolerance", o.ClockSkewTolerance, "How far in the future a commit or upstream time may be before it is rejected as implausible (times before 2005 always are)")
}

func (o *TrackingOptions) validate() []error {
	var errs []error
	if o.ClockSkewTolerance < 0 {
		errs = append(errs, fmt.Errorf("invalid --clock-skew-tolerance %s: must not be negative", o.ClockSkewTolerance))
	}
	if o.CommitTime != string(commits.CommitterTime) && o.CommitTime != string(commits.AuthorTime) {
		errs = append(errs, fmt.Errorf("invalid --commit-time %q: must be committer or author", o.CommitTime))
	}
	return errs
}

// ServeOptions are the tracker's own endpoints and what /metrics serves.
type ServeOptions struct {
	MetricsAddr string
	HealthAddr  string
	PprofAddr   string
	// FluxResourceMetrics serves gotk_resource_info for every Flux object, as Flux's kube-state-metrics
	// configuration does.
	FluxResourceMetrics bool
}

var serveEnvNames = map[string]string{
	"metrics-addr":          "METRICS_ADDR",
	"health-addr":           "HEALTH_ADDR",
	"pprof-addr":            "PPROF_ADDR",
	"flux-resource-metrics": "FLUX_RESOURCE_METRICS",
}

func (o *ServeOptions) bindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.MetricsAddr, "metrics-addr", o.MetricsAddr, "Address of the Prometheus /metrics endpoint")
	fs.BoolVar(&o.FluxResourceMetrics, "flux-resource-metrics", o.FluxResourceMetrics, "Serve gotk_resource_info on /metrics for every Flux object (readiness, suspension, revision, source), replacing kube-state-metrics' Flux configuration; needs get/list/watch on the Flux kinds")
	fs.StringVar(&o.HealthAddr, "health-addr", o.HealthAddr, "Address of the /healthz and /readyz endpoints")
	fs.StringVar(&o.PprofAddr, "pprof-addr", o.PprofAddr, "Address of the Go profiling endpoints (/debug/pprof); empty: off. Profiles show object names: keep it private")
}

func (o *ServeOptions) validate() []error {
	var errs []error
	for _, a := range []struct {
		flag, addr string
		optional   bool
	}{{"metrics-addr", o.MetricsAddr, false}, {"health-addr", o.HealthAddr, false}, {"pprof-addr", o.PprofAddr, true}} {
		if a.addr == "" && a.optional {
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("invalid --%s %q: %w", a.flag, a.addr, err))
		}
	}
	return errs
}

// NotifyOptions say where notices go; each is delivered from the ledger's outbox.
type NotifyOptions struct {
	// NotifyWebhookURL receives a signed landed notice per recorded apply; empty: off.
	NotifyWebhookURL string
	// NotifyWebhookSecret keys the notices' HMAC-SHA256 signature; from the environment only.
	NotifyWebhookSecret []byte
	// SlackWebhookURL and TeamsWebhookURL get a message per recorded apply; from the environment only, as the
	// URL is the credential.
	SlackWebhookURL, TeamsWebhookURL string
	// GrafanaURL gets a region annotation per landed commit; GrafanaToken (environment only) is its Bearer token.
	GrafanaURL, GrafanaDashboardUID, GrafanaToken string
	// NotifyStuckAfter is how long an object may wait on or fail on a fetched revision before the webhook, Slack
	// and Teams get a stuck notice (and later a recovered one); zero: none.
	NotifyStuckAfter time.Duration
}

var notifyEnvNames = map[string]string{
	"notify-webhook-url":    "NOTIFY_WEBHOOK_URL",
	"grafana-url":           "GRAFANA_URL",
	"grafana-dashboard-uid": "GRAFANA_DASHBOARD_UID",
	"notify-stuck-after":    "NOTIFY_STUCK_AFTER",
}

func (o *NotifyOptions) bindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.GrafanaURL, "grafana-url", o.GrafanaURL, "Grafana base URL: one region annotation per landed commit per cluster, from its commit to its last apply (token from GRAFANA_TOKEN); empty: off")
	fs.StringVar(&o.GrafanaDashboardUID, "grafana-dashboard-uid", o.GrafanaDashboardUID, "Pin the Grafana annotations to this dashboard; empty: organisation-wide")
	fs.StringVar(&o.NotifyWebhookURL, "notify-webhook-url", o.NotifyWebhookURL, "POST a signed JSON notice of every recorded apply here (delivered from the ledger's outbox, retried while it is down); the HMAC key comes from NOTIFY_WEBHOOK_SECRET; empty: off")
	fs.DurationVar(&o.NotifyStuckAfter, "notify-stuck-after", o.NotifyStuckAfter, "Send the webhook, Slack and Teams a stuck notice, once, for an object that has not applied (or fails on) what its source fetched for this long, and a recovered one once it applies; shorter failures send nothing; 0: off")
}

func (o *NotifyOptions) validate() []error {
	var errs []error
	// The URL is often the credential itself: an error names where it came from, never the value.
	for _, u := range []struct{ from, url string }{
		{"--notify-webhook-url", o.NotifyWebhookURL}, {"SLACK_WEBHOOK_URL", o.SlackWebhookURL}, {"TEAMS_WEBHOOK_URL", o.TeamsWebhookURL},
		{"--grafana-url", o.GrafanaURL},
	} {
		if u.url == "" {
			continue
		}
		if p, err := url.Parse(u.url); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			errs = append(errs, fmt.Errorf("invalid %s: must be an http(s) URL", u.from))
		}
	}
	if o.NotifyStuckAfter < 0 {
		errs = append(errs, fmt.Errorf("invalid --notify-stuck-after %s: must not be negative", o.NotifyStuckAfter))
	}
	if o.GrafanaURL != "" && o.GrafanaToken == "" {
		errs = append(errs, errors.New("--grafana-url needs GRAFANA_TOKEN (a service account token with annotations:write)"))
	}
	return errs
}

// envNames maps each flag to the environment variable that sets it when the flag is not given.
var envNames = withEnvNames(telemetry.EnvNames, providerEnvNames, kubeEnvNames, watchEnvNames, trackingEnvNames, serveEnvNames, notifyEnvNames, feedbackEnvNames)

// withEnvNames merges flag → environment variable maps.
func withEnvNames(groups ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, g := range groups {
		maps.Copy(out, g)
	}
	return out
}

// DefaultOptions returns the defaults shown in --help.
func DefaultOptions() Options {
	return Options{
		Telemetry:       telemetry.DefaultConfig(),
		ProviderOptions: DefaultProviderOptions(),
		KubeOptions:     KubeOptions{KubeAPIQPS: 50, KubeAPIBurst: 100},
		WatchOptions:    WatchOptions{Concurrency: 4, Workers: 256},
		TrackingOptions: TrackingOptions{CommitTime: string(commits.CommitterTime), ExporterInfoPath: "exporter-info.json", ClockSkewTolerance: 5 * time.Minute},
		ServeOptions:    ServeOptions{MetricsAddr: ":8888", HealthAddr: ":9440", FluxResourceMetrics: true},
		NotifyOptions:   NotifyOptions{NotifyStuckAfter: 15 * time.Minute},
		FeedbackOptions: defaultFeedbackOptions(),
	}
}

// BindFlags registers every flag; each help text names the environment variable that also sets it.
func (o *Options) BindFlags(fs *pflag.FlagSet) {
	o.Telemetry.BindFlags(fs)
	o.ProviderOptions.BindFlags(fs)
	o.KubeOptions.bindFlags(fs)
	o.WatchOptions.bindFlags(fs)
	o.TrackingOptions.bindFlags(fs)
	o.ServeOptions.bindFlags(fs)
	o.NotifyOptions.bindFlags(fs)
	o.FeedbackOptions.bindFlags(fs)
	fs.VisitAll(func(f *pflag.Flag) {
		if env, ok := envNames[f.Name]; ok {
			f.Usage += " [env " + env + "]"
		}
	})
}

// ApplyEnv sets every flag not given on the command line from its environment variable, and reads the
// GitHub credentials.
func (o *Options) ApplyEnv(fs *pflag.FlagSet, getenv func(string) string) error {
	errs := applyFlagEnv(fs, getenv)
	errs = append(errs, o.applyCredentials(getenv)...)
	o.NotifyWebhookSecret = []byte(getenv("NOTIFY_WEBHOOK_SECRET"))
	o.SlackWebhookURL, o.TeamsWebhookURL = getenv("SLACK_WEBHOOK_URL"), getenv("TEAMS_WEBHOOK_URL")
	o.GrafanaToken = getenv("GRAFANA_TOKEN")
	o.readTokens(getenv)
	return errors.Join(errs...)
}

// applyFlagEnv sets each flag of fs not given on the command line from its environment variable, if set.
func applyFlagEnv(fs *pflag.FlagSet, getenv func(string) string) []error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		env, ok := envNames[f.Name]
		if !ok || f.Changed {
			return
		}
		if v := getenv(env); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("invalid value %q for --%s (from %s): %w", v, f.Name, env, err))
			}
		}
	})
	return errs
}

// Validate checks every value and fills the namespace default; errors name the flag.
func (o *Options) Validate() error {
	var errs []error
	if err := o.Telemetry.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--telemetry-mode/--log-level: %w", err))
	}
	errs = append(errs, o.ProviderOptions.validate()...)
	errs = append(errs, o.KubeOptions.validate()...)
	errs = append(errs, o.WatchOptions.validate()...)
	errs = append(errs, o.TrackingOptions.validate()...)
	errs = append(errs, o.ServeOptions.validate()...)
	errs = append(errs, o.NotifyOptions.validate()...)
	errs = append(errs, o.FeedbackOptions.validate(o.ProviderOptions)...)
	return errors.Join(errs...)
}

// defaultNamespace is the in-cluster namespace, else flux-system.
func defaultNamespace() string {
	if b, err := os.ReadFile(inClusterNamespaceFile); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns
		}
	}
	return "flux-system"
}
