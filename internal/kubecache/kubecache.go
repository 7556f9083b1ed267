// Package kubecache builds the informers of the tracker's cache so that they resume within seconds of a
// kube-apiserver outage, instead of after client-go's reflector back-off, which grows to [30 s, 60 s) across
// outages less than two minutes apart and is not configurable through informers.
package kubecache

import (
	"context"
	"errors"
	"math"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/watchlist"
)

// DefaultRetry is how lists and watches are retried while the apiserver is unreachable: quickly at first, then
// every two seconds at most.
var DefaultRetry = wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.2, Cap: 2 * time.Second, Steps: math.MaxInt32}

// NewInformer is cache.Options.NewInformer: the usual shared informer over a lister-watcher that retries
// outage errors itself, so the reflector's own back-off never grows.
func NewInformer(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, indexers toolscache.Indexers) toolscache.SharedIndexInformer {
	return toolscache.NewSharedIndexInformer(Patient(lw, DefaultRetry), obj, resync, indexers)
}

// Patient wraps lw so that a list or watch failing because the apiserver is unreachable, restarting or
// overloaded is retried with retry's delays until it succeeds or its context ends; other errors (an expired
// resource version, a forbidden kind) reach the reflector at once, which handles them as before.
func Patient(lw toolscache.ListerWatcher, retry wait.Backoff) toolscache.ListerWatcher {
	return &patient{inner: toolscache.ToListerWatcherWithContext(lw), retry: retry,
		noWatchList: watchlist.DoesClientNotSupportWatchListSemantics(lw)}
}

type patient struct {
	inner       toolscache.ListerWatcherWithContext
	retry       wait.Backoff
	noWatchList bool
}

func (p *patient) ListWithContext(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	return retrying(ctx, p.retry, func() (runtime.Object, error) { return p.inner.ListWithContext(ctx, opts) })
}

func (p *patient) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return retrying(ctx, p.retry, func() (watch.Interface, error) { return p.inner.WatchWithContext(ctx, opts) })
}

func (p *patient) List(opts metav1.ListOptions) (runtime.Object, error) {
	return p.ListWithContext(context.Background(), opts)
}

func (p *patient) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	return p.WatchWithContext(context.Background(), opts)
}

// IsWatchListSemanticsUnSupported passes on what the wrapped lister-watcher says of itself.
func (p *patient) IsWatchListSemanticsUnSupported() bool { return p.noWatchList }

// retrying calls call until it returns something other than an outage error or ctx ends; then the last error.
func retrying[T any](ctx context.Context, retry wait.Backoff, call func() (T, error)) (T, error) {
	for {
		v, err := call()
		if err == nil || !Outage(err) || ctx.Err() != nil {
			return v, err
		}
		t := time.NewTimer(retry.Step())
		select {
		case <-ctx.Done():
			t.Stop()
			return v, err
		case <-t.C:
		}
	}
}

// Outage reports whether err says the apiserver cannot answer now (down, restarting, overloaded) rather than
// anything about the request.
func Outage(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	return utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) ||
		apierrors.IsTooManyRequests(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsServerTimeout(err) ||
		apierrors.IsTimeout(err) || errors.Is(err, context.DeadlineExceeded)
}
