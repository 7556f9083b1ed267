package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/locate"
)

// Exit codes of wait.
const (
	WaitLanded   = 0 // every selected object on the commit's repository applied it
	WaitFailed   = 1 // an object fails on a revision holding it
	WaitTimeout  = 2 // --timeout passed first
	WaitNotFound = 3 // no tracked source or branch holds it
	WaitError    = 4 // bad usage, or a cluster or provider could not be read
)

func newWaitCommand(deps Deps) *cobra.Command {
	var timeout, interval time.Duration
	var summary bool
	cmd := newQueryCommand(deps, &cobra.Command{
		Use:   "wait <sha|prefix>",
		Short: "Block until every selected Flux object on the commit's repository has applied the commit",
		Long: `wait polls, like where, every selected context until each Kustomization and HelmRelease whose source
holds the commit has applied it (a newer revision that holds it counts), printing a line on stderr whenever an
object's state changes. Exit codes:

  0  landed everywhere
  1  an object fails on a revision holding the commit (Flux's message is printed)
  2  --timeout passed first
  3  the commit is on no tracked source or branch
  4  bad usage, or a cluster or provider could not be read until the timeout

-o json or -o yaml print the final state on stdout; --github-summary appends a Markdown table of it to
$GITHUB_STEP_SUMMARY.`,
		Example: `  flux-commit-tracker wait "$GITHUB_SHA" --context prod-eu --timeout 15m --github-summary`,
		Args:    cobra.ExactArgs(1),
	}, WaitError, func(cmd *cobra.Command, o QueryOptions, args []string) error {
		ref := args[0]
		if !validRef(ref) {
			return usageError{fmt.Errorf("invalid commit %q: want a SHA or a prefix of at least 7 hex digits", ref)}
		}
		if timeout <= 0 || interval <= 0 {
			return usageError{errors.New("--timeout and --interval must be positive")}
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
		defer cancel()
		q, err := openQuery(ctx, o, deps.Stderr)
		if err != nil {
			return err
		}
		defer q.close()
		w := waiter{deps: deps, seen: map[string]locate.State{}}
		var last look
		for {
			commit, rows, found := placeAll(ctx, q.loc, o.readAll(ctx, q.clusters, deps.Stderr), ref)
			if ctx.Err() == nil || last.rows == nil {
				// A look the deadline cut short says nothing: the one before it stands.
				last = look{commit, rows, found}
				w.progress(rows)
			}
			code, err := verdict(last.rows, last.found, ref)
			if code < 0 && ctx.Err() != nil {
				code, err = WaitTimeout, fmt.Errorf("commit %s not applied everywhere after %s", ref, timeout)
				if hasUnknown(last.rows) {
					code = WaitError
				}
			}
			if code >= 0 {
				return w.finish(o.Output, summary, last.found, last.commit, last.rows, code, err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(interval):
			}
		}
	})
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "How long to wait before giving up (exit 2)")
	cmd.Flags().DurationVar(&interval, "interval", 5*time.Second, "How often to look again")
	cmd.Flags().BoolVar(&summary, "github-summary", false, "Append a Markdown table of the final state to $GITHUB_STEP_SUMMARY")
	return cmd
}

// look is one reading of where the commit is.
type look struct {
	commit locate.Commit
	rows   []locate.Placement
	found  bool
}

// verdict is wait's exit code for rows, or -1 to look again.
func verdict(rows []locate.Placement, found bool, ref string) (int, error) {
	if !found {
		if hasUnknown(rows) {
			return -1, nil // a cluster not read may hold it
		}
		return WaitNotFound, fmt.Errorf("commit %s is in no repository of the selected Flux objects", ref)
	}
	landed, onBranch := true, false
	for _, p := range rows {
		switch p.State {
		case locate.Failing:
			return WaitFailed, fmt.Errorf("%s %s/%s in %s fails on a revision holding %s: %s", p.Kind, p.Namespace, p.Name, p.Context, ref, p.Message)
		case locate.Applied:
			onBranch = true
		case locate.NotOnBranch:
		case locate.Pending, locate.NotFetched:
			landed, onBranch = false, true
		default:
			landed = false
		}
	}
	switch {
	case !onBranch && !hasUnknown(rows):
		return WaitNotFound, fmt.Errorf("commit %s is on no branch a selected Flux object follows", ref)
	case landed:
		return WaitLanded, nil
	}
	return -1, nil
}

func hasUnknown(rows []locate.Placement) bool {
	for _, p := range rows {
		if p.State == locate.Unknown {
			return true
		}
	}
	return false
}

// waiter prints each object's state changes and the final answer.
type waiter struct {
	deps Deps
	seen map[string]locate.State
}

func (w *waiter) progress(rows []locate.Placement) {
	for _, p := range rows {
		key := p.Context + " " + objectName(p)
		if w.seen[key] == p.State {
			continue
		}
		w.seen[key] = p.State
		line := fmt.Sprintf("%s: %s", key, p.State)
		if p.LatencySeconds != nil {
			line += " in " + latency.Human(time.Duration(*p.LatencySeconds*float64(time.Second)))
		}
		if p.Error != "" {
			line += ": " + p.Error
		}
		_, _ = fmt.Fprintln(w.deps.Stderr, line)
	}
}

// finish prints the final state (and the GitHub summary) and returns the exit.
func (w *waiter) finish(format string, summary, found bool, commit locate.Commit, rows []locate.Placement, code int, err error) error {
	c := &commit
	if !found {
		c = nil
	}
	if format != OutputTable {
		if perr := printStructured(w.deps.Stdout, format, Where{Commit: c, Placements: rows}); perr != nil {
			return perr
		}
	} else if code == WaitLanded {
		_, _ = fmt.Fprintf(w.deps.Stdout, "commit %s landed on %d object(s)\n", commit.SHA, len(rows))
	}
	if summary {
		if serr := appendSummary(w.deps.Getenv("GITHUB_STEP_SUMMARY"), c, rows, code); serr != nil {
			_, _ = fmt.Fprintln(w.deps.Stderr, "flux-commit-tracker: --github-summary:", serr)
		}
	}
	if code == WaitLanded {
		return nil
	}
	return exitError{code: code, err: err}
}

// appendSummary appends a Markdown table of rows to the GitHub Actions step summary file.
func appendSummary(path string, commit *locate.Commit, rows []locate.Placement, code int) error {
	if path == "" {
		return errors.New("GITHUB_STEP_SUMMARY is not set")
	}
	var b strings.Builder
	title := "Commit"
	if commit != nil {
		title = fmt.Sprintf("Commit `%s` %s", commit.SHA[:min(12, len(commit.SHA))], commit.Subject)
	}
	verdicts := map[int]string{WaitLanded: "landed everywhere", WaitFailed: "failed", WaitTimeout: "timed out", WaitNotFound: "not on a tracked branch", WaitError: "not all clusters read"}
	fmt.Fprintf(&b, "### %s: %s\n\n| Context | Object | State | When | Latency |\n|---|---|---|---|---|\n", title, verdicts[code])
	for _, p := range rows {
		lat := "-"
		if p.LatencySeconds != nil {
			lat = latency.Human(time.Duration(*p.LatencySeconds * float64(time.Second)))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", p.Context, objectName(p), p.State, whenOf(p), lat)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(b.String() + "\n")
	return errors.Join(err, f.Close())
}
