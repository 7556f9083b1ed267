package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/flux"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/locate"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/redact"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/revision"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// Log is the answer of log, as -o json and -o yaml print it: the newest commits of a branch, newest first,
// each placed in every context (or, with --objects, every object).
type Log struct {
	Repository string      `json:"repository"`
	Branch     string      `json:"branch"`
	Commits    []LogCommit `json:"commits"`
}

// LogCommit is one commit of the branch and where it is.
type LogCommit struct {
	SHA       string    `json:"sha"`
	Subject   string    `json:"subject"`
	Author    string    `json:"author"`
	Committed time.Time `json:"committed"`
	Cells     []LogCell `json:"cells"`
}

// LogCell is where a commit is in one context, or in one object of it.
type LogCell struct {
	Context string `json:"context"`
	// Object is Kind/namespace/name with --objects; empty for a whole context.
	Object string       `json:"object,omitempty"`
	State  locate.State `json:"state"`
	// LatencySeconds is commit → applied: the object's when exact; for a context, the slowest exact one of its
	// objects, a lower bound (LatencyAtLeast) when some of them have no exact apply time.
	LatencySeconds *float64 `json:"latency_seconds,omitempty"`
	LatencyAtLeast bool     `json:"latency_at_least,omitempty"`
	Error          string   `json:"error,omitempty"`
}

// logTarget is one selected object, with the tracker's ledger entry of it.
type logTarget struct {
	context string
	d       flux.Deployment
	entry   *ledger.Entry
}

// logColumn is one column of the matrix: a context (object empty) or one object of it.
type logColumn struct {
	context, object string
	targets         []logTarget
	err             error
}

func newLogCommand(deps Deps) *cobra.Command {
	var source, repository, branch string
	var maxCount int
	var objects bool
	cmd := newQueryCommand(deps, &cobra.Command{
		Use:   "log (--source <namespace/name> | --repository <url>)",
		Short: "Show the newest commits of a tracked branch and, for each, where it is in every selected cluster",
		Long: `log walks the first-parent history of the branch a GitRepository follows (--source namespace/name), or
the branch of the Flux objects whose repository is --repository, from its head back --max-count commits, and
places each commit like where does: one row per commit, one column per context (or per object with --objects).
A context's cell sums up its objects on the source: failing if any fails, else pending if any has it pending,
else applied when all applied it (with the slowest exact latency, prefixed ≥ when some apply times are not
exact); "-" is not fetched yet or not on the branch, "?" unknown.`,
		Example: `  flux-commit-tracker log --source flux-system/manifests --all-contexts -A
  flux-commit-tracker log --repository https://github.com/acme/manifests --objects --max-count 20 -o json`,
		Args: cobra.NoArgs,
	}, ExitUsage, func(cmd *cobra.Command, o QueryOptions, _ []string) error {
		sel, err := newLogSelection(source, repository, branch, maxCount)
		if err != nil {
			return usageError{err}
		}
		ctx := cmd.Context()
		q, err := openQuery(ctx, o, deps.Stderr)
		if err != nil {
			return err
		}
		defer q.close()
		targets, columns, err := sel.pick(o.readAll(ctx, q.clusters, deps.Stderr), objects)
		if err != nil {
			return err
		}
		for _, col := range columns {
			if col.err != nil {
				_, _ = fmt.Fprintf(deps.Stderr, "context %s: %v\n", col.context, col.err)
			}
		}
		b, err := sel.branchOf(targets)
		if err != nil {
			return err
		}
		src, err := q.loc.Sources(ctx, targets[0].d)
		if err != nil {
			return redact.Error(err)
		}
		history, err := firstParents(ctx, src, b, maxCount)
		if err != nil {
			return redact.Error(fmt.Errorf("branch %s of %s: %w", b, redact.URL(src.Repository.String()), err))
		}
		l := Log{Repository: redact.URL(src.Repository.String()), Branch: b, Commits: placeHistory(ctx, q.loc, history, columns)}
		if o.Output != OutputTable {
			return printStructured(deps.Stdout, o.Output, l)
		}
		return printLogTable(deps.Stdout, l, columns)
	})
	cmd.Flags().StringVar(&source, "source", "", "GitRepository (namespace/name) whose branch to show, in the objects that use it")
	cmd.Flags().StringVar(&repository, "repository", "", "Repository URL whose branch to show, in every object on it")
	cmd.Flags().StringVar(&branch, "branch", "", "Branch to walk (default: the one the selected objects' sources follow)")
	cmd.Flags().IntVar(&maxCount, "max-count", 10, "How many commits to show, newest first")
	cmd.Flags().BoolVar(&objects, "objects", false, "One column per object instead of per context")
	return cmd
}

// logSelection says which objects log places commits in.
type logSelection struct {
	sourceNamespace, sourceName string
	repository                  string // a repository key, see repoKey
	branch                      string
}

func newLogSelection(source, repository, branch string, maxCount int) (logSelection, error) {
	var s logSelection
	switch {
	case (source == "") == (repository == ""):
		return s, errors.New("name exactly one of --source and --repository")
	case maxCount <= 0:
		return s, fmt.Errorf("invalid --max-count %d: must be positive", maxCount)
	case source != "":
		ns, name, ok := strings.Cut(source, "/")
		if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
			return s, fmt.Errorf("invalid --source %q: want namespace/name of a GitRepository", source)
		}
		s.sourceNamespace, s.sourceName = ns, name
	default:
		repo, err := commits.ParseGitRepository(repository, false)
		if err != nil {
			return s, fmt.Errorf("invalid --repository: %w", err)
		}
		s.repository = repoKey(repo)
	}
	s.branch = branch
	return s, nil
}

// repoKey names a repository for comparison: its URL, lower-cased, without .git.
func repoKey(r commits.Repository) string {
	return strings.TrimSuffix(strings.ToLower(r.String()), ".git")
}

func (s logSelection) String() string {
	if s.sourceName != "" {
		return "GitRepository " + s.sourceNamespace + "/" + s.sourceName
	}
	return "repository " + s.repository
}

// matches reports whether d is an object log shows.
func (s logSelection) matches(d flux.Deployment) bool {
	if s.sourceName != "" {
		return d.SourceKind == flux.KindGitRepository && d.SourceNamespace == s.sourceNamespace && d.SourceName == s.sourceName
	}
	repo, err := tracker.RepositoryOf(d)
	return err == nil && repoKey(repo) == s.repository
}

// pick selects the objects of every snapshot and lays them out in columns; a context that could not be read is
// one column of unknown cells. No object selected anywhere is an error (exit 3 when every context was read).
func (s logSelection) pick(snaps []snapshot, perObject bool) ([]logTarget, []logColumn, error) {
	var targets []logTarget
	var columns []logColumn
	var errs []error
	for _, snap := range snaps {
		if snap.err != nil {
			columns = append(columns, logColumn{context: snap.context, err: snap.err})
			errs = append(errs, fmt.Errorf("context %s: %w", snap.context, snap.err))
			continue
		}
		var mine []logTarget
		for _, d := range snap.objects {
			if !s.matches(d) {
				continue
			}
			t := logTarget{context: snap.context, d: d}
			if e, ok := snap.entries[d.UID]; ok {
				t.entry = &e
			}
			mine = append(mine, t)
		}
		slices.SortFunc(mine, func(a, b logTarget) int {
			return cmp.Or(cmp.Compare(a.d.Namespace, b.d.Namespace), cmp.Compare(a.d.Kind, b.d.Kind), cmp.Compare(a.d.Name, b.d.Name))
		})
		targets = append(targets, mine...)
		if len(mine) > 0 && !perObject {
			columns = append(columns, logColumn{context: snap.context, targets: mine})
		}
		for _, t := range mine {
			if perObject {
				columns = append(columns, logColumn{context: snap.context, object: t.d.Kind + "/" + t.d.Namespace + "/" + t.d.Name, targets: []logTarget{t}})
			}
		}
	}
	slices.SortStableFunc(columns, func(a, b logColumn) int { return cmp.Compare(a.context, b.context) })
	if len(targets) == 0 {
		if len(errs) > 0 {
			return nil, nil, redact.Error(fmt.Errorf("no selected Flux object uses %s in the contexts read: %w", s, errors.Join(errs...)))
		}
		return nil, nil, exitError{code: 3, err: fmt.Errorf("no selected Flux object uses %s", s)}
	}
	return targets, columns, nil
}

// branchOf is the branch to walk: --branch, else the one branch the selected objects' sources follow.
func (s logSelection) branchOf(targets []logTarget) (string, error) {
	if s.branch != "" {
		return s.branch, nil
	}
	var branches []string
	for _, t := range targets {
		if b := t.d.SourceRef.Branch; b != "" && !slices.Contains(branches, b) {
			branches = append(branches, b)
		}
	}
	switch len(branches) {
	case 0:
		return "", usageError{fmt.Errorf("the objects on %s follow no branch (a tag, a semver range or a commit): name one with --branch", s)}
	case 1:
		return branches[0], nil
	}
	slices.Sort(branches)
	return "", usageError{fmt.Errorf("the objects on %s follow several branches (%s): name one with --branch", s, strings.Join(branches, ", "))}
}

// firstParents is the branch's head and its first parents, newest first, at most n.
func firstParents(ctx context.Context, src tracker.Source, branch string, n int) ([]commits.Commit, error) {
	r, ok := src.Provider.(commits.RefResolver)
	if !ok {
		return nil, errors.New("the repository's provider cannot resolve a branch")
	}
	sha, err := r.Resolve(ctx, src.Repository, branch)
	if err != nil {
		return nil, err
	}
	var out []commits.Commit
	for len(out) < n {
		c, err := src.Provider.Commit(ctx, src.Repository, sha)
		if err != nil {
			return nil, fmt.Errorf("commit %s: %w", revision.Short(sha), err)
		}
		out = append(out, c)
		if len(c.Parents) == 0 {
			break
		}
		sha = c.Parents[0]
	}
	return out, nil
}

// placeHistory places every commit in every column, a few commits at once.
func placeHistory(ctx context.Context, loc locate.Locator, history []commits.Commit, columns []logColumn) []LogCommit {
	out := make([]LogCommit, len(history))
	var wg sync.WaitGroup
	limit := make(chan struct{}, 4)
	for i, c := range history {
		wg.Go(func() {
			limit <- struct{}{}
			defer func() { <-limit }()
			subject, _, _ := strings.Cut(c.Message, "\n")
			lc := LogCommit{SHA: c.SHA, Subject: subject, Author: c.AuthorName, Committed: c.Time(loc.CommitTime)}
			at := locate.Commit{SHA: c.SHA, Subject: subject, Author: c.AuthorName, Committed: lc.Committed}
			for _, col := range columns {
				lc.Cells = append(lc.Cells, col.place(ctx, loc, at))
			}
			out[i] = lc
		})
	}
	wg.Wait()
	return out
}

// place is where c is in the column: its object's placement, or its context's objects summed up.
func (col logColumn) place(ctx context.Context, loc locate.Locator, c locate.Commit) LogCell {
	cell := LogCell{Context: col.context, Object: col.object}
	if col.err != nil {
		cell.State, cell.Error = locate.Unknown, col.err.Error()
		return cell
	}
	ps := make([]locate.Placement, 0, len(col.targets))
	for _, t := range col.targets {
		ps = append(ps, loc.Place(ctx, t.context, t.d, t.entry, c))
	}
	cell.State = sumStates(ps)
	var errs []string
	for _, p := range ps {
		if p.Error != "" {
			errs = append(errs, objectName(p)+": "+p.Error)
		}
		if cell.State != locate.Applied {
			continue
		}
		if p.LatencySeconds == nil {
			cell.LatencyAtLeast = true
		} else if cell.LatencySeconds == nil || *p.LatencySeconds > *cell.LatencySeconds {
			cell.LatencySeconds = p.LatencySeconds
		}
	}
	if cell.LatencySeconds == nil {
		cell.LatencyAtLeast = false
	}
	cell.Error = strings.Join(errs, "; ")
	return cell
}

// sumStates is a context's state of a commit from its objects': failing, pending, unknown, applied by all,
// not fetched by some, else not on the branch.
func sumStates(ps []locate.Placement) locate.State {
	has := func(s locate.State) bool {
		return slices.ContainsFunc(ps, func(p locate.Placement) bool { return p.State == s })
	}
	for _, s := range []locate.State{locate.Failing, locate.Pending, locate.Unknown} {
		if has(s) {
			return s
		}
	}
	switch {
	case !slices.ContainsFunc(ps, func(p locate.Placement) bool { return p.State != locate.Applied }):
		return locate.Applied
	case has(locate.NotFetched):
		return locate.NotFetched
	}
	return locate.NotOnBranch
}

// printLogTable writes the branch's header and the matrix: one row per commit, one column per context or object.
func printLogTable(w io.Writer, l Log, columns []logColumn) error {
	_, _ = fmt.Fprintf(w, "%s  branch %s\n\n", l.Repository, l.Branch)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := []string{"COMMIT", "COMMITTED", "SUBJECT"}
	for _, col := range columns {
		head = append(head, strings.TrimSuffix(col.context+"/"+col.object, "/"))
	}
	_, _ = fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, c := range l.Commits {
		row := []string{revision.Short(c.SHA), c.Committed.UTC().Format(time.RFC3339), shorten(c.Subject, 50)}
		for _, cell := range c.Cells {
			row = append(row, cellText(cell))
		}
		_, _ = fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// cellText is a cell as the table shows it.
func cellText(c LogCell) string {
	switch c.State {
	case locate.Applied:
		if c.LatencySeconds == nil {
			return "applied"
		}
		lat := latency.Human(time.Duration(*c.LatencySeconds * float64(time.Second)))
		if c.LatencyAtLeast {
			return "applied ≥" + lat
		}
		return "applied " + lat
	case locate.Pending, locate.Failing:
		return string(c.State)
	case locate.NotFetched, locate.NotOnBranch:
		return "-"
	}
	return "?"
}

// shorten keeps s to n runes on one line.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-3]) + "..."
	}
	return cmp.Or(s, "-")
}
