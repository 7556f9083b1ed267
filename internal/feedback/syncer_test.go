package feedback

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/forge"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// memForge keeps what is posted, as a forge would show it.
type memForge struct {
	mu          sync.Mutex
	posts       []post
	reads       int
	deployments []*memDeployment
	failPosts   int
	// lostAnswers are posts stored whose answer never reaches the poster, as a gateway's 502 after the store.
	lostAnswers int
}

type post struct {
	sha    string
	status forge.Status
}

type memDeployment struct {
	d      forge.Deployment
	states []forge.DeploymentState
}

func (f *memForge) Latest(_ context.Context, _ commits.Repository, sha, ctxName string) (forge.Status, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	for i := len(f.posts) - 1; i >= 0; i-- {
		if p := f.posts[i]; p.sha == sha && p.status.Context == ctxName {
			return p.status, true, nil
		}
	}
	return forge.Status{}, false, nil
}

func (f *memForge) Post(_ context.Context, _ commits.Repository, sha string, s forge.Status) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failPosts > 0 {
		f.failPosts--
		return fmt.Errorf("answered 502 Bad Gateway")
	}
	f.posts = append(f.posts, post{sha, s})
	if f.lostAnswers > 0 {
		f.lostAnswers--
		return fmt.Errorf("answered 502 Bad Gateway")
	}
	return nil
}

func (f *memForge) Find(_ context.Context, _ commits.Repository, sha, env string) (forge.Deployment, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.deployments) - 1; i >= 0; i-- {
		if d := f.deployments[i].d; d.SHA == sha && d.Environment == env {
			return d, true, nil
		}
	}
	return forge.Deployment{}, false, nil
}

func (f *memForge) Create(_ context.Context, _ commits.Repository, d forge.Deployment) (forge.Deployment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d.ID = int64(len(f.deployments) + 1)
	f.deployments = append(f.deployments, &memDeployment{d: d})
	return d, nil
}

func (f *memForge) LatestState(_ context.Context, _ commits.Repository, id int64) (forge.DeploymentState, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.deployments[id-1].states
	if len(s) == 0 {
		return "", false, nil
	}
	return s[len(s)-1], true, nil
}

func (f *memForge) SetState(_ context.Context, _ commits.Repository, id int64, state forge.DeploymentState, _, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deployments[id-1].states = append(f.deployments[id-1].states, state)
	if f.lostAnswers > 0 {
		f.lostAnswers--
		return fmt.Errorf("answered 502 Bad Gateway")
	}
	return nil
}

// history is every status posted on sha under ctxName, oldest first, as "state: description".
func (f *memForge) history(sha, ctxName string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, p := range f.posts {
		if p.sha == sha && p.status.Context == ctxName {
			out = append(out, string(p.status.State)+": "+p.status.Description)
		}
	}
	return out
}

func (f *memForge) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.posts)
}

var (
	t0   = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	repo = commits.Repository{Host: "github.com", Owner: "acme", Name: "fleet"}
)

func sha(n int) string { return fmt.Sprintf("%040x", n) }

type fixture struct {
	t     *testing.T
	clock *clocktesting.FakeClock
	forge *memForge
	s     *Syncer
}

func newFixture(t *testing.T, f *memForge, mutate func(*Options)) *fixture {
	t.Helper()
	clk := clocktesting.NewFakeClock(t0.Add(time.Hour))
	opts := Options{Forges: forge.Registry{GitHub: f, GitHubHosts: []string{"github.com"}}, Statuses: true, Cluster: "prod-eu",
		Clock: clk, Settle: 5 * time.Second}
	if mutate != nil {
		mutate(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.start()
	clk.Step(opts.Settle)
	return &fixture{t: t, clock: clk, forge: f, s: s}
}

// rollout reports object name pending on commits from..to (oldest first) fetched as revision to, and failing on
// commit failingOn when it is not 0.
func (x *fixture) rollout(name string, applied, from, to, failingOn int) {
	r := tracker.Rollout{Object: telemetry.ObjectAttributes{Kind: "Kustomization", Namespace: "apps", Name: name}, Repository: repo,
		Applied: sha(applied), Source: sha(to), PendingKnown: true}
	for n := from; n <= to && n > 0; n++ {
		r.Pending = append(r.Pending, latency.DeliveredCommit{SHA: sha(n), Committed: t0.Add(time.Duration(n) * time.Minute)})
	}
	if failingOn > 0 {
		r.FailingSince, r.Attempted = x.clock.Now(), sha(failingOn)
	}
	x.s.ObserveRollout(context.Background(), r)
}

// applied delivers the outbox notice of object name applying commits 1..to.
func (x *fixture) applied(name string, to int) error {
	var cs []latency.DeliveredCommit
	for n := 1; n <= to; n++ {
		cs = append(cs, latency.DeliveredCommit{SHA: sha(n), Committed: t0.Add(time.Duration(n) * time.Minute)})
	}
	rec := tracker.Record{Object: telemetry.ObjectAttributes{Kind: "Kustomization", Namespace: "apps", Name: name}, Repository: repo,
		Revision: "main@sha1:" + sha(to), Commits: cs, Fetched: x.clock.Now().Add(-time.Minute), Applied: x.clock.Now(), AppliedFromFlux: true}
	body, ok, err := Notifier{}.Notice(rec)
	if err != nil || !ok {
		x.t.Fatalf("notice: %v %v", ok, err)
	}
	return x.s.Send(context.Background(), ledger.Item{ID: name + sha(to), Sink: Notifier{}.Name(), Body: body})
}

func (x *fixture) pass(after time.Duration) {
	x.clock.Step(after)
	x.s.Pass(context.Background())
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got  %q\n want %q", what, got, want)
	}
}

func TestEveryDeliveredCommitGoesPendingThenSuccessOnTheClusterContext(t *testing.T) {
	x := newFixture(t, &memForge{}, nil)
	x.rollout("a", 0, 1, 3, 0)
	x.rollout("b", 0, 1, 3, 0)
	x.pass(time.Second)
	x.clock.Step(10 * time.Minute)
	aFetched := x.clock.Now().Add(-time.Minute) // the fixture's notices fetch a minute before they apply
	if err := x.applied("a", 3); err != nil {
		t.Fatal(err)
	}
	x.pass(10 * time.Second) // the description change waits Settle, then shows
	x.clock.Step(time.Minute)
	bApplied := x.clock.Now()
	if err := x.applied("b", 3); err != nil {
		t.Fatal(err)
	}
	x.pass(time.Second)
	for n := 1; n <= 3; n++ {
		committed := t0.Add(time.Duration(n) * time.Minute)
		took, fetch := latency.Human(bApplied.Sub(committed)), latency.Human(aFetched.Sub(committed))
		equal(t, fmt.Sprint("commit ", n), x.forge.history(sha(n), "flux/prod-eu"), []string{
			"pending: applied on 0/2, 2 pending",
			"pending: applied on 1/2, 1 pending",
			"success: applied on 2/2 in " + took + " (fetch " + fetch + ")",
		})
	}
	// Nothing changes: nothing more is posted.
	n := x.forge.count()
	x.rollout("a", 3, 0, 0, 0)
	x.rollout("b", 3, 0, 0, 0)
	x.pass(time.Minute)
	if got := x.forge.count(); got != n {
		t.Errorf("posts after objects caught up: %d, want %d", got, n)
	}
}

func TestRestartPostsNothingTwice(t *testing.T) {
	f := &memForge{}
	x := newFixture(t, f, nil)
	x.rollout("a", 0, 1, 3, 0)
	x.rollout("b", 0, 1, 3, 0)
	x.pass(time.Second)
	if err := x.applied("a", 3); err != nil {
		t.Fatal(err)
	}
	x.pass(10 * time.Second)
	before := f.count()

	// A new process sees b still pending, and a's notice again (it was not marked done before the crash).
	y := newFixture(t, f, nil)
	y.rollout("a", 3, 0, 0, 0)
	y.rollout("b", 0, 1, 3, 0)
	y.pass(time.Second)
	if err := y.applied("a", 3); err != nil {
		t.Fatal(err)
	}
	y.pass(time.Minute)
	if got := f.count(); got != before {
		t.Fatalf("posts after the restart: %d, want still %d: %v", got, before, f.posts[before:])
	}
	if f.reads == 0 {
		t.Error("the new process never read what the forge shows")
	}
	if err := y.applied("b", 3); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 3; n++ {
		h := f.history(sha(n), "flux/prod-eu")
		if len(h) != 3 || !strings.HasPrefix(h[2], "success: applied on 2/2") {
			t.Errorf("commit %d after restart: %q", n, h)
		}
	}
}

func TestBrokenCommitFailsThenTheFixSucceeds(t *testing.T) {
	x := newFixture(t, &memForge{}, nil)
	x.rollout("a", 0, 1, 1, 1) // a fails on 1
	x.rollout("b", 0, 1, 1, 0)
	x.pass(time.Second)
	// The fix, 2, is fetched; a still fails on 1.
	x.rollout("a", 0, 1, 2, 1)
	x.rollout("b", 0, 1, 2, 0)
	x.pass(time.Second)
	if err := x.applied("b", 2); err != nil {
		t.Fatal(err)
	}
	if err := x.applied("a", 2); err != nil {
		t.Fatal(err)
	}
	h1 := x.forge.history(sha(1), "flux/prod-eu")
	equal(t, "broken commit", statesOf(h1), []string{"failure", "success"})
	if !strings.Contains(h1[0], "failing on 1/2: Kustomization apps/a") {
		t.Errorf("failure description %q", h1[0])
	}
	equal(t, "fix", statesOf(x.forge.history(sha(2), "flux/prod-eu")), []string{"pending", "success"})
}

func statesOf(h []string) []string {
	var out []string
	for _, s := range h {
		st, _, _ := strings.Cut(s, ":")
		out = append(out, st)
	}
	return out
}

func TestObjectScopeGivesEachObjectItsContext(t *testing.T) {
	x := newFixture(t, &memForge{}, func(o *Options) { o.Scope = ScopeObject; o.TargetURL = "https://traces.example/{trace_id}?c={cluster}" })
	x.rollout("a", 0, 1, 1, 0)
	x.rollout("b", 0, 1, 1, 0)
	x.pass(time.Second)
	if err := x.applied("a", 1); err != nil {
		t.Fatal(err)
	}
	equal(t, "a", statesOf(x.forge.history(sha(1), "flux/prod-eu/kustomization/apps/a")), []string{"pending", "success"})
	equal(t, "b", statesOf(x.forge.history(sha(1), "flux/prod-eu/kustomization/apps/b")), []string{"pending"})
	if got := x.forge.history(sha(1), "flux/prod-eu"); len(got) != 0 {
		t.Errorf("cluster context posted with scope object: %q", got)
	}
	want := "https://traces.example/" + telemetry.CommitTraceID(repo.String(), sha(1)).String() + "?c=prod-eu"
	if got := x.forge.posts[0].status.TargetURL; got != want {
		t.Errorf("target URL %q, want %q", got, want)
	}
}

func TestPostsPerContextAreCapped(t *testing.T) {
	x := newFixture(t, &memForge{}, nil)
	// Objects join one by one: each changes the description of commit 1.
	for i := range 3 * MaxPostsPerContext {
		x.rollout(fmt.Sprintf("o%02d", i), 0, 1, 1, 0)
		x.pass(time.Minute)
	}
	if got := len(x.forge.history(sha(1), "flux/prod-eu")); got != MaxPostsPerContext {
		t.Errorf("statuses on one commit and context: %d, want the cap %d", got, MaxPostsPerContext)
	}
}

func TestFailedPostIsRetriedLater(t *testing.T) {
	f := &memForge{failPosts: 1}
	x := newFixture(t, f, nil)
	x.rollout("a", 0, 1, 1, 0)
	x.pass(time.Second)
	if f.count() != 0 {
		t.Fatal("a failed post was kept")
	}
	x.pass(time.Second)
	if f.count() != 0 {
		t.Fatal("retried before its wait")
	}
	x.pass(15 * time.Second)
	equal(t, "after the retry", x.forge.history(sha(1), "flux/prod-eu"), []string{"pending: applied on 0/1, 1 pending"})
}

func TestDeploymentPerRevisionFoundAgainAfterARestart(t *testing.T) {
	f := &memForge{}
	withDeployments := func(o *Options) { o.Deployments = f; o.Statuses = false; o.ProductionEnvironment = true }
	x := newFixture(t, f, withDeployments)
	x.rollout("a", 0, 1, 2, 0)
	x.pass(time.Second)
	if len(f.deployments) != 1 || f.deployments[0].d.SHA != sha(2) || f.deployments[0].d.Environment != "prod-eu" || !f.deployments[0].d.ProductionEnvironment {
		t.Fatalf("deployments after the fetch: %+v", f.deployments)
	}
	var payload struct{ Commits []string }
	if err := json.Unmarshal(f.deployments[0].d.Payload, &payload); err != nil || strings.Join(payload.Commits, ",") != sha(1)+","+sha(2) {
		t.Errorf("payload %s: %v", f.deployments[0].d.Payload, err)
	}
	y := newFixture(t, f, withDeployments) // a restart, before the apply
	y.rollout("a", 0, 1, 2, 0)
	y.pass(time.Second)
	if err := y.applied("a", 2); err != nil {
		t.Fatal(err)
	}
	if len(f.deployments) != 1 {
		t.Fatalf("deployments after a restart: %d, want 1", len(f.deployments))
	}
	equal(t, "states", []string{string(f.deployments[0].states[0]), string(f.deployments[0].states[1])},
		[]string{string(forge.DeploymentInProgress), string(forge.DeploymentSuccess)})
	if len(f.deployments[0].states) != 2 {
		t.Errorf("states %v", f.deployments[0].states)
	}
	if len(f.posts) != 0 {
		t.Errorf("commit statuses posted with --commit-status off: %v", f.posts)
	}
}

func TestNoticeStaysWithinTheLedgerItemLimit(t *testing.T) {
	var cs []latency.DeliveredCommit
	for n := range commits.MaxRangeCommits {
		cs = append(cs, latency.DeliveredCommit{SHA: sha(n + 1), Committed: t0})
	}
	body, ok, err := Notifier{}.Notice(tracker.Record{Object: telemetry.ObjectAttributes{Kind: "Kustomization", Namespace: "apps", Name: "a"},
		Repository: repo, Revision: "main@sha1:" + sha(len(cs)), Commits: cs, Applied: t0})
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if len(body)+64 > ledger.MaxItemBytes {
		t.Errorf("notice of %d commits is %d bytes, over the ledger's %d per item", len(cs), len(body), ledger.MaxItemBytes)
	}
	n, err := decodeNotice(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Commits) != maxNoticeCommits || n.More != len(cs)-maxNoticeCommits || n.Commits[len(n.Commits)-1].SHA != sha(len(cs)) {
		t.Errorf("kept %d commits, more %d, newest %s", len(n.Commits), n.More, n.Commits[len(n.Commits)-1].SHA)
	}
}

func TestTemplatesAreChecked(t *testing.T) {
	for _, c := range []struct {
		scope, ctx, url, env string
		ok                   bool
	}{
		{ScopeCluster, "", "", "{cluster}", true},
		{ScopeCluster, "deploy/{cluster}", "https://g.example/d?var-sha={sha}&trace={trace_id}", "prod-{cluster}", true},
		{ScopeCluster, "flux/{name}", "", "", false},
		{ScopeObject, "flux/{cluster}/{namespace}/{name}", "", "", true},
		{ScopeObject, "flux/{cluster}", "", "", false},
		{"everywhere", "", "", "", false},
		{ScopeCluster, "", "https://x.example/{commit}", "", false},
		{ScopeCluster, "flux/{cluster", "", "", false},
		{ScopeCluster, "", "", "{namespace}", false},
	} {
		err := ValidateTemplates(c.scope, c.ctx, c.url, c.env)
		if (err == nil) != c.ok {
			t.Errorf("ValidateTemplates(%q, %q, %q, %q) = %v, want ok %v", c.scope, c.ctx, c.url, c.env, err, c.ok)
		}
	}
}

// The tracker sees an object up to date before it stores that apply's notice: the success waits for the notice
// and its times, and is posted once.
func TestRolloutAheadOfItsNoticePostsOneSuccess(t *testing.T) {
	x := newFixture(t, &memForge{}, nil)
	x.rollout("a", 0, 1, 1, 0)
	x.pass(time.Second)
	x.clock.Step(time.Minute)
	x.rollout("a", 1, 0, 1, 0) // up to date at 1, its notice not delivered yet
	x.pass(time.Second)
	fetched, applied := x.clock.Now().Add(-time.Minute), x.clock.Now()
	if err := x.applied("a", 1); err != nil {
		t.Fatal(err)
	}
	x.pass(10 * time.Second)
	committed := t0.Add(time.Minute)
	equal(t, "commit 1", x.forge.history(sha(1), "flux/prod-eu"), []string{
		"pending: applied on 0/1, 1 pending",
		"success: applied on 1/1 in " + latency.Human(applied.Sub(committed)) + " (fetch " + latency.Human(fetched.Sub(committed)) + ")",
	})
}

// The fix of a failing commit, seen applied before its notice: the failing commit goes from failure to success
// in one post, never through pending or a success without times.
func TestFixSeenBeforeItsNoticeGoesFromFailureToSuccess(t *testing.T) {
	x := newFixture(t, &memForge{}, nil)
	x.rollout("a", 0, 1, 1, 1) // a fails on 1
	x.pass(time.Second)
	x.rollout("a", 0, 1, 2, 1) // the fix, 2, is fetched
	x.pass(time.Second)
	x.rollout("a", 2, 0, 2, 0) // up to date at 2, its notice not delivered yet
	x.pass(time.Second)
	if err := x.applied("a", 2); err != nil {
		t.Fatal(err)
	}
	x.pass(10 * time.Second)
	equal(t, "failing commit", statesOf(x.forge.history(sha(1), "flux/prod-eu")), []string{"failure", "success"})
	equal(t, "fix", statesOf(x.forge.history(sha(2), "flux/prod-eu")), []string{"pending", "success"})
	for _, n := range []int{1, 2} {
		if h := x.forge.history(sha(n), "flux/prod-eu"); !strings.Contains(h[len(h)-1], " in ") {
			t.Errorf("commit %d's success %q holds no times", n, h[len(h)-1])
		}
	}
}

// An apply that makes no notice (nothing recorded: a first sight, a roll-forward to the mark) still shows once
// its notice had its time to come.
func TestApplyWithoutANoticeSucceedsAfterTheWait(t *testing.T) {
	x := newFixture(t, &memForge{}, nil)
	x.rollout("a", 0, 1, 1, 0)
	x.pass(time.Second)
	x.rollout("a", 1, 0, 1, 0)
	x.pass(time.Second)
	equal(t, "before the wait ends", x.forge.history(sha(1), "flux/prod-eu"), []string{"pending: applied on 0/1, 1 pending"})
	x.pass(5 * time.Second)
	equal(t, "after it", x.forge.history(sha(1), "flux/prod-eu"), []string{"pending: applied on 0/1, 1 pending", "success: applied on 1/1"})
}

// A post the forge stored but whose answer was lost is not posted again: the retry reads what the forge shows.
func TestPostStoredButNotAnsweredIsNotPostedAgain(t *testing.T) {
	f := &memForge{}
	x := newFixture(t, f, func(o *Options) { o.Deployments = f })
	x.rollout("a", 0, 1, 1, 0)
	x.pass(time.Second)
	f.mu.Lock()
	f.lostAnswers = 2 // the success and the deployment's success
	f.mu.Unlock()
	if err := x.applied("a", 1); err == nil {
		t.Fatal("a notice whose posts were not answered was taken as done")
	}
	x.pass(15 * time.Second) // the retry
	if err := x.applied("a", 1); err != nil {
		t.Fatal(err)
	}
	equal(t, "commit 1", statesOf(x.forge.history(sha(1), "flux/prod-eu")), []string{"pending", "success"})
	if len(f.deployments) != 1 || fmt.Sprint(f.deployments[0].states) != "[in_progress success]" {
		t.Errorf("deployments %d, states %v; want 1, [in_progress success]", len(f.deployments), f.deployments[0].states)
	}
}

// An object whose pending commits could not be listed (a busy or failing provider) still holds back a commit its
// source fetched: the commit is not a success before that object applied it.
func TestObjectWithUnlistedPendingCommitsHoldsTheSuccessBack(t *testing.T) {
	x := newFixture(t, &memForge{}, nil)
	for _, name := range []string{"a", "b", "c"} {
		x.rollout(name, 0, 0, 0, 0)
	}
	x.rollout("a", 0, 1, 1, 0)
	x.s.ObserveRollout(context.Background(), tracker.Rollout{Object: telemetry.ObjectAttributes{Kind: "Kustomization", Namespace: "apps", Name: "b"},
		Repository: repo, Applied: sha(0), Source: sha(1)}) // fetched 1, its commits not listed
	x.rollout("c", 0, 1, 1, 0)
	x.pass(time.Second)
	for _, name := range []string{"a", "c"} {
		if err := x.applied(name, 1); err != nil {
			t.Fatal(err)
		}
	}
	x.pass(10 * time.Second)
	h := x.forge.history(sha(1), "flux/prod-eu")
	if last := h[len(h)-1]; last != "pending: applied on 2/3, 1 pending" {
		t.Fatalf("commit 1 while b has not applied it: %q, want it pending on b", h)
	}
	if err := x.applied("b", 1); err != nil {
		t.Fatal(err)
	}
	if h := x.forge.history(sha(1), "flux/prod-eu"); !strings.HasPrefix(h[len(h)-1], "success: applied on 3/3") {
		t.Errorf("commit 1 once b applied it: %q", h)
	}
}

// threeFetchedOne is a fixture of objects a, b and c at commit 0, each seen waiting on commit 1.
func threeFetchedOne(t *testing.T) (*fixture, []string) {
	x := newFixture(t, &memForge{}, nil)
	names := []string{"a", "b", "c"}
	for _, name := range names {
		x.rollout(name, 0, 0, 0, 0)
	}
	for _, name := range names {
		x.rollout(name, 0, 1, 1, 0) // fetched 1, listed
	}
	x.pass(time.Second)
	return x, names
}

// Objects that apply a newer revision holding a commit they waited on, before their applies' notices come, keep
// counting for it: no success on the one object whose notice came first.
func TestObjectsThatWaitedOnACommitKeepCountingUntilTheirNotice(t *testing.T) {
	x, names := threeFetchedOne(t)
	if err := x.applied("a", 1); err != nil {
		t.Fatal(err)
	}
	for _, name := range names[1:] {
		x.rollout(name, 2, 3, 2, 0) // applied 2, which holds 1: the tracker has not stored their notices yet
	}
	x.pass(10 * time.Second)
	if h := x.forge.history(sha(1), "flux/prod-eu"); len(h) == 0 || h[len(h)-1] != "pending: applied on 1/3, 2 pending" {
		t.Fatalf("commit 1 before b's and c's notices: %q, want it pending on both", h)
	}
	for _, name := range names[1:] {
		if err := x.applied(name, 2); err != nil {
			t.Fatal(err)
		}
	}
	x.pass(10 * time.Second)
	if h := x.forge.history(sha(1), "flux/prod-eu"); !strings.HasPrefix(h[len(h)-1], "success: applied on 3/3") {
		t.Errorf("commit 1 once every notice came: %q", h)
	}
}

// A source that moves on while an object's commits cannot be listed (a busy provider) keeps the commits it was
// known to wait on pending there: no success on the objects that happened to be listed.
func TestSourceMovingOnWhileCommitsAreNotListedKeepsThemPending(t *testing.T) {
	x, names := threeFetchedOne(t)
	for _, name := range names[1:] {
		x.s.ObserveRollout(context.Background(), tracker.Rollout{Object: telemetry.ObjectAttributes{Kind: "Kustomization", Namespace: "apps", Name: name},
			Repository: repo, Applied: sha(0), Source: sha(2)}) // fetched 2, its commits not listed this time
	}
	x.rollout("a", 2, 3, 2, 0) // a applied 2
	if err := x.applied("a", 2); err != nil {
		t.Fatal(err)
	}
	x.pass(10 * time.Second)
	for _, n := range []int{1, 2} {
		h := x.forge.history(sha(n), "flux/prod-eu")
		if len(h) == 0 || h[len(h)-1] != "pending: applied on 1/3, 2 pending" {
			t.Errorf("commit %d while b and c have not applied it: %q, want it pending on both", n, h)
		}
	}
}
