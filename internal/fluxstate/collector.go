package fluxstate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/kubecache"
)

// Options configure a Collector.
type Options struct {
	// Config reaches the Kubernetes API.
	Config *rest.Config
	// Namespace limits the watched objects to one namespace; empty: all.
	Namespace string
	// Kinds are the reported kinds; nil: Kinds.
	Kinds []Kind
	// Recheck is how often kinds that are not reported (not served, not readable) are looked for again, and
	// reported ones checked to be still served; zero: a minute.
	Recheck time.Duration
	// CallTimeout bounds each discovery and access check; zero: 30 s.
	CallTimeout time.Duration
	Logger      *slog.Logger
}

// Collector reports every object of the served and readable Flux kinds as MetricName. It is a
// prometheus.Collector, and a manager.Runnable that watches the kinds on every replica.
type Collector struct {
	kinds     []*kind
	namespace string
	recheck   time.Duration
	timeout   time.Duration
	log       *slog.Logger
	discovery discovery.DiscoveryInterface
	dynamic   dynamic.Interface
	desc      *prometheus.Desc

	mu      sync.Mutex
	watches map[*kind]*kindWatch
	// skipped holds why each kind is not reported, so that a reason is logged once, not at every recheck.
	skipped map[*kind]string
}

// kindWatch is the cache of one kind.
type kindWatch struct {
	kind   *kind
	store  toolscache.Store
	synced func() bool
	cancel context.CancelFunc
	done   chan struct{}
	// forbidden is set when the watch was refused: access was revoked after the kind was found readable.
	forbidden atomic.Bool
}

// New builds a Collector; nothing is watched before Start.
func New(opts Options) (*Collector, error) {
	if opts.Config == nil {
		return nil, errors.New("flux resource metrics: no Kubernetes config")
	}
	if opts.Kinds == nil {
		opts.Kinds = Kinds
	}
	c := &Collector{namespace: opts.Namespace, recheck: opts.Recheck, timeout: opts.CallTimeout, log: opts.Logger,
		desc:    prometheus.NewDesc(MetricName, metricHelp, nil, nil),
		watches: map[*kind]*kindWatch{}, skipped: map[*kind]string{}}
	if c.recheck <= 0 {
		c.recheck = time.Minute
	}
	if c.timeout <= 0 {
		c.timeout = 30 * time.Second
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	seen := map[schema.GroupVersionKind]bool{}
	for _, k := range opts.Kinds {
		ck, err := compile(k)
		if err != nil {
			return nil, fmt.Errorf("flux resource metrics: %w", err)
		}
		if seen[k.GroupVersionKind()] {
			return nil, fmt.Errorf("flux resource metrics: kind %s listed twice", k.GroupVersionKind())
		}
		seen[k.GroupVersionKind()] = true
		c.kinds = append(c.kinds, ck)
	}
	// Discovery and access checks are short calls; watches are long, so only they go without a client timeout.
	short := rest.CopyConfig(opts.Config)
	short.Timeout = c.timeout
	var err error
	if c.discovery, err = discovery.NewDiscoveryClientForConfig(short); err != nil {
		return nil, fmt.Errorf("flux resource metrics: discovery client: %w", err)
	}
	if c.dynamic, err = dynamic.NewForConfig(rest.CopyConfig(opts.Config)); err != nil {
		return nil, fmt.Errorf("flux resource metrics: dynamic client: %w", err)
	}
	return c, nil
}

// NeedLeaderElection is false: every replica serves the state it sees.
func (*Collector) NeedLeaderElection() bool { return false }

// Start watches the kinds that are served and readable, looks again every Recheck for the others, and stops
// every watch when ctx ends.
func (c *Collector) Start(ctx context.Context) error {
	defer c.stopAll()
	t := time.NewTicker(c.recheck)
	defer t.Stop()
	for {
		c.sync(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// sync starts the watch of each kind that became served and readable, and stops that of each kind no longer
// served or readable.
func (c *Collector) sync(ctx context.Context) {
	byGroupVersion := map[schema.GroupVersion][]*kind{}
	var order []schema.GroupVersion
	for _, k := range c.kinds {
		gv := k.GroupVersionKind().GroupVersion()
		if _, ok := byGroupVersion[gv]; !ok {
			order = append(order, gv)
		}
		byGroupVersion[gv] = append(byGroupVersion[gv], k)
	}
	for _, gv := range order {
		if ctx.Err() != nil {
			return
		}
		resources, err := c.discovery.ServerResourcesForGroupVersion(gv.String())
		if err != nil && !apierrors.IsNotFound(err) {
			// Keep what runs: an apiserver that cannot answer now says nothing about the kinds.
			for _, k := range byGroupVersion[gv] {
				if !c.watching(k) {
					c.skip(ctx, k, "the API server did not say whether it serves it", err)
				}
			}
			continue
		}
		for _, k := range byGroupVersion[gv] {
			c.syncKind(ctx, k, resourceOf(resources, k.Kind.Kind))
		}
	}
}

// syncKind starts or stops the watch of k, served as resource (empty: not served).
func (c *Collector) syncKind(ctx context.Context, k *kind, resource string) {
	c.mu.Lock()
	w := c.watches[k]
	c.mu.Unlock()
	const forbidden = "access is forbidden: grant get, list and watch on it (config/deploy/rbac.yaml)"
	switch {
	case resource == "" && w != nil:
		c.stop(k)
		c.skip(ctx, k, "the cluster no longer serves it", nil)
	case resource == "":
		c.skip(ctx, k, "the cluster does not serve it (is its Flux controller installed?)", nil)
	case w != nil && w.forbidden.Load():
		c.stop(k)
		c.skip(ctx, k, forbidden, nil)
	case w == nil:
		gvr := k.GroupVersionKind().GroupVersion().WithResource(resource)
		if err := c.readable(ctx, gvr); err != nil {
			if apierrors.IsForbidden(err) {
				c.skip(ctx, k, forbidden, err)
			} else {
				c.skip(ctx, k, "it could not be listed", err)
			}
			return
		}
		c.watch(ctx, k, gvr)
	}
}

// resourceOf is the resource that serves kind in list; empty when none does.
func resourceOf(list *metav1.APIResourceList, kind string) string {
	if list == nil {
		return ""
	}
	for _, r := range list.APIResources {
		if r.Kind == kind && !strings.Contains(r.Name, "/") {
			return r.Name
		}
	}
	return ""
}

// watching reports whether k is being watched.
func (c *Collector) watching(k *kind) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.watches[k] != nil
}

// resource is the dynamic client of gvr in the watched namespace.
func (c *Collector) resource(gvr schema.GroupVersionResource) dynamic.ResourceInterface {
	if c.namespace == "" {
		return c.dynamic.Resource(gvr)
	}
	return c.dynamic.Resource(gvr).Namespace(c.namespace)
}

// readable lists one object of gvr, as the watch will.
func (c *Collector) readable(ctx context.Context, gvr schema.GroupVersionResource) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	_, err := c.resource(gvr).List(ctx, metav1.ListOptions{Limit: 1})
	return err
}

// skip logs once why k is not reported; err adds the cause.
func (c *Collector) skip(ctx context.Context, k *kind, why string, err error) {
	c.mu.Lock()
	repeated := c.skipped[k] == why
	c.skipped[k] = why
	c.mu.Unlock()
	if repeated {
		return
	}
	attrs := []any{"kind", k.Kind.Kind, "api_version", k.GroupVersionKind().GroupVersion().String(), "reason", why}
	if err != nil {
		attrs = append(attrs, "error", err)
	}
	c.log.WarnContext(ctx, "Flux kind not reported in "+MetricName, attrs...)
}

// watch starts the cache of k, served as gvr.
func (c *Collector) watch(ctx context.Context, k *kind, gvr schema.GroupVersionResource) {
	ri := c.resource(gvr)
	lw := &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return ri.List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return ri.Watch(ctx, opts)
		},
	}
	example := &unstructured.Unstructured{}
	example.SetGroupVersionKind(k.GroupVersionKind())
	inf := kubecache.NewInformer(lw, example, 0, toolscache.Indexers{})
	w := &kindWatch{kind: k, store: inf.GetStore(), synced: inf.HasSynced, done: make(chan struct{})}
	if err := inf.SetTransform(k.strip); err != nil {
		c.skip(ctx, k, "its cache could not be set up", err)
		return
	}
	if err := inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *toolscache.Reflector, err error) {
		if apierrors.IsForbidden(err) {
			w.forbidden.Store(true)
		}
		toolscache.DefaultWatchErrorHandler(ctx, r, err)
	}); err != nil {
		c.skip(ctx, k, "its cache could not be set up", err)
		return
	}
	wctx, cancel := context.WithCancel(ctx)
	w.cancel = cancel
	c.mu.Lock()
	c.watches[k] = w
	delete(c.skipped, k)
	c.mu.Unlock()
	go func() {
		defer close(w.done)
		inf.RunWithContext(wctx)
	}()
	c.log.InfoContext(ctx, "reporting Flux kind in "+MetricName, "kind", k.Kind.Kind, "api_version", gvr.GroupVersion().String(),
		"resource", gvr.Resource, "namespace", c.namespace)
}

// stop ends the watch of k; its series go with it.
func (c *Collector) stop(k *kind) {
	c.mu.Lock()
	w := c.watches[k]
	delete(c.watches, k)
	c.mu.Unlock()
	if w != nil && w.cancel != nil {
		w.cancel()
		<-w.done
	}
}

func (c *Collector) stopAll() {
	for _, k := range c.kinds {
		c.stop(k)
	}
}

// Describe sends nothing: the labels of MetricName differ by kind, so the collector is unchecked.
func (*Collector) Describe(chan<- *prometheus.Desc) {}

// Collect sends a series per cached object of every kind whose cache has synced.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	watches := make([]*kindWatch, 0, len(c.watches))
	for _, k := range c.kinds {
		if w := c.watches[k]; w != nil {
			watches = append(watches, w)
		}
	}
	c.mu.Unlock()
	for _, w := range watches {
		// A cache still listing would show objects as gone.
		if !w.synced() {
			continue
		}
		for _, item := range w.store.List() {
			if o, ok := item.(*object); ok {
				if m := w.kind.metric(c.desc, o); m != nil {
					ch <- m
				}
			}
		}
	}
}
