// Package app builds the flux-commit-tracker command line: the root command runs the controller.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// programName names the binary: its command, its user agent.
const programName = "flux-commit-tracker"

// ExitUsage is the exit code for bad flags or environment values.
const ExitUsage = 2

// usageError marks errors caused by bad input, which exit with ExitUsage.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// Deps is what the command needs from its process.
type Deps struct {
	Getenv     func(string) string
	Stdout     io.Writer
	Stderr     io.Writer
	IsTerminal bool
	Version    string
	// Sinks receive each Record besides the metrics and log lines: tests and the demo subscribe here.
	Sinks []tracker.Sink
}

// NewRootCommand builds the root command: with no subcommand it runs the controller.
func NewRootCommand(deps Deps) *cobra.Command {
	opts := DefaultOptions()
	cmd := &cobra.Command{
		Use:   programName,
		Short: "Record how long each commit takes from commit to applied by Flux, exactly once",
		Long: `flux-commit-tracker watches Flux Kustomizations and the GitRepositories they use. When Flux applies a
new revision it finds every commit that revision delivered (first-parent history, from the GitHub compare API for
GitHub repositories or from a local bare mirror read with plain git for any other host), reads each commit's
exporter-info.json for upstream commits, and records once per commit how long it took from commit to
applied — as OpenTelemetry metrics, traces and logs, and on a Prometheus /metrics endpoint.

Every flag can also be set by the environment variable named in its help. GitHub credentials come only from
the environment: GITHUB_TOKEN, or GITHUB_APP_ID + GITHUB_APP_PRIVATE_KEY (PEM text) + GITHUB_APP_INSTALLATION_ID
(the token wins). With neither, GitHub is called unauthenticated (60 requests an hour).`,
		Example:       "  flux-commit-tracker --kube-context=dev --telemetry-mode otlp",
		Version:       deps.Version,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.ApplyEnv(cmd.Flags(), deps.Getenv); err != nil {
				return usageError{err}
			}
			if err := opts.Validate(); err != nil {
				return usageError{err}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runController(cmd.Context(), opts, deps)
		},
	}
	cmd.SetOut(deps.Stdout)
	cmd.SetErr(deps.Stderr)
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	opts.BindFlags(cmd.Flags())
	cmd.AddCommand(queryCommands(deps)...)
	return cmd
}

// queryCommands are the subcommands that read clusters and repositories and answer about commits.
func queryCommands(deps Deps) []*cobra.Command {
	return []*cobra.Command{
		newWhereCommand(deps),
		newWaitCommand(deps),
		newTraceCommand(deps),
		newLogCommand(deps),
	}
}

// Run executes the command line and returns the process exit code.
func Run(ctx context.Context, args []string, deps Deps) int {
	cmd := NewRootCommand(deps)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	_, _ = fmt.Fprintln(deps.Stderr, programName+":", err)
	if ee := (exitError{}); errors.As(err, &ee) {
		return ee.code
	}
	var ue usageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	return 1
}
