package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/git"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/controller"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/feedback"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/fluxstate"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/kubecache"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/notify"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/outbox"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/redact"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// runController runs the tracker controller until ctx ends.
func runController(ctx context.Context, opts Options, deps Deps) (err error) {
	tcfg := opts.Telemetry
	tcfg.ServiceVersion, tcfg.ClusterName = deps.Version, opts.ClusterName
	tcfg.Stdout, tcfg.IsTerminal = deps.Stdout, deps.IsTerminal
	tel, err := telemetry.Setup(ctx, tcfg)
	if err != nil {
		return usageError{fmt.Errorf("telemetry: %w", err)}
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		// A collector that is down must not turn a clean stop into a failed exit: what could not be flushed is
		// said, once.
		if serr := tel.Shutdown(sctx); serr != nil {
			_, _ = fmt.Fprintf(deps.Stderr, "flux-commit-tracker: telemetry not flushed on shutdown: %v\n", redact.Error(serr))
		}
	}()
	log := tel.Logger
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))

	metrics, err := telemetry.NewMetrics(tel.MeterProvider)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	providers, err := BuildProviders(ctx, opts.ProviderOptions, ProviderHooks{Metrics: metrics, TracerProvider: tel.TracerProvider, Logger: log})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, providers.Close()) }()

	restCfg, err := restConfig(opts)
	if err != nil {
		return usageError{err}
	}
	mgr, helmAPIs, err := newManager(restCfg, opts)
	if err != nil {
		return err
	}
	if helmAPIs.Enabled() {
		// A ClusterRole from before HelmRelease support must not stop the tracker.
		var readErr error
		if helmAPIs, readErr = helmAPIs.Readable(ctx, mgr.GetAPIReader(), opts.WatchNamespace); readErr != nil {
			log.WarnContext(ctx, "cannot list some HelmRelease-related kinds, not tracked: grant get/list/watch on them (config/deploy/rbac.yaml)", "error", readErr)
		}
	}
	led, err := ledger.NewConfigMaps(ledger.ConfigMapsOptions{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Namespace: opts.Namespace,
		Timeout: opts.CallTimeout,
		OnBadEntry: func(ctx context.Context, shard, key string, err error) {
			metrics.AddError(ctx, telemetry.ReasonLedgerBadEntry, telemetry.ObjectAttributes{Cluster: opts.ClusterName})
			log.WarnContext(ctx, "ledger key skipped: it does not decode (its object starts a new baseline)", "configmap", shard, "key", key, "error", err)
		},
		OnOverflow: func(ctx context.Context, it ledger.Item) {
			metrics.AddDelivery(ctx, it.Sink, outbox.ResultOverflow, 0)
			log.WarnContext(ctx, "notice dropped: its ledger shard holds the most notices waiting; is the destination down?", "sink", it.Sink, "notice", it.ID)
		}})
	if err != nil {
		return err
	}
	if opts.GitReadSourceSecrets {
		providers.Sources.Secrets = secretReader(mgr.GetAPIReader(), opts.CallTimeout)
	}
	notifiers, senders := notifySinks(opts)
	syncer, err := newFeedback(ctx, opts, providers, metrics, log)
	if err != nil {
		return err
	}
	var rollouts tracker.RolloutObserver
	if syncer != nil {
		notifiers, senders[outbox.SinkForge], rollouts = append(notifiers, feedback.Notifier{}), syncer, syncer
	}
	trk, err := tracker.New(tracker.Options{
		Ledger:           led,
		Artifacts:        providers.OCI,
		Providers:        providers.Sources.For,
		Recorder:         metrics,
		Sinks:            deps.Sinks,
		Notifiers:        notifiers,
		Rollouts:         rollouts,
		StuckAfter:       opts.NotifyStuckAfter,
		Tracer:           tel.TracerProvider.Tracer(telemetry.ScopeName),
		Logger:           log,
		Clock:            clock.RealClock{},
		ClusterName:      opts.ClusterName,
		CommitTime:       commits.TimeSource(opts.CommitTime),
		ExporterInfoPath: opts.ExporterInfoPath,
		// Validation keeps --workers above --concurrency: a worker always stays free for another kind of provider.
		ProviderSlots: opts.Concurrency,
		// Half the workers at most look up or wait on one kind of provider: the other half serve the other kinds.
		ProviderWaiters:    max(0, opts.Workers/2-opts.Concurrency),
		ClockSkewTolerance: opts.ClockSkewTolerance,
	})
	if err != nil {
		return err
	}

	if _, err := metrics.ObserveRollouts(trk.Rollouts, time.Now); err != nil {
		return err
	}

	// The ledger loads once this replica leads, before any reconcile; readiness waits for it.
	loaded := make(chan struct{})
	var ledgerLoaded atomic.Bool
	keeper := &ledgerKeeper{mgr: mgr, led: led, trk: trk, git: providers.Git, log: log, namespace: opts.Namespace,
		helmReleases: helmAPIs.Enabled(), loaded: loaded, ledgerLoaded: &ledgerLoaded}
	if err := mgr.Add(manager.RunnableFunc(keeper.run)); err != nil {
		return fmt.Errorf("add ledger loader: %w", err)
	}
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		return deliverNotices(ctx, loaded, led, senders, metrics, opts.CallTimeout, log)
	})); err != nil {
		return fmt.Errorf("add outbox deliverer: %w", err)
	}
	if syncer != nil {
		// Statuses are posted by the replica that leads, once the ledger is loaded and the objects are seen.
		if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
			select {
			case <-loaded:
			case <-ctx.Done():
				return nil
			}
			return syncer.Run(ctx)
		})); err != nil {
			return fmt.Errorf("add commit status syncer: %w", err)
		}
	}
	rec := &controller.KustomizationReconciler{Client: mgr.GetClient(), Processor: trk, Logger: log, Ready: loaded, Workers: opts.Workers}
	if err := rec.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("set up Kustomization controller: %w", err)
	}
	if helmAPIs.Enabled() {
		hrRec := &controller.HelmReleaseReconciler{Client: mgr.GetClient(), Processor: trk, Logger: log, Ready: loaded,
			Workers: opts.Workers, OCI: helmAPIs.OCIRepository,
			Recorded: func(uid string) string { e, _ := led.Get(uid); return e.Revision }}
		if err := hrRec.SetupWithManager(ctx, mgr); err != nil {
			return fmt.Errorf("set up HelmRelease controller: %w", err)
		}
	} else {
		log.InfoContext(ctx, "HelmReleases not tracked: the cluster serves no helm.toolkit.fluxcd.io/v2 HelmRelease or source.toolkit.fluxcd.io/v1 HelmChart")
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("add healthz: %w", err)
	}
	if err := mgr.AddReadyzCheck("ready", readiness(mgr, opts.EnableLeaderElection, &ledgerLoaded)); err != nil {
		return fmt.Errorf("add readyz: %w", err)
	}
	gatherer := tel.Gatherer
	if opts.FluxResourceMetrics {
		if gatherer, err = fluxResourceMetrics(mgr, restCfg, opts, log, gatherer); err != nil {
			return err
		}
	}
	if err := mgr.Add(metricsServer(opts.MetricsAddr, gatherer, log)); err != nil {
		return fmt.Errorf("add metrics server: %w", err)
	}

	log.InfoContext(ctx, "starting flux-commit-tracker", "version", deps.Version, "cluster", opts.ClusterName,
		"namespace", opts.Namespace, "watch_namespace", opts.WatchNamespace, "watch_label_selector", opts.WatchLabelSelector,
		"github_api_url", opts.GitHubAPIURL, "git_cache_dir", opts.GitCacheDir, "github_auth", providers.GitHubAuth, "telemetry_mode", string(opts.Telemetry.Mode),
		"metrics_addr", opts.MetricsAddr, "health_addr", opts.HealthAddr, "leader_election", opts.EnableLeaderElection)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("controller manager: %w", err)
	}
	log.InfoContext(ctx, "stopped")
	return nil
}

// restConfig loads the kubeconfig (flag, KUBECONFIG, ~/.kube/config) or the in-cluster service account.
func restConfig(opts Options) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if opts.Kubeconfig != "" {
		rules.ExplicitPath = opts.Kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: opts.KubeContext}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig (--kubeconfig/--kube-context): %w", err)
	}
	cfg.UserAgent = programName
	cfg.QPS, cfg.Burst = opts.KubeAPIQPS, opts.KubeAPIBurst
	return cfg, nil
}

// Scheme holds the kinds the tracker reads.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, kustomizev1.AddToScheme, sourcev1.AddToScheme, helmv2.AddToScheme} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("build scheme: %w", err)
		}
	}
	return s, nil
}

// newManager builds the controller manager and reports which HelmRelease-related kinds the cluster serves.
func newManager(cfg *rest.Config, opts Options) (ctrl.Manager, controller.HelmAPIs, error) {
	var none controller.HelmAPIs
	scheme, err := Scheme()
	if err != nil {
		return nil, none, err
	}
	kustomizations := cache.ByObject{Transform: stripKustomization}
	helmReleases := cache.ByObject{Transform: stripHelmRelease}
	if opts.WatchLabelSelector != "" {
		sel, err := labels.Parse(opts.WatchLabelSelector)
		if err != nil {
			return nil, none, usageError{fmt.Errorf("invalid --watch-label-selector: %w", err)}
		}
		kustomizations.Label, helmReleases.Label = sel, sel
	}
	// The cache needs the kinds it is configured for to exist: HelmReleases only when helm-controller is installed.
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, none, fmt.Errorf("HTTP client for the API server: %w", err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, none, fmt.Errorf("REST mapper: %w", err)
	}
	helmAPIs, err := controller.DiscoverHelmAPIs(mapper)
	if err != nil {
		return nil, none, err
	}
	byObject := map[client.Object]cache.ByObject{&kustomizev1.Kustomization{}: kustomizations,
		&sourcev1.GitRepository{}: {Transform: stripSource}, &sourcev1.OCIRepository{}: {Transform: stripSource}}
	if helmAPIs.Enabled() {
		byObject[&helmv2.HelmRelease{}] = helmReleases
	}
	cacheOpts := cache.Options{
		NewInformer:      kubecache.NewInformer, // back within seconds of an apiserver outage
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject:         byObject,
	}
	if opts.WatchNamespace != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{opts.WatchNamespace: {}}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		MapperProvider:                func(*rest.Config, *http.Client) (apimeta.RESTMapper, error) { return mapper, nil },
		Cache:                         cacheOpts,
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        opts.HealthAddr,
		PprofBindAddress:              opts.PprofAddr,
		LeaderElection:                opts.EnableLeaderElection,
		LeaderElectionID:              "flux-commit-tracker",
		LeaderElectionNamespace:       opts.Namespace,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return nil, none, fmt.Errorf("controller manager: %w", err)
	}
	return mgr, helmAPIs, nil
}

// stripKustomization drops managedFields and the inventory, the largest parts of a cached Kustomization.
func stripKustomization(o any) (any, error) {
	if k, ok := o.(*kustomizev1.Kustomization); ok {
		k.ManagedFields = nil
		k.Status.Inventory = nil
		k.Status.Conditions = readyOnly(k.Status.Conditions)
		// What it builds and substitutes is not read; its source, wait and health checks are.
		k.Spec.Patches, k.Spec.PostBuild, k.Spec.Images, k.Spec.Components, k.Spec.CommonMetadata = nil, nil, nil, nil, nil
	}
	return o, nil
}

// stripSource keeps of a cached GitRepository or OCIRepository what the tracker reads: its URL, reference,
// secretRef, annotations and artifact.
func stripSource(o any) (any, error) {
	switch s := o.(type) {
	case *sourcev1.GitRepository:
		s.ManagedFields = nil
		s.Spec.Ignore, s.Spec.Include, s.Spec.Verification = nil, nil, nil
		s.Status.Conditions, s.Status.IncludedArtifacts, s.Status.ObservedIgnore, s.Status.ObservedInclude = nil, nil, nil, nil
	case *sourcev1.OCIRepository:
		s.ManagedFields = nil
		s.Spec.Ignore, s.Spec.Verify = nil, nil
		s.Status.Conditions, s.Status.ObservedIgnore = nil, nil
	}
	return o, nil
}

// readyOnly keeps the Ready condition, the only one the tracker reads.
func readyOnly(conditions []metav1.Condition) []metav1.Condition {
	for _, c := range conditions {
		if c.Type == meta.ReadyCondition {
			return []metav1.Condition{c}
		}
	}
	return nil
}

// stripHelmRelease drops managedFields, the inventory and the values, the largest parts of a cached HelmRelease.
func stripHelmRelease(o any) (any, error) {
	if hr, ok := o.(*helmv2.HelmRelease); ok {
		hr.ManagedFields = nil
		hr.Status.Inventory = nil
		hr.Spec.Values = nil
	}
	return o, nil
}

// ledgerKeeper loads the ledger once this replica leads, then prunes entries of deleted objects and git
// mirrors nobody reads, until the manager stops.
type ledgerKeeper struct {
	mgr          ctrl.Manager
	led          *ledger.ConfigMaps
	trk          *tracker.Tracker
	git          *git.Provider
	log          *slog.Logger
	namespace    string
	helmReleases bool
	loaded       chan struct{}
	ledgerLoaded *atomic.Bool
}

func (k *ledgerKeeper) run(ctx context.Context) error {
	if !k.mgr.GetCache().WaitForCacheSync(ctx) {
		return errors.New("cache did not sync")
	}
	if err := loadLedger(ctx, k.led, k.log, k.namespace); err != nil {
		return err
	}
	k.prune(ctx)
	k.ledgerLoaded.Store(true)
	close(k.loaded)
	k.log.InfoContext(ctx, "ledger loaded", "namespace", k.namespace, "entries", k.led.Len())
	// Objects deleted and recreated under one name while their events were coalesced leave an entry behind.
	ticker := time.NewTicker(pruneInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			k.prune(ctx)
			if err := k.git.RemoveIdle(mirrorIdle); err != nil {
				k.log.WarnContext(ctx, "could not remove unused git mirrors", "error", err)
			}
		}
	}
}

func (k *ledgerKeeper) prune(ctx context.Context) {
	if err := k.trk.Prune(ctx, objectExists(ctx, k.mgr.GetClient(), k.helmReleases)); err != nil {
		k.log.WarnContext(ctx, "could not prune ledger entries of deleted objects", "error", err)
	}
}

// pruneInterval is how often ledger entries of deleted objects, and git mirrors nobody read, are looked for.
const pruneInterval = 10 * time.Minute

// mirrorIdle is how long a git mirror may go unread before it is removed from the cache.
const mirrorIdle = 24 * time.Hour

// loadLedger reads the ledger, retrying with backoff while the apiserver cannot answer; only ctx ends it.
func loadLedger(ctx context.Context, led *ledger.ConfigMaps, log *slog.Logger, namespace string) error {
	wait := time.Second
	for {
		err := led.Load(ctx)
		if err == nil {
			return nil
		}
		log.WarnContext(ctx, "ledger not loaded yet: retrying", "namespace", namespace, "retry_in", wait.String(), "error", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("load ledger from namespace %s: %w", namespace, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// objectExists reports whether a ledger entry's object is still in the cache under the entry's UID.
func objectExists(ctx context.Context, c client.Client, helmReleases bool) func(string, ledger.Entry) (bool, error) {
	return func(uid string, e ledger.Entry) (bool, error) {
		var obj client.Object
		switch e.Kind {
		case kustomizev1.KustomizationKind:
			obj = &kustomizev1.Kustomization{}
		case helmv2.HelmReleaseKind:
			if !helmReleases {
				return true, nil // not watched: cannot be checked
			}
			obj = &helmv2.HelmRelease{}
		default:
			return true, nil
		}
		err := c.Get(ctx, client.ObjectKey{Namespace: e.Namespace, Name: e.Name}, obj)
		if err == nil {
			return string(obj.GetUID()) == uid, nil
		}
		if client.IgnoreNotFound(err) == nil {
			return false, nil
		}
		// Objects outside the watched namespace cannot be checked; keep them.
		return true, nil
	}
}

// readiness is ready once the caches synced and, on the leader, the ledger loaded.
func readiness(mgr ctrl.Manager, leaderElection bool, loaded *atomic.Bool) healthz.Checker {
	return func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return errors.New("caches not synced")
		}
		if loaded.Load() {
			return nil
		}
		if leaderElection {
			select {
			case <-mgr.Elected():
			default:
				return nil // a standby replica has nothing to load
			}
		}
		return errors.New("ledger not loaded")
	}
}

// metricsServer serves the tracker's metrics and controller-runtime's on every replica.
func metricsServer(addr string, trackerMetrics prometheus.Gatherer, log *slog.Logger) manager.Runnable {
	gatherers := prometheus.Gatherers{crmetrics.Registry, trackerMetrics}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return nonLeader{manager.RunnableFunc(func(ctx context.Context) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on --metrics-addr %s: %w", addr, err)
		}
		log.InfoContext(ctx, "serving Prometheus metrics", "address", ln.Addr().String(), "path", "/metrics")
		go func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("metrics server: %w", err)
		}
		return nil
	})}
}

// fluxResourceMetrics adds gotk_resource_info to what /metrics gathers, watched on every replica: it is state,
// not events, so each replica serves the same.
func fluxResourceMetrics(mgr ctrl.Manager, cfg *rest.Config, opts Options, log *slog.Logger, gatherer prometheus.Gatherer) (prometheus.Gatherer, error) {
	state, err := fluxstate.New(fluxstate.Options{Config: cfg, Namespace: opts.WatchNamespace, CallTimeout: opts.CallTimeout, Logger: log})
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(state); err != nil {
		return nil, fmt.Errorf("register Flux resource metrics: %w", err)
	}
	if err := mgr.Add(state); err != nil {
		return nil, fmt.Errorf("add Flux resource metrics: %w", err)
	}
	return prometheus.Gatherers{gatherer, reg}, nil
}

// nonLeader runs on every replica, leader or not.
type nonLeader struct{ manager.Runnable }

func (nonLeader) NeedLeaderElection() bool { return false }

// secretReader reads Secrets uncached, one get each within timeout: the tracker needs no list or watch on Secrets.
func secretReader(r client.Reader, timeout time.Duration) tracker.SecretReader {
	return func(ctx context.Context, namespace, name string) (map[string][]byte, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		var s corev1.Secret
		if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s); err != nil {
			return nil, err
		}
		return s.Data, nil
	}
}

// notifySinks are the configured sinks that deliver notices from the outbox: as the tracker's notifiers, and by
// sink name for the deliverer.
func notifySinks(opts Options) ([]tracker.Notifier, map[string]outbox.Sender) {
	senders := map[string]outbox.Sender{}
	var notifiers []tracker.Notifier
	for _, hook := range []*notify.Webhook{
		{Kind: notify.KindWebhook, URL: opts.NotifyWebhookURL, Secret: opts.NotifyWebhookSecret},
		{Kind: notify.KindSlack, URL: opts.SlackWebhookURL},
		{Kind: notify.KindTeams, URL: opts.TeamsWebhookURL},
	} {
		if hook.URL != "" {
			hook.Client = &http.Client{Timeout: opts.CallTimeout}
			notifiers, senders[hook.Name()] = append(notifiers, hook), hook
		}
	}
	if opts.GrafanaURL != "" {
		g := &notify.Grafana{URL: opts.GrafanaURL, Token: opts.GrafanaToken, DashboardUID: opts.GrafanaDashboardUID,
			Client: &http.Client{Timeout: opts.CallTimeout}}
		notifiers, senders[g.Name()] = append(notifiers, g), g
	}
	return notifiers, senders
}

// deliverNotices sends the outbox's notices while this replica leads, once the ledger is loaded. It runs with no
// sink configured too, so that notices queued under an earlier configuration are dropped and counted.
func deliverNotices(ctx context.Context, loaded <-chan struct{}, led ledger.Outbox, senders map[string]outbox.Sender,
	metrics *telemetry.Metrics, timeout time.Duration, log *slog.Logger) error {
	select {
	case <-loaded:
	case <-ctx.Done():
		return nil
	}
	if _, err := metrics.ObserveOutbox(func() map[string]int {
		depth := map[string]int{}
		for _, it := range led.Pending() {
			depth[it.Sink]++
		}
		return depth
	}); err != nil {
		return err
	}
	d := &outbox.Deliverer{Outbox: led, Senders: senders, Logger: log.With("component", "outbox"), Timeout: timeout,
		OnResult: metrics.AddDelivery}
	return d.Run(ctx)
}
