// Package demo runs flux-commit-tracker against a local Flux (real source- and kustomize-controller on a local
// kube-apiserver, a git server on 127.0.0.1), commits on a schedule and prints a live table of what it records,
// and the commit statuses it posts to a fake GitHub.
package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/app"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/github/githubtest"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/apptest"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/stack"
)

// Namespace holds the demo's Flux objects and the tracker's ledger.
const Namespace = "demo"

// Objects are the Kustomizations the demo creates, one folder of the repository each.
var Objects = []string{"frontend", "backend", "worker"}

// Owner and RepoName are the repository as the fake GitHub knows it, which gets the commit statuses.
const (
	Owner    = "acme"
	RepoName = "manifests"
)

// StatusContext is the context of the commit statuses: the cluster's, "flux/{cluster}".
const StatusContext = "flux/demo"

// Options configures Run.
type Options struct {
	// Commits stops the demo once this many commits are recorded on every object; 0 runs until ctx ends.
	Commits int
	// Interval is the Flux objects' spec.interval: how often source-controller looks for new commits.
	Interval time.Duration
	// Every is the pause between scheduled pushes.
	Every time.Duration
	// MetricsAddr is where the tracker serves /metrics; when taken, a free port is used.
	MetricsAddr string
	// Out gets the table; Progress gets what happens meanwhile.
	Out, Progress io.Writer
	// Stack options: where the binaries are (empty: the environment variables the Makefile sets).
	Stack stack.Options
}

// step is one scheduled push: a message per commit, and whether the commit carries exporter-info.json.
type step struct {
	messages []string
	exporter bool
}

// schedule cycles through single commits, a batch pushed before one poll, and an exported commit.
var schedule = []step{
	{messages: []string{"Bump frontend replicas"}},
	{messages: []string{"Tune backend cache", "Add worker queue", "Raise worker timeout"}},
	{messages: []string{"Render manifests from app repo"}, exporter: true},
	{messages: []string{"Rotate config"}},
}

// Run starts the stack, a fake GitHub and the tracker, pushes commits on the schedule, prints each commit once
// every object has it recorded and says each commit status posted. It returns when ctx ends or opts.Commits
// commits are recorded everywhere with their success posted, having stopped everything.
func Run(ctx context.Context, opts Options) (err error) {
	if opts.Interval <= 0 {
		opts.Interval = 10 * time.Second
	}
	if opts.Every <= 0 {
		opts.Every = 15 * time.Second
	}
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	if opts.Progress == nil {
		opts.Progress = os.Stderr
	}
	// The stack's goroutines say things too: one line at a time.
	var sayMu sync.Mutex
	say := func(format string, args ...any) {
		sayMu.Lock()
		defer sayMu.Unlock()
		_, _ = fmt.Fprintf(opts.Progress, "demo: "+format+"\n", args...)
	}

	say("starting etcd, kube-apiserver, a git server, source-controller and kustomize-controller")
	begin := time.Now()
	sopts := opts.Stack
	sopts.Interval = opts.Interval
	sopts.Logf = func(format string, args ...any) { say(format, args...) }
	s, err := stack.Start(ctx, sopts)
	if err != nil {
		return fmt.Errorf("start the local Flux stack: %w", err)
	}
	defer func() { err = errors.Join(err, s.Stop()) }()
	say("stack up in %v", time.Since(begin).Round(100*time.Millisecond))

	// The repository's URL names an owner, /acme/, as a forge's does; its commit statuses go to a fake GitHub, on
	// localhost so that the git server's 127.0.0.1 is no GitHub host.
	gh := githubtest.NewServer()
	defer gh.Close()
	repo, err := setUp(ctx, s, s.GitURLOf(Owner, RepoName))
	if err != nil {
		return err
	}

	metricsAddr := freeOr(opts.MetricsAddr)
	out := apptest.NewSinkOutput(4096)
	trackerCtx, stopTracker := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() {
		done <- app.Run(trackerCtx, []string{
			"--kubeconfig", s.Kubeconfig(), "--namespace", Namespace, "--watch-namespace", Namespace,
			"--cluster-name", "demo", "--metrics-addr", metricsAddr, "--health-addr", freeOr(""),
			"--git-cache-dir", filepath.Join(s.WorkDir(), "tracker-git-cache"),
			"--commit-status", "--github-api-url", strings.Replace(gh.URL, "127.0.0.1", "localhost", 1),
		}, app.Deps{Getenv: func(k string) string { return map[string]string{"GITHUB_TOKEN": "demo-token"}[k] }, Stdout: out, Stderr: out,
			Version: "demo", Sinks: []tracker.Sink{out}})
	}()
	defer func() {
		stopTracker()
		if code := <-done; code != 0 {
			err = errors.Join(err, fmt.Errorf("tracker exited with %d:\n%s", code, tail(out.String(), 20)))
		}
	}()
	say("tracker running; Prometheus metrics at http://%s/metrics", metricsAddr)
	say("commit statuses (%s) go to a fake GitHub at %s, as %s/%s", StatusContext, gh.URL, Owner, RepoName)
	say("Flux polls the repository every %v; a push every %v; Ctrl-C stops everything", opts.Interval, opts.Every)

	// A commit applied before the tracker saw an object is part of its baseline, never recorded: push after.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for strings.Count(out.String(), "first sight of object") < len(Objects) {
		select {
		case <-ctx.Done():
			return nil
		case code := <-done:
			done <- code // for the deferred stop, which reports it
			return errors.New("the tracker stopped before it saw every object")
		case <-tick.C:
		}
	}
	last, err := loop(ctx, opts, repo, out, gh, say)
	if err != nil || last == "" {
		return err
	}
	// Where the last commit is, and the branch against the cluster, as the CLI answers them.
	query := func(args ...string) {
		var stdout, stderr bytes.Buffer
		code := app.Run(ctx, append(args, "--kubeconfig", s.Kubeconfig(), "-n", Namespace, "--tracker-namespace", Namespace,
			"--git-cache-dir", filepath.Join(s.WorkDir(), "query-git-cache")), app.Deps{Getenv: func(string) string { return "" }, Stdout: &stdout, Stderr: &stderr})
		_, _ = fmt.Fprintf(opts.Out, "\n$ flux-commit-tracker %s\n%s", strings.Join(args, " "), stdout.String())
		if code != 0 {
			say("%s exited %d: %s", args[0], code, tail(stderr.String(), 5))
		}
	}
	query("where", short(last))
	query("log", "--source", Namespace+"/manifests", "--max-count", "5")
	return nil
}

// setUp creates the namespace, the repository with one folder per object, the GitRepository fetching it from
// gitURL (its forge GitHub) and the Kustomizations, and waits until Flux applied the first commit.
func setUp(ctx context.Context, s *stack.Stack, gitURL string) (*stack.Repo, error) {
	if err := s.Client().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}); err != nil {
		return nil, fmt.Errorf("create namespace: %w", err)
	}
	repo, err := s.NewRepo(RepoName)
	if err != nil {
		return nil, err
	}
	first, err := repo.Commit("Initial manifests", manifests(0, nil), time.Time{})
	if err != nil {
		return nil, err
	}
	forgeGitHub := func(gr *sourcev1.GitRepository) {
		gr.Annotations = map[string]string{"flux-commit-tracker.io/forge": "github"}
	}
	if err := s.CreateGitRepository(ctx, Namespace, "manifests", gitURL, forgeGitHub); err != nil {
		return nil, err
	}
	for _, o := range Objects {
		if err := s.CreateKustomization(ctx, Namespace, o, "manifests", "./"+o); err != nil {
			return nil, err
		}
	}
	for _, o := range Objects {
		if _, err := s.WaitApplied(ctx, Namespace, o, first); err != nil {
			return nil, err
		}
	}
	return repo, nil
}

// manifests renders one ConfigMap per object at version n, plus extra files.
func manifests(n int, extra map[string]string) map[string]string {
	files := map[string]string{}
	for _, o := range Objects {
		files[o+"/configmap.yaml"] = stack.ConfigMapManifest(Namespace, o, map[string]string{"version": fmt.Sprint(n)})
	}
	for k, v := range extra {
		files[k] = v
	}
	return files
}

// row is what the table shows of one commit.
type row struct {
	message   string
	committed time.Time
	applied   map[string]apptest.CommitLog
}

// loop pushes on the schedule, prints each commit's row once every object has it recorded and says each commit
// status posted on the pushed commits; it returns the last of opts.Commits once they succeeded, "" when stopped.
func loop(ctx context.Context, opts Options, repo *stack.Repo, out *apptest.Output, gh *githubtest.Server, say func(string, ...any)) (string, error) {
	rows := map[string]*row{}
	var order []string
	printed, version, next := 0, 0, 0
	said := map[string]int{} // commit statuses said, by commit
	header(opts.Out)
	push := time.NewTimer(2 * time.Second)
	defer push.Stop()
	poll := time.NewTicker(250 * time.Millisecond)
	defer poll.Stop()
	recorded := false // opts.Commits commits are recorded on every object: their successes are awaited
	for {
		select {
		case <-ctx.Done():
			say("stopping")
			return "", nil
		case <-push.C:
			st := schedule[next%len(schedule)]
			next++
			var shas []string
			for _, msg := range st.messages {
				version++
				var extra map[string]string
				if st.exporter {
					extra = map[string]string{"exporter-info.json": exporterInfo(version)}
				}
				sha, err := repo.Commit(msg, manifests(version, extra), time.Time{})
				if err != nil {
					return "", err
				}
				rows[sha] = &row{message: msg, committed: time.Now().Truncate(time.Second), applied: map[string]apptest.CommitLog{}}
				order = append(order, sha)
				shas = append(shas, short(sha))
			}
			say("pushed %s", strings.Join(shas, ", "))
			push.Reset(opts.Every)
		case c := <-out.Recorded:
			r, ok := rows[c.Commit]
			if !ok {
				continue
			}
			r.applied[c.Name] = c
			for !recorded && printed < len(order) && len(rows[order[printed]].applied) == len(Objects) {
				print(opts.Out, order[printed], rows[order[printed]])
				printed++
				if opts.Commits > 0 && printed >= opts.Commits {
					recorded = true
					push.Stop()
					say("%d commits recorded on every object; waiting for their commit statuses", printed)
				}
			}
		case <-poll.C:
			for _, sha := range order {
				sts := gh.CommitStatuses(Owner, RepoName, sha)
				for _, st := range sts[said[sha]:] {
					say("commit status  %s  %s  %-7s  %s", short(sha), st.Context, st.State, st.Description)
				}
				said[sha] = len(sts)
			}
			if recorded && succeeded(gh, order[:opts.Commits]) {
				say("%d commits recorded on every object; done", opts.Commits)
				return order[opts.Commits-1], nil
			}
		}
	}
}

// succeeded reports whether each of shas shows success as its latest status.
func succeeded(gh *githubtest.Server, shas []string) bool {
	for _, sha := range shas {
		sts := gh.CommitStatuses(Owner, RepoName, sha)
		if len(sts) == 0 || sts[len(sts)-1].State != "success" {
			return false
		}
	}
	return true
}

// exporterInfo is what a manifests exporter writes: the upstream commits rendered into this commit.
func exporterInfo(n int) string {
	t := time.Now().Add(-90 * time.Second).UTC().Format(time.RFC3339)
	// Upstream commit names are 40 hex digits, as git writes them; anything else is refused as not a commit.
	sha := fmt.Sprintf("a9%038x", n)
	return fmt.Sprintf(`{"commit":%q,"commits_since_last_export":[{"hash":%q,"message":"Feature %d","author":"Dev","email":"dev@example.com","time":%q}],"export_build_link":"https://ci.example.com/builds/%d"}`, sha, sha, n, t, n)
}

func header(w io.Writer) {
	_, _ = fmt.Fprintf(w, "%-8s  %-30s  %-7s  %-8s  %-8s  %-9s  %s\n", "COMMIT", "MESSAGE", "OBJECTS", "COMMITTED", "APPLIED", "RECONCILE", "E2E")
}

// print writes one commit's row: the slowest object's apply and reconcile time, and its end-to-end time.
func print(w io.Writer, sha string, r *row) {
	var logs []apptest.CommitLog
	for _, c := range r.applied {
		logs = append(logs, c)
	}
	sort.Slice(logs, func(i, j int) bool { return logs[i].ReconcileSeconds > logs[j].ReconcileSeconds })
	slowest := logs[0]
	_, _ = fmt.Fprintf(w, "%-8s  %-30s  %d/%-5d  %-9s  %-8s  %-9s  %s\n", short(sha), r.message, len(r.applied), len(Objects),
		slowest.Committed.Local().Format("15:04:05"), slowest.Applied.Local().Format("15:04:05"),
		seconds(slowest.ReconcileSeconds), seconds(slowest.E2ESeconds))
}

func seconds(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(100 * time.Millisecond).String()
}

func short(sha string) string { return sha[:min(7, len(sha))] }

// freeOr returns addr when it can be listened on, else a free 127.0.0.1 port.
func freeOr(addr string) string {
	if addr != "" {
		if ln, err := net.Listen("tcp", addr); err == nil {
			_ = ln.Close()
			return addr
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
