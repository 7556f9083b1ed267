package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/flux"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// waitReady blocks until ready is closed (the ledger is loaded) or ctx ends; a nil ready is ready.
func waitReady(ctx context.Context, ready <-chan struct{}) error {
	if ready == nil {
		return nil
	}
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// process hands d to p; permanent failures are not retried, and a rate-limited or busy provider requeues the
// object for when it may be called again, without holding the worker (Flux's apply time is kept, so the
// samples come out the same later).
func process(ctx context.Context, p Processor, d flux.Deployment) (ctrl.Result, error) {
	res, err := p.Process(ctx, d)
	if err == nil && res.RetryAfter > 0 {
		return ctrl.Result{RequeueAfter: max(res.RetryAfter, minRequeue)}, nil
	}
	if wait, limited := commits.RetryAfter(err, time.Now()); limited {
		return ctrl.Result{RequeueAfter: max(wait, minRequeue)}, nil
	}
	if errors.Is(err, tracker.ErrPermanent) {
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	return ctrl.Result{}, err
}

// minRequeue keeps a limit that has just lifted from requeueing in a tight loop.
const minRequeue = 100 * time.Millisecond

// workerOptions runs n workers; several managers may run in one process (tests, restarts), so controller names
// need not be unique.
func workerOptions(n int) controller.Options {
	return controller.Options{MaxConcurrentReconciles: max(n, 1), SkipNameValidation: ptr.To(true),
		RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](5*time.Millisecond, maxRetryDelay)}
}

// maxRetryDelay caps the back-off of an object whose processing keeps failing (an apiserver or GitHub outage),
// so recording resumes within seconds of the outage ending rather than the default quarter of an hour.
const maxRetryDelay = 15 * time.Second

// getOrForget reads the object of kind at req into obj; a deleted one is forgotten and reported as not found.
func getOrForget(ctx context.Context, c client.Client, p Processor, kind string, req ctrl.Request, obj client.Object) (bool, error) {
	err := c.Get(ctx, req.NamespacedName, obj)
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err):
		return false, p.Forget(ctx, kind, req.Namespace, req.Name)
	default:
		return false, fmt.Errorf("get %s %s: %w", kind, req.NamespacedName, err)
	}
}
