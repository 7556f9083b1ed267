package controller

import (
	"context"
	"errors"

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
