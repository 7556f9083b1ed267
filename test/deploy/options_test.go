package deploy_test

import (
	"testing"

	"github.com/spf13/pflag"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/app"
)

// parseTrackerOptions parses a container's args and environment as the tracker's controller does, and
// validates the result.
func parseTrackerOptions(t *testing.T, args []string, env map[string]string) app.Options {
	t.Helper()
	opts := app.DefaultOptions()
	fs := pflag.NewFlagSet("flux-commit-tracker", pflag.ContinueOnError)
	opts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("args %q: %v", args, err)
	}
	if err := opts.ApplyEnv(fs, func(k string) string { return env[k] }); err != nil {
		t.Fatalf("env: %v", err)
	}
	if err := opts.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	return opts
}
