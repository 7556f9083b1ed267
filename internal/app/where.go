package app

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/locate"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/revision"
)

// exitError ends the command with its own exit code.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

func newWhereCommand(deps Deps) *cobra.Command {
	return newQueryCommand(deps, &cobra.Command{
		Use:   "where <sha|prefix>",
		Short: "Show, in every selected cluster, which Flux objects applied a commit, have it pending or fail on it",
		Long: `where finds, for each selected context and each Kustomization and HelmRelease whose source is a repository
holding the commit, where the commit is:

  applied        the applied revision holds it (with when, and commit → applied when the tracker's ledger knows
                 the apply that first held it; otherwise "at or before")
  pending        the source fetched a revision holding it; the object has not applied it yet
  failing        the object fails on a revision holding it (Flux's message is shown)
  not-fetched    the tracked branch holds it; the source has not fetched it yet
  not-on-branch  the tracked branch does not hold it
  unknown        a lookup failed, or the context could not be read (its error is shown)

Ancestry comes from the tracker's commit providers (the GitHub API, plain git), so a newer revision that holds
the commit counts as applied. Contexts are read concurrently; one that cannot be reached is one row, not fatal.`,
		Example: `  flux-commit-tracker where 1a2b3c4 --all-contexts -A
  kubectl flux-commit-tracker where 1a2b3c4d5e6f --context prod-eu --context prod-us -o json`,
		Args: cobra.ExactArgs(1),
	}, ExitUsage, func(cmd *cobra.Command, o QueryOptions, args []string) error {
		ref := args[0]
		if !validRef(ref) {
			return usageError{fmt.Errorf("invalid commit %q: want a SHA or a prefix of at least 7 hex digits", ref)}
		}
		ctx := cmd.Context()
		q, err := openQuery(ctx, o, deps.Stderr)
		if err != nil {
			return err
		}
		defer q.close()
		commit, rows, found := placeAll(ctx, q.loc, o.readAll(ctx, q.clusters, deps.Stderr), ref)
		if !found {
			_ = printRows(deps, o.Output, nil, rows)
			return exitError{code: 3, err: fmt.Errorf("commit %s is in no repository of the selected Flux objects", ref)}
		}
		return printRows(deps, o.Output, &commit, rows)
	})
}

// validRef accepts a SHA-1 or SHA-256 object name or a prefix of one, of at least commits.MinSHAPrefix digits.
func validRef(s string) bool { return commits.IsSHAPrefix(s) }

// printRows writes the answer in the chosen format.
func printRows(deps Deps, format string, commit *locate.Commit, rows []locate.Placement) error {
	if format != OutputTable {
		return printStructured(deps.Stdout, format, Where{Commit: commit, Placements: rows})
	}
	return printWhereTable(deps.Stdout, commit, rows)
}

// printWhereTable writes the commit's header and one row per object.
func printWhereTable(w io.Writer, commit *locate.Commit, rows []locate.Placement) error {
	if commit != nil {
		_, _ = fmt.Fprintf(w, "commit %s  %s\n  by %s, committed %s\n  in %s\n\n", commit.SHA, commit.Subject, commit.Author,
			commit.Committed.UTC().Format(time.RFC3339), commit.Repository)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "CONTEXT\tOBJECT\tSTATE\tWHEN\tLATENCY\tREVISION\tMESSAGE")
	for _, p := range rows {
		when, lat := whenOf(p), "-"
		if p.LatencySeconds != nil {
			lat = latency.Human(time.Duration(*p.LatencySeconds * float64(time.Second)))
		}
		rev := "-"
		if r, err := revision.Parse(p.Revision); err == nil {
			rev = revision.Short(r.Digest)
		}
		msg := p.Message
		if p.Error != "" {
			msg = p.Error
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Context, objectName(p), p.State, when, lat, rev, oneLine(msg))
	}
	return tw.Flush()
}

// objectName is kind/namespace/name, or "-" for a row about a whole context.
func objectName(p locate.Placement) string {
	if p.Kind == "" {
		return "-"
	}
	return p.Kind + "/" + p.Namespace + "/" + p.Name
}

// whenOf is the time a row is about: applied (exact or at or before), pending or failing since.
func whenOf(p locate.Placement) string {
	switch {
	case p.Applied != nil && p.AppliedExact:
		return p.Applied.UTC().Format(time.RFC3339)
	case p.Applied != nil:
		return "at or before " + p.Applied.UTC().Format(time.RFC3339)
	case p.Since != nil:
		return "since " + p.Since.UTC().Format(time.RFC3339)
	}
	return "-"
}

// oneLine keeps a message to one table cell.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	if s == "" {
		return "-"
	}
	return s
}
