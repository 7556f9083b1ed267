package controller

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

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

// process hands d to p; permanent failures are not retried.
func process(ctx context.Context, p Processor, d flux.Deployment) (ctrl.Result, error) {
	_, err := p.Process(ctx, d)
	if errors.Is(err, tracker.ErrPermanent) {
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	return ctrl.Result{}, err
}

// workerOptions runs n workers; several managers may run in one process (tests, restarts), so controller names
// need not be unique.
func workerOptions(n int) controller.Options {
	return controller.Options{MaxConcurrentReconciles: max(n, 1), SkipNameValidation: ptr.To(true)}
}

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
