package tracker_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/github"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/github/githubtest"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/flux"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry/telemetrytest"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

const (
	testToken   = "ghp_trackerTestToken"
	clusterName = "test-cluster"
	repoURL     = "https://github.com/acme/manifests"
	infoPath    = "exporter-info.json"
	applySpan   = "flux-commit-tracker.apply"
	compareSpan = "github GET /repos/{owner}/{repo}/compare/{basehead}"
	commitSpan  = "github GET /repos/{owner}/{repo}/commits/{ref}"
	ghRetries   = 2 // so 3 failed attempts exhaust one lookup
)

// t0 is the scenario epoch; at(s) is s seconds after it.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

// Metric keys of fixture.metrics: counters by name{enumerated attribute}, histograms by name.count/.sum.
var (
	kRecorded       = telemetry.MetricCommitsRecorded
	kTruncated      = telemetry.MetricTruncated
	kReconcileCount = telemetry.MetricReconcile + ".count"
	kReconcileSum   = telemetry.MetricReconcile + ".sum"
	kE2ECount       = telemetry.MetricE2E + ".count"
	kE2ESum         = telemetry.MetricE2E + ".sum"
	kExportCount    = telemetry.MetricExport + ".count"
	kExportSum      = telemetry.MetricExport + ".sum"
	kGitHubOK       = telemetry.MetricGitHubCalls + "{success}"
	kGitHubError    = telemetry.MetricGitHubCalls + "{error}"
	kGitHubCacheHit = telemetry.MetricGitHubCalls + "{cache_hit}"
)

func kErr(reason string) string         { return telemetry.MetricErrors + "{" + reason + "}" }
func kNotRecorded(status string) string { return telemetry.MetricNotRecorded + "{" + status + "}" }
func kSkew(stage string) string         { return telemetry.MetricClockSkew + "{" + stage + "}" }

// fixture is a Tracker wired as the controller wires it: the real GitHub provider against the fake
// GitHub API, an in-memory ledger, in-memory telemetry and a fake clock.
type fixture struct {
	tb    testing.TB
	srv   *githubtest.Server
	repo  *githubtest.Repo
	gh    *github.Provider
	tel   *telemetrytest.Telemetry
	led   ledger.Ledger
	clock *clocktesting.FakeClock
	trk   *tracker.Tracker
	opts  tracker.Options
	seq   int
}

type fixtureOption func(*tracker.Options)

// withExporterInfo turns on exporter-info.json reading at its default path.
func withExporterInfo() fixtureOption {
	return func(o *tracker.Options) { o.ExporterInfoPath = infoPath }
}

func withLedger(l ledger.Ledger) fixtureOption {
	return func(o *tracker.Options) { o.Ledger = l }
}

func newFixture(tb testing.TB, opts ...fixtureOption) *fixture {
	tb.Helper()
	srv := githubtest.NewServer()
	tb.Cleanup(srv.Close)
	srv.RequireToken(testToken)
	tel := telemetrytest.New(tb)
	gh, err := github.New(github.Options{
		BaseURL:        srv.URL,
		Token:          testToken,
		MaxRetries:     ghRetries,
		RetryWaitMin:   10 * time.Millisecond,
		RetryWaitMax:   20 * time.Millisecond,
		OnCall:         func(ctx context.Context, o commits.CallOutcome) { tel.Metrics.AddGitHubCall(ctx, o) },
		TracerProvider: tel.TracerProvider,
	})
	if err != nil {
		tb.Fatal(err)
	}
	f := &fixture{tb: tb, srv: srv, repo: srv.Repo("acme", "manifests"), gh: gh, tel: tel, led: ledger.NewMemory(),
		clock: clocktesting.NewFakeClock(at(1000))}
	o := tracker.Options{
		Ledger: f.led,
		// Like the controller without plain git: GitHub hosts only.
		Providers:   tracker.Providers{GitHub: gh, GitHubHosts: []string{"github.com"}}.For,
		Recorder:    tel.Metrics,
		Tracer:      tel.TracerProvider.Tracer(telemetry.ScopeName),
		Logger:      tel.Logger,
		Clock:       f.clock,
		ClusterName: clusterName,
	}
	for _, opt := range opts {
		opt(&o)
	}
	f.led, f.opts = o.Ledger, o
	f.trk, err = tracker.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// otherProcess is a second tracker configured as f's, with its own view l of the ledger.
func (f *fixture) otherProcess(l ledger.Ledger) *tracker.Tracker {
	f.tb.Helper()
	o := f.opts
	o.Ledger = l
	trk, err := tracker.New(o)
	if err != nil {
		f.tb.Fatal(err)
	}
	return trk
}

// commit adds a commit on main, committed sec seconds after t0, and returns its SHA.
func (f *fixture) commit(sec int, files map[string]string) string {
	f.seq++
	if files == nil {
		files = map[string]string{}
	}
	files["app.yaml"] = fmt.Sprintf("replicas: %d\n", f.seq)
	return f.repo.Commit(githubtest.CommitSpec{AuthorTime: at(sec), Files: files})
}

// dep is the Kustomization apps/<name> (UID uid-<name>) from repoURL, at revision rev applied at applied.
func dep(name, rev string, applied time.Time) flux.Deployment {
	return flux.Deployment{
		UID: "uid-" + name, Kind: flux.KindKustomization, Namespace: "apps", Name: name,
		SourceKind: flux.KindGitRepository, SourceNamespace: "flux-system", SourceName: "manifests",
		RepositoryURL: repoURL, Revision: rev, Applied: applied,
	}
}

func rev(sha string) string { return "main@sha1:" + sha }

func (f *fixture) process(d flux.Deployment) (tracker.Result, error) {
	f.tb.Helper()
	return f.trk.Process(context.Background(), d)
}

// mustProcess processes d and fails unless the outcome is want.
func (f *fixture) mustProcess(d flux.Deployment, want tracker.Outcome) tracker.Result {
	f.tb.Helper()
	res, err := f.process(d)
	if err != nil || res.Outcome != want {
		f.tb.Fatalf("Process(%s @ %s) = %q, %v; want %q, nil", d.Name, d.Revision, res.Outcome, err, want)
	}
	return res
}

// baseline makes name's first sight at sha and forgets what that cost.
func (f *fixture) baseline(name, sha string) {
	f.tb.Helper()
	f.mustProcess(dep(name, rev(sha), at(0)), tracker.Baseline)
	f.srv.ClearRequests()
}

// metrics reads every metric: counters as name{enumerated attribute value}, histograms as name.count and name.sum.
func (f *fixture) metrics() map[string]float64 {
	f.tb.Helper()
	out := map[string]float64{}
	for _, sm := range f.tel.Collect(f.tb).ScopeMetrics {
		for _, m := range sm.Metrics {
			switch data := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range data.DataPoints {
					key := m.Name
					for _, k := range []string{telemetry.AttrReason, telemetry.AttrStage, telemetry.AttrStatus, telemetry.AttrOutcome} {
						if v, ok := dp.Attributes.Value(attribute.Key(k)); ok {
							key += "{" + v.AsString() + "}"
						}
					}
					if dp.Value != 0 {
						out[key] += float64(dp.Value)
					}
				}
			case metricdata.Histogram[float64]:
				for _, dp := range data.DataPoints {
					if dp.Count != 0 {
						out[m.Name+".count"] += float64(dp.Count)
						out[m.Name+".sum"] += dp.Sum
					}
				}
			default:
				f.tb.Fatalf("metric %s has unexpected data %T", m.Name, m.Data)
			}
		}
	}
	return out
}

func (f *fixture) wantMetrics(want map[string]float64) {
	f.tb.Helper()
	got := f.metrics()
	for k, v := range want {
		if got[k] != v {
			f.tb.Errorf("metric %s = %v, want %v", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			f.tb.Errorf("unexpected metric %s = %v", k, v)
		}
	}
}

// wantLedger checks the ledger holds exactly the given revisions by UID, stamped at the clock's time.
func (f *fixture) wantLedger(want map[string]string) {
	f.tb.Helper()
	got := f.led.Entries()
	for uid, r := range want {
		e, ok := got[uid]
		if !ok {
			f.tb.Errorf("ledger has no entry for %s, want revision %s", uid, r)
			continue
		}
		name := strings.TrimPrefix(uid, "uid-")
		if e.Revision != r || e.Kind != flux.KindKustomization || e.Namespace != "apps" || e.Name != name {
			f.tb.Errorf("ledger[%s] = %+v, want Kustomization apps/%s at %s", uid, e, name, r)
		}
		if e.UpdatedAt.IsZero() || e.UpdatedAt.After(f.clock.Now()) || e.UpdatedAt.Nanosecond() != 0 {
			f.tb.Errorf("ledger[%s].UpdatedAt = %v, want a whole second no later than the clock (%v)", uid, e.UpdatedAt, f.clock.Now())
		}
	}
	for uid, e := range got {
		if _, ok := want[uid]; !ok {
			f.tb.Errorf("unexpected ledger entry %s = %+v", uid, e)
		}
	}
}

// requests returns the GitHub API paths requested since the last ClearRequests.
func (f *fixture) requests() []string {
	var out []string
	for _, r := range f.srv.Requests() {
		p := r.Method + " " + r.Path
		if r.Status != http.StatusOK {
			p += fmt.Sprintf(" → %d", r.Status)
		}
		out = append(out, p)
	}
	return out
}

func (f *fixture) wantRequests(want ...string) {
	f.tb.Helper()
	if got := f.requests(); !slices.Equal(got, want) {
		f.tb.Errorf("GitHub requests:\n  got  %q\n  want %q", got, want)
	}
}

func comparePath(base, head string) string {
	return "GET /repos/acme/manifests/compare/" + base + "..." + head
}

func contentsPath(path string) string { return "GET /repos/acme/manifests/contents/" + path }

// smp renders one expected sample; samples compares against these renderings.
func smp(stage latency.Stage, commit, upstream string, start, end time.Time, d time.Duration) string {
	return fmt.Sprintf("%s commit=%.8s upstream=%.8s %s→%s %v skewed=%v", stage, commit, upstream,
		start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339), d, d == 0 && end.Before(start))
}

func samples(ss []latency.Sample) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%s commit=%.8s upstream=%.8s %s→%s %v skewed=%v", s.Stage, s.Commit, s.Upstream,
			s.Start.UTC().Format(time.RFC3339), s.End.UTC().Format(time.RFC3339), s.Duration, s.Skewed)
	}
	return out
}

func wantSamples(tb testing.TB, got []latency.Sample, want ...string) {
	tb.Helper()
	if g := samples(got); !slices.Equal(g, want) {
		tb.Errorf("samples:\n  got  %s\n  want %s", strings.Join(g, "\n       "), strings.Join(want, "\n       "))
	}
}

// plain is a manifests commit with no upstream: one reconcile and one e2e sample, both committed → applied.
func plain(sha string, committed, applied time.Time) []string {
	d := max(applied.Sub(committed), 0)
	return []string{
		smp(latency.StageReconcile, sha, "", committed, applied, d),
		smp(latency.StageE2E, sha, "", committed, applied, d),
	}
}

func wantCommits(tb testing.TB, got []latency.DeliveredCommit, want ...string) {
	tb.Helper()
	shas := make([]string, len(got))
	for i, c := range got {
		shas[i] = c.SHA
	}
	if !slices.Equal(shas, want) {
		tb.Errorf("delivered commits %q, want %q", shas, want)
	}
}

func TestPending(t *testing.T) {
	f := newFixture(t)
	res := f.mustProcess(dep("app", "", time.Time{}), tracker.Pending)
	if len(res.Samples) != 0 || len(res.Commits) != 0 {
		t.Errorf("pending produced %d samples, %d commits", len(res.Samples), len(res.Commits))
	}
	f.wantLedger(map[string]string{})
	f.wantRequests()
	f.wantMetrics(map[string]float64{})
}

func TestFirstSightIsBaseline(t *testing.T) {
	f := newFixture(t)
	c0 := f.commit(0, nil)
	res := f.mustProcess(dep("app", rev(c0), at(10)), tracker.Baseline)
	if len(res.Samples) != 0 || len(res.Commits) != 0 {
		t.Errorf("baseline produced %d samples, %d commits", len(res.Samples), len(res.Commits))
	}
	f.wantLedger(map[string]string{"uid-app": rev(c0)})
	if e, _ := f.led.Get("uid-app"); !e.UpdatedAt.Equal(f.clock.Now()) {
		t.Errorf("UpdatedAt = %v, want the observation time %v", e.UpdatedAt, f.clock.Now())
	}
	f.wantRequests()
	f.wantMetrics(map[string]float64{})
}

func TestUnchangedRevisionCallsNoOne(t *testing.T) {
	f := newFixture(t)
	c0 := f.commit(0, nil)
	f.baseline("app", c0)
	f.mustProcess(dep("app", rev(c0), at(10)), tracker.Unchanged)
	// The same commit under another spelling (no ref) is unchanged too; the ledger takes the new spelling.
	f.mustProcess(dep("app", "sha1:"+c0, at(10)), tracker.Unchanged)
	f.wantLedger(map[string]string{"uid-app": "sha1:" + c0})
	f.wantRequests()
	f.wantMetrics(map[string]float64{})
}

func TestRecordsDeliveredCommits(t *testing.T) {
	f := newFixture(t)
	c0 := f.commit(0, nil)
	f.baseline("app", c0)
	f.clock.Step(time.Hour)

	c1 := f.commit(100, nil)
	res := f.mustProcess(dep("app", rev(c1), at(142)), tracker.Recorded)
	wantCommits(t, res.Commits, c1)
	wantSamples(t, res.Samples, plain(c1, at(100), at(142))...)
	if !res.Applied.Equal(at(142)) || !res.AppliedFromFlux {
		t.Errorf("applied %v (from Flux %v), want %v from Flux", res.Applied, res.AppliedFromFlux, at(142))
	}
	f.wantLedger(map[string]string{"uid-app": rev(c1)})
	if e, _ := f.led.Get("uid-app"); !e.UpdatedAt.Equal(f.clock.Now()) {
		t.Errorf("UpdatedAt = %v, want the observation time %v", e.UpdatedAt, f.clock.Now())
	}
	f.wantRequests(comparePath(c0, c1))
	f.wantMetrics(map[string]float64{
		kRecorded: 1, kReconcileCount: 1, kReconcileSum: 42, kE2ECount: 1, kE2ESum: 42, kGitHubOK: 1,
	})
	// Every sample carries the object's attributes.
	obj := []attribute.KeyValue{
		attribute.String(telemetry.AttrCluster, clusterName), attribute.String(telemetry.AttrNamespace, "apps"),
		attribute.String(telemetry.AttrKind, flux.KindKustomization), attribute.String(telemetry.AttrName, "app"),
		attribute.String(telemetry.AttrRepository, repoURL),
	}
	if n, _ := f.tel.Histogram(t, telemetry.MetricReconcile, obj...); n != 1 {
		t.Errorf("reconcile samples with the object's attributes = %d, want 1", n)
	}

	// Processing the same apply again records nothing more.
	f.srv.ClearRequests()
	f.mustProcess(dep("app", rev(c1), at(142)), tracker.Unchanged)
	f.wantRequests()
	f.wantMetrics(map[string]float64{
		kRecorded: 1, kReconcileCount: 1, kReconcileSum: 42, kE2ECount: 1, kE2ESum: 42, kGitHubOK: 1,
	})

	// A later apply delivering several commits records each of them, oldest first.
	var cs, want []string
	for i := range 5 {
		c := f.commit(200+100*i, nil)
		cs = append(cs, c)
		want = append(want, plain(c, at(200+100*i), at(700))...)
	}
	f.srv.ClearRequests()
	res = f.mustProcess(dep("app", rev(cs[4]), at(700)), tracker.Recorded)
	wantCommits(t, res.Commits, cs...)
	wantSamples(t, res.Samples, want...)
	f.wantLedger(map[string]string{"uid-app": rev(cs[4])})
	f.wantRequests(comparePath(c1, cs[4]))
	// 42 + (500+400+300+200+100)
	f.wantMetrics(map[string]float64{
		kRecorded: 6, kReconcileCount: 6, kReconcileSum: 1542, kE2ECount: 6, kE2ESum: 1542, kGitHubOK: 2,
	})
}

func TestMergeCommitRecordsFirstParentOnly(t *testing.T) {
	f := newFixture(t)
	c0 := f.commit(0, nil)
	f.baseline("app", c0)

	side1 := f.repo.Commit(githubtest.CommitSpec{Branch: "feature", Parents: []string{c0}, AuthorTime: at(50), Files: map[string]string{"f.yaml": "1"}})
	side2 := f.repo.Commit(githubtest.CommitSpec{Branch: "feature", AuthorTime: at(60), Files: map[string]string{"f.yaml": "2"}})
	m1 := f.commit(100, nil)
	merge := f.repo.Commit(githubtest.CommitSpec{Parents: []string{m1, side2}, AuthorTime: at(200), Files: map[string]string{"f.yaml": "2"}})

	res := f.mustProcess(dep("app", rev(merge), at(300)), tracker.Recorded)
	wantCommits(t, res.Commits, m1, merge)
	wantSamples(t, res.Samples, append(plain(m1, at(100), at(300)), plain(merge, at(200), at(300))...)...)
	for _, s := range res.Samples {
		if s.Commit == side1 || s.Commit == side2 {
			t.Errorf("side-branch commit %.8s recorded separately", s.Commit)
		}
	}
	f.wantLedger(map[string]string{"uid-app": rev(merge)})
	f.wantMetrics(map[string]float64{
		kRecorded: 2, kReconcileCount: 2, kReconcileSum: 300, kE2ECount: 2, kE2ESum: 300, kGitHubOK: 1,
	})
}

func TestRangeOverCapIsTruncated(t *testing.T) {
	f := newFixture(t)
	c0 := f.commit(0, nil)
	f.baseline("app", c0)
	var cs []string
	for i := range 260 {
		cs = append(cs, f.commit(10+i, nil))
	}
	head := cs[259]
	res := f.mustProcess(dep("app", rev(head), at(300)), tracker.Recorded)
	if len(res.Commits) != commits.MaxRangeCommits {
		t.Fatalf("recorded %d commits, want %d", len(res.Commits), commits.MaxRangeCommits)
	}
	// The newest 250 are kept.
	wantCommits(t, res.Commits, cs[10:]...)
	var reconcileSum float64
	for i := 10; i < 260; i++ {
		reconcileSum += float64(300 - (10 + i))
	}
	// Pages 1 (status, oldest 100), then newest first 3 and 2.
	f.wantRequests(comparePath(c0, head), comparePath(c0, head), comparePath(c0, head))
	f.wantLedger(map[string]string{"uid-app": rev(head)})
	f.wantMetrics(map[string]float64{
		kRecorded: 250, kTruncated: 10, kReconcileCount: 250, kReconcileSum: reconcileSum,
		kE2ECount: 250, kE2ESum: reconcileSum, kGitHubOK: 3,
	})
}

func TestRollbackAndForcePushRecordNothing(t *testing.T) {
	tests := []struct {
		name   string
		status string
		// lookups counts the GitHub calls once next is recorded: after a rollback the mark stays, so the commit
		// after it is found from the applied revision less the way to the mark.
		lookups float64
		// setup builds history from c0 and returns the recorded revision, the applied one and a commit after it.
		setup func(f *fixture, c0 string) (recorded, applied, next string)
	}{
		{
			name: "rollback (behind)", status: string(commits.Behind), lookups: 4,
			setup: func(f *fixture, c0 string) (string, string, string) {
				c1 := f.commit(100, nil)
				c2 := f.commit(200, nil)
				f.repo.ForceBranch("main", c1) // git revert would add a commit; a rollback re-points
				return c2, c1, f.commit(300, nil)
			},
		},
		{
			name: "force-push (diverged)", status: string(commits.Diverged), lookups: 2,
			setup: func(f *fixture, c0 string) (string, string, string) {
				c1 := f.commit(100, nil)
				r1 := f.repo.Commit(githubtest.CommitSpec{Branch: "rewrite", Parents: []string{c0}, AuthorTime: at(200), Files: map[string]string{"app.yaml": "rewritten"}})
				f.repo.ForceBranch("main", r1)
				return c1, r1, f.commit(300, nil)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			c0 := f.commit(0, nil)
			recorded, applied, next := tt.setup(f, c0)
			f.baseline("app", recorded)

			res := f.mustProcess(dep("app", rev(applied), at(250)), tracker.NotRecorded)
			if len(res.Samples) != 0 || len(res.Commits) != 0 {
				t.Errorf("%d samples, %d commits recorded, want none", len(res.Samples), len(res.Commits))
			}
			// The ledger follows Flux's revision; a rollback keeps the mark of what was recorded.
			f.wantLedger(map[string]string{"uid-app": rev(applied)})
			f.wantRequests(comparePath(recorded, applied))
			f.wantMetrics(map[string]float64{kNotRecorded(tt.status): 1, kGitHubOK: 1})
			// Seeing it again is not another rollback.
			f.mustProcess(dep("app", rev(applied), at(250)), tracker.Unchanged)

			res = f.mustProcess(dep("app", rev(next), at(360)), tracker.Recorded)
			wantCommits(t, res.Commits, next)
			wantSamples(t, res.Samples, plain(next, at(300), at(360))...)
			f.wantMetrics(map[string]float64{
				kNotRecorded(tt.status): 1, kGitHubOK: tt.lookups,
				kRecorded: 1, kReconcileCount: 1, kReconcileSum: 60, kE2ECount: 1, kE2ESum: 60,
			})
		})
	}
}

func TestInvalidRevisionKeepsLastGood(t *testing.T) {
	f := newFixture(t)
	c0 := f.commit(0, nil)
	f.baseline("app", c0)

	for _, bad := range []string{"main@sha1:not-a-sha", "main@md5:" + strings.Repeat("a", 32), "main"} {
		res, err := f.process(dep("app", bad, at(50)))
		if !errors.Is(err, tracker.ErrPermanent) || res.Outcome != tracker.NotRecorded {
			t.Errorf("Process(%q) = %q, %v; want not_recorded, ErrPermanent", bad, res.Outcome, err)
		}
	}
	f.wantLedger(map[string]string{"uid-app": rev(c0)})
	f.wantRequests()
	f.wantMetrics(map[string]float64{kErr(telemetry.ReasonInvalidRevision): 3})

	// The next good revision delivers everything since the last good one.
	c1, c2 := f.commit(100, nil), f.commit(200, nil)
	res := f.mustProcess(dep("app", rev(c2), at(300)), tracker.Recorded)
	wantCommits(t, res.Commits, c1, c2)
	wantSamples(t, res.Samples, append(plain(c1, at(100), at(300)), plain(c2, at(200), at(300))...)...)
	f.wantLedger(map[string]string{"uid-app": rev(c2)})
	f.wantMetrics(map[string]float64{
		kErr(telemetry.ReasonInvalidRevision): 3, kGitHubOK: 1,
		kRecorded: 2, kReconcileCount: 2, kReconcileSum: 300, kE2ECount: 2, kE2ESum: 300,
	})

	// An invalid revision on first sight is not a baseline either.
	if _, err := f.process(dep("other", "garbage", time.Time{})); !errors.Is(err, tracker.ErrPermanent) {
		t.Errorf("first sight of an invalid revision: %v, want ErrPermanent", err)
	}
	f.wantLedger(map[string]string{"uid-app": rev(c2)})
}

func TestCommitNotInRepository(t *testing.T) {
	f := newFixture(t)
	c0 := f.commit(0, nil)
	f.baseline("app", c0)
	ghost := strings.Repeat("ab", 20)
	res, err := f.process(dep("app", rev(ghost), at(50)))
	if !errors.Is(err, tracker.ErrPermanent) || !errors.Is(err, commits.ErrNotFound) || res.Outcome != tracker.NotRecorded {
		t.Fatalf("Process(unknown commit) = %q, %v; want not_recorded, ErrPermanent wrapping ErrNotFound", res.Outcome, err)
	}
	f.wantLedger(map[string]string{"uid-app": rev(c0)})
	f.wantRequests(comparePath(c0, ghost)+" → 404", "GET /repos/acme/manifests/commits/"+ghost+" → 422")
	// A 404 is GitHub's definitive answer, not a failed call; GitHub answers an unknown commit with 422.
	f.wantMetrics(map[string]float64{kErr(telemetry.ReasonCommitNotFound): 1, kGitHubOK: 1, kGitHubError: 1})
}

func TestRecordedCommitGoneTakesNewBaseline(t *testing.T) {
	f := newFixture(t)
	c0 := f.commit(0, nil)
	ghost := strings.Repeat("cd", 20) // a recorded commit since force-pushed away and collected
	f.baseline("app", ghost)
	res := f.mustProcess(dep("app", rev(c0), at(50)), tracker.NotRecorded)
	if len(res.Samples) != 0 {
		t.Errorf("recorded %d samples, want none", len(res.Samples))
	}
	f.wantLedger(map[string]string{"uid-app": rev(c0)})
	f.wantMetrics(map[string]float64{kErr(telemetry.ReasonCommitNotFound): 1, kGitHubOK: 2})

	// From the new baseline on, commits record normally.
	c1 := f.commit(100, nil)
	res = f.mustProcess(dep("app", rev(c1), at(160)), tracker.Recorded)
	wantSamples(t, res.Samples, plain(c1, at(100), at(160))...)
}

func TestGitHubOutageIsRetriedAndRecordedOnce(t *testing.T) {
	f := newFixture(t)
	c0 := f.commit(0, nil)
	f.baseline("app", c0)
	c1 := f.commit(100, nil)
	d := dep("app", rev(c1), at(130))

	f.srv.FailNext(ghRetries+1, http.StatusInternalServerError)
	res, err := f.process(d)
	if err == nil || errors.Is(err, tracker.ErrPermanent) {
		t.Fatalf("Process during an outage: %v; want a retryable (non-permanent) error", err)
	}
	if len(res.Samples) != 0 || len(res.Commits) != 0 {
		t.Errorf("outage recorded %d samples, %d commits", len(res.Samples), len(res.Commits))
	}
	fail := comparePath(c0, c1) + " → 500"
	f.wantRequests(fail, fail, fail)
	f.wantLedger(map[string]string{"uid-app": rev(c0)})
	f.wantMetrics(map[string]float64{kErr(telemetry.ReasonGitHub): 1, kGitHubError: 3})

	// The controller retries: recorded once, and only once.
	res = f.mustProcess(d, tracker.Recorded)
	wantSamples(t, res.Samples, plain(c1, at(100), at(130))...)
	f.mustProcess(d, tracker.Unchanged)
	f.wantLedger(map[string]string{"uid-app": rev(c1)})
	f.wantMetrics(map[string]float64{
		kErr(telemetry.ReasonGitHub): 1, kGitHubError: 3, kGitHubOK: 1,
		kRecorded: 1, kReconcileCount: 1, kReconcileSum: 30, kE2ECount: 1, kE2ESum: 30,
	})
}

func TestAppliedTime(t *testing.T) {
	tests := []struct {
		name     string
		applied  time.Time // from Flux; zero when Flux did not say
		want     time.Time
		fromFlux bool
	}{
		{"from Flux's Ready condition", at(142), at(142), true},
		{"fallback to the observation time", time.Time{}, at(1000).Add(time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			c0 := f.commit(0, nil)
			f.baseline("app", c0)
			c1 := f.commit(100, nil)
			f.clock.Step(time.Hour)
			res := f.mustProcess(dep("app", rev(c1), tt.applied), tracker.Recorded)
			if !res.Applied.Equal(tt.want) || res.AppliedFromFlux != tt.fromFlux {
				t.Errorf("applied %v (from Flux %v), want %v (from Flux %v)", res.Applied, res.AppliedFromFlux, tt.want, tt.fromFlux)
			}
			wantSamples(t, res.Samples, plain(c1, at(100), tt.want)...)
			sec := tt.want.Sub(at(100)).Seconds()
			f.wantMetrics(map[string]float64{
				kRecorded: 1, kReconcileCount: 1, kReconcileSum: sec, kE2ECount: 1, kE2ESum: sec, kGitHubOK: 1,
			})
		})
	}
}

func TestClockSkewIsClampedAndCounted(t *testing.T) {
	f := newFixture(t)
	c0 := f.commit(0, nil)
	f.baseline("app", c0)
	c1 := f.commit(100, nil)
	// Flux's clock says the commit was applied before it was made.
	res := f.mustProcess(dep("app", rev(c1), at(90)), tracker.Recorded)
	wantSamples(t, res.Samples,
		smp(latency.StageReconcile, c1, "", at(100), at(90), 0),
		smp(latency.StageE2E, c1, "", at(100), at(90), 0))
	f.wantMetrics(map[string]float64{
		kRecorded: 1, kReconcileCount: 1, kReconcileSum: 0, kE2ECount: 1, kE2ESum: 0, kGitHubOK: 1,
		kSkew(string(latency.StageReconcile)): 1, kSkew(string(latency.StageE2E)): 1,
	})
}

// exporterInfo renders an exporter-info.json listing upstream commits as sha → seconds after t0.
func exporterInfo(upstream ...any) string {
	var entries []string
	for i := 0; i < len(upstream); i += 2 {
		entries = append(entries, fmt.Sprintf(`{"hash":%q,"message":"up","author":"dev","email":"dev@example.com","time":%q}`,
			upstream[i].(string), at(upstream[i+1].(int)).Format(time.RFC3339)))
	}
	// The exported upstream head is the newest commit listed, as an exporter writes it.
	head := ""
	if len(upstream) > 0 {
		head = upstream[len(upstream)-2].(string)
	}
	return fmt.Sprintf(`{"commit":%q,"commits_since_last_export":[`, head) + strings.Join(entries, ",") + `],"export_build_link":"https://ci/1"}`
}

func TestExporterInfo(t *testing.T) {
	const u1, u2, u3 = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222", "3333333333333333333333333333333333333333"
	oversize := `{"commits_since_last_export":[],"pad":"` + strings.Repeat("x", 1<<20) + `"}`

	type want struct {
		samples  func(c1 string) []string
		metrics  map[string]float64
		requests func(c0, c1 string) []string
	}
	noUpstream := want{
		samples:  func(c1 string) []string { return plain(c1, at(100), at(200)) },
		requests: func(c0, c1 string) []string { return []string{comparePath(c0, c1), contentsPath(infoPath)} },
	}
	tests := []struct {
		name  string
		files map[string]string // in the delivered commit
		// annotation, when set, is the object's exporter-info-path annotation.
		annotation *string
		want       want
		errors     float64 // exporter_info errors counted
	}{
		{
			name:  "good file",
			files: map[string]string{infoPath: exporterInfo(u1, 10, u2, 40)},
			want: want{
				samples: func(c1 string) []string {
					return []string{
						smp(latency.StageReconcile, c1, "", at(100), at(200), 100*time.Second),
						smp(latency.StageExport, c1, u1, at(10), at(100), 90*time.Second),
						smp(latency.StageE2E, c1, u1, at(10), at(200), 190*time.Second),
						smp(latency.StageExport, c1, u2, at(40), at(100), 60*time.Second),
						smp(latency.StageE2E, c1, u2, at(40), at(200), 160*time.Second),
					}
				},
				metrics: map[string]float64{
					kRecorded: 1, kReconcileCount: 1, kReconcileSum: 100,
					kExportCount: 2, kExportSum: 150, kE2ECount: 2, kE2ESum: 350, kGitHubOK: 3,
				},
				requests: noUpstream.requests,
			},
		},
		{
			name:  "missing file",
			files: nil,
			want: want{samples: noUpstream.samples, requests: func(c0, c1 string) []string {
				return []string{comparePath(c0, c1), contentsPath(infoPath) + " → 404"}
			}},
		},
		{
			name:   "bad JSON",
			files:  map[string]string{infoPath: `{"commits_since_last_export": [`},
			want:   noUpstream,
			errors: 1,
		},
		{
			name:   "upstream commit without a time",
			files:  map[string]string{infoPath: `{"commits_since_last_export":[{"hash":"` + u1 + `"}]}`},
			want:   noUpstream,
			errors: 1,
		},
		{
			name:   "over 1 MiB",
			files:  map[string]string{infoPath: oversize},
			want:   noUpstream,
			errors: 1,
		},
		{
			name:       "annotation overrides the path",
			files:      map[string]string{infoPath: exporterInfo(u3, 50), "deploy/info.json": exporterInfo(u1, 10)},
			annotation: ptr("deploy/info.json"),
			want: want{
				samples: func(c1 string) []string {
					return []string{
						smp(latency.StageReconcile, c1, "", at(100), at(200), 100*time.Second),
						smp(latency.StageExport, c1, u1, at(10), at(100), 90*time.Second),
						smp(latency.StageE2E, c1, u1, at(10), at(200), 190*time.Second),
					}
				},
				metrics: map[string]float64{
					kRecorded: 1, kReconcileCount: 1, kReconcileSum: 100,
					kExportCount: 1, kExportSum: 90, kE2ECount: 1, kE2ESum: 190, kGitHubOK: 3,
				},
				requests: func(c0, c1 string) []string {
					return []string{comparePath(c0, c1), contentsPath("deploy/info.json")}
				},
			},
		},
		{
			name:       "empty annotation disables it",
			files:      map[string]string{infoPath: exporterInfo(u1, 10)},
			annotation: ptr(""),
			want: want{samples: noUpstream.samples, requests: func(c0, c1 string) []string {
				return []string{comparePath(c0, c1)}
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, withExporterInfo())
			c0 := f.commit(0, nil)
			f.baseline("app", c0)
			c1 := f.commit(100, tt.files)
			d := dep("app", rev(c1), at(200))
			if tt.annotation != nil {
				d.ExporterInfoPath, d.HasExporterInfoPath = *tt.annotation, true
			}
			res := f.mustProcess(d, tracker.Recorded)
			wantSamples(t, res.Samples, tt.want.samples(c1)...)
			f.wantRequests(tt.want.requests(c0, c1)...)
			f.wantLedger(map[string]string{"uid-app": rev(c1)})
			metrics := tt.want.metrics
			if metrics == nil { // the baseline also read exporter-info once
				calls := float64(len(tt.want.requests(c0, c1))) + 1 // and the baseline's exporter-info read
				metrics = map[string]float64{kRecorded: 1, kReconcileCount: 1, kReconcileSum: 100, kE2ECount: 1, kE2ESum: 100, kGitHubOK: calls}
			}
			if tt.errors > 0 {
				metrics[kErr(telemetry.ReasonExporterInfo)] = tt.errors
			}
			f.wantMetrics(metrics)
		})
	}
}

// TestUpstreamListedTwice: an upstream commit named by two manifests commits of one apply is measured once,
// from the first manifests commit that carried it.
func TestUpstreamListedTwice(t *testing.T) {
	const u1, u2, u3 = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222", "3333333333333333333333333333333333333333"
	f := newFixture(t, withExporterInfo())
	c0 := f.commit(0, nil)
	f.baseline("app", c0)
	c1 := f.commit(100, map[string]string{infoPath: exporterInfo(u1, 10, u2, 20)})
	c2 := f.commit(200, map[string]string{infoPath: exporterInfo(u2, 20, u3, 150)})
	res := f.mustProcess(dep("app", rev(c2), at(300)), tracker.Recorded)
	wantCommits(t, res.Commits, c1, c2)
	wantSamples(t, res.Samples,
		smp(latency.StageReconcile, c1, "", at(100), at(300), 200*time.Second),
		smp(latency.StageExport, c1, u1, at(10), at(100), 90*time.Second),
		smp(latency.StageE2E, c1, u1, at(10), at(300), 290*time.Second),
		smp(latency.StageExport, c1, u2, at(20), at(100), 80*time.Second),
		smp(latency.StageE2E, c1, u2, at(20), at(300), 280*time.Second),
		smp(latency.StageReconcile, c2, "", at(200), at(300), 100*time.Second),
		smp(latency.StageExport, c2, u3, at(150), at(200), 50*time.Second),
		smp(latency.StageE2E, c2, u3, at(150), at(300), 150*time.Second),
	)
	if got := res.Commits[1].Upstream; len(got) != 2 {
		t.Errorf("c2 carries %d upstream commits, want 2 (u2 is listed, just not measured twice)", len(got))
	}
	f.wantRequests(comparePath(c0, c2), contentsPath(infoPath), contentsPath(infoPath))
	f.wantMetrics(map[string]float64{
		kRecorded: 2, kReconcileCount: 2, kReconcileSum: 300,
		kExportCount: 3, kExportSum: 220, kE2ECount: 3, kE2ESum: 720, kGitHubOK: 4, // with the baseline's exporter-info read
	})
}

func ptr[T any](v T) *T { return &v }

func TestRepositoryOverride(t *testing.T) {
	f := newFixture(t)
	c0 := f.commit(0, nil)
	d := dep("app", rev(c0), at(0))
	// The source URL names a repository GitHub does not have; the annotation names the real one.
	d.RepositoryURL, d.RepositoryOverride = "https://github.com/acme/renamed.git", "acme/manifests"
	f.mustProcess(d, tracker.Baseline)
	c1 := f.commit(100, nil)
	d.Revision, d.Applied = rev(c1), at(120)
	res := f.mustProcess(d, tracker.Recorded)
	wantSamples(t, res.Samples, plain(c1, at(100), at(120))...)
	f.wantRequests(comparePath(c0, c1))
	byRepo := attribute.String(telemetry.AttrRepository, repoURL)
	if got := f.tel.Counter(t, telemetry.MetricCommitsRecorded, byRepo); got != 1 {
		t.Errorf("commits recorded for %s = %d, want 1 (the override, not the source URL)", repoURL, got)
	}
}

func TestRepositoryNotServed(t *testing.T) {
	tests := []struct {
		name     string
		url      string
		override string
	}{
		{"unknown host", "https://gitlab.example.com/acme/manifests.git", ""},
		{"unparsable URL", "not a url", ""},
		{"bad override", repoURL, "just-a-name"},
		{"no source", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			c0 := f.commit(0, nil)
			f.baseline("app", c0)
			c1 := f.commit(100, nil)
			d := dep("app", rev(c1), at(120))
			d.RepositoryURL, d.RepositoryOverride = tt.url, tt.override
			res, err := f.process(d)
			if !errors.Is(err, tracker.ErrPermanent) || res.Outcome != tracker.NotRecorded {
				t.Fatalf("Process = %q, %v; want not_recorded, ErrPermanent", res.Outcome, err)
			}
			f.wantRequests()
			f.wantLedger(map[string]string{"uid-app": rev(c0)})
			f.wantMetrics(map[string]float64{kErr(telemetry.ReasonRepositoryURL): 1})
		})
	}
}

// failingLedger fails every write while fail is set.
type failingLedger struct {
	ledger.Ledger
	fail atomic.Bool
}

func (l *failingLedger) Swap(ctx context.Context, uid string, prev *ledger.Entry, e ledger.Entry) error {
	if l.fail.Load() {
		return errors.New("apiserver unavailable")
	}
	return l.Ledger.Swap(ctx, uid, prev, e)
}

func TestLedgerFailureEmitsNothing(t *testing.T) {
	led := &failingLedger{Ledger: ledger.NewMemory()}
	f := newFixture(t, withLedger(led))
	c0 := f.commit(0, nil)
	f.baseline("app", c0)
	c1 := f.commit(100, nil)
	d := dep("app", rev(c1), at(150))

	led.fail.Store(true)
	res, err := f.process(d)
	if err == nil || errors.Is(err, tracker.ErrPermanent) {
		t.Fatalf("Process with a failing ledger: %v; want a retryable error", err)
	}
	if len(res.Samples) != 0 || res.Outcome == tracker.Recorded {
		t.Errorf("result %q with %d samples, want nothing recorded", res.Outcome, len(res.Samples))
	}
	f.wantLedger(map[string]string{"uid-app": rev(c0)})
	// Exactly once: nothing is emitted before the checkpoint holds.
	f.wantMetrics(map[string]float64{kErr(telemetry.ReasonLedger): 1, kGitHubOK: 1})

	led.fail.Store(false)
	res = f.mustProcess(d, tracker.Recorded)
	wantSamples(t, res.Samples, plain(c1, at(100), at(150))...)
	f.mustProcess(d, tracker.Unchanged)
	// The retry is served from the provider's cache.
	f.wantMetrics(map[string]float64{
		kErr(telemetry.ReasonLedger): 1, kGitHubOK: 1, kGitHubCacheHit: 1,
		kRecorded: 1, kReconcileCount: 1, kReconcileSum: 50, kE2ECount: 1, kE2ESum: 50,
	})
}

func TestForgetAndPrune(t *testing.T) {
	f := newFixture(t)
	c0 := f.commit(0, nil)
	for _, name := range []string{"a", "b", "c", "d"} {
		f.baseline(name, c0)
	}
	ctx := context.Background()
	if err := f.trk.Forget(ctx, flux.KindKustomization, "apps", "b"); err != nil {
		t.Fatal(err)
	}
	// Another kind or namespace with the same name is a different object.
	if err := f.trk.Forget(ctx, "HelmRelease", "apps", "a"); err != nil {
		t.Fatal(err)
	}
	if err := f.trk.Forget(ctx, flux.KindKustomization, "other", "a"); err != nil {
		t.Fatal(err)
	}
	f.wantLedger(map[string]string{"uid-a": rev(c0), "uid-c": rev(c0), "uid-d": rev(c0)})

	boom := errors.New("apiserver down")
	if err := f.trk.Prune(ctx, func(string, ledger.Entry) (bool, error) { return false, boom }); !errors.Is(err, boom) {
		t.Errorf("Prune with a failing check: %v, want %v", err, boom)
	}
	if err := f.trk.Prune(ctx, func(_ string, e ledger.Entry) (bool, error) { return e.Name == "c", nil }); err != nil {
		t.Fatal(err)
	}
	f.wantLedger(map[string]string{"uid-c": rev(c0)})

	// A forgotten object that comes back is a first sight again.
	f.mustProcess(dep("a", rev(c0), at(0)), tracker.Baseline)
}

func TestSpans(t *testing.T) {
	f := newFixture(t)
	c0 := f.commit(0, nil)
	f.mustProcess(dep("app", "", time.Time{}), tracker.Pending)
	f.baseline("app", c0)
	c1 := f.commit(100, nil)
	f.mustProcess(dep("app", rev(c1), at(130)), tracker.Recorded)
	f.srv.FailNext(2, http.StatusNotFound)
	c2 := f.commit(200, nil)
	if _, err := f.process(dep("app", rev(c2), at(230))); !errors.Is(err, tracker.ErrPermanent) {
		t.Fatalf("want a permanent error, got %v", err)
	}

	spans := f.tel.Spans.GetSpans()
	var applies []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == applySpan {
			applies = append(applies, s)
		}
	}
	wantOutcomes := []struct {
		outcome string
		commits int64
		errored bool
	}{{"pending", 0, false}, {"baseline", 0, false}, {"recorded", 1, false}, {"not_recorded", 0, true}}
	if len(applies) != len(wantOutcomes) {
		t.Fatalf("%d %s spans, want one per Process (%d)", len(applies), applySpan, len(wantOutcomes))
	}
	for i, w := range wantOutcomes {
		s := applies[i]
		attrs := attribute.NewSet(s.Attributes...)
		if v, _ := attrs.Value("flux_commit_tracker.outcome"); v.AsString() != w.outcome {
			t.Errorf("span %d outcome %q, want %q", i, v.AsString(), w.outcome)
		}
		if v, _ := attrs.Value("flux_commit_tracker.commits"); v.AsInt64() != w.commits {
			t.Errorf("span %d commits %d, want %d", i, v.AsInt64(), w.commits)
		}
		if v, _ := attrs.Value("flux.name"); v.AsString() != "app" {
			t.Errorf("span %d flux.name %q", i, v.AsString())
		}
		if errored := s.Status.Code == codes.Error; errored != w.errored {
			t.Errorf("span %d status %v, want error %v", i, s.Status, w.errored)
		}
	}
	// The GitHub calls of an apply are its children, in its trace.
	for i, ap := range applies[2:] {
		var children []string
		for _, s := range spans {
			if s.Parent.SpanID() == ap.SpanContext.SpanID() {
				if s.SpanContext.TraceID() != ap.SpanContext.TraceID() {
					t.Errorf("child %s in trace %s, want %s", s.Name, s.SpanContext.TraceID(), ap.SpanContext.TraceID())
				}
				children = append(children, s.Name)
			}
		}
		want := []string{compareSpan}
		if i == 1 { // the not-found range also checks whether the new head exists
			want = append(want, commitSpan)
		}
		if !slices.Equal(children, want) {
			t.Errorf("apply span %d children %q, want %q", i+2, children, want)
		}
		apAttrs := attribute.NewSet(ap.Attributes...)
		if v, _ := apAttrs.Value(attribute.Key(telemetry.AttrRepository)); v.AsString() != repoURL {
			t.Errorf("apply span %d repository %q", i+2, v.AsString())
		}
	}
	// Separate applies are separate traces.
	if applies[2].SpanContext.TraceID() == applies[3].SpanContext.TraceID() {
		t.Error("two applies share a trace")
	}
}

func TestExporterInfoLeftInPlaceIsNotRecordedAgain(t *testing.T) {
	const u1, u2 = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
	f := newFixture(t, withExporterInfo())
	// The file at the baseline was exported before the tracker looked: later commits that keep it are not exports.
	c0 := f.commit(0, map[string]string{infoPath: exporterInfo(u1, 10)})
	f.baseline("app", c0)
	c1 := f.commit(100, map[string]string{"app.yaml": "hand edit"})
	res := f.mustProcess(dep("app", rev(c1), at(160)), tracker.Recorded)
	wantSamples(t, res.Samples, plain(c1, at(100), at(160))...)

	// A new export records its upstream commit once; the hand edit after it, which keeps the file, records none.
	c2 := f.commit(200, map[string]string{infoPath: exporterInfo(u2, 150)})
	c3 := f.commit(300, map[string]string{"app.yaml": "another hand edit"})
	res = f.mustProcess(dep("app", rev(c3), at(400)), tracker.Recorded)
	wantSamples(t, res.Samples,
		smp(latency.StageReconcile, c2, "", at(200), at(400), 200*time.Second),
		smp(latency.StageExport, c2, u2, at(150), at(200), 50*time.Second),
		smp(latency.StageE2E, c2, u2, at(150), at(400), 250*time.Second),
		smp(latency.StageReconcile, c3, "", at(300), at(400), 100*time.Second),
		smp(latency.StageE2E, c3, "", at(300), at(400), 100*time.Second),
	)
	// And across applies: the next hand edit still sees u2's export as old.
	c4 := f.commit(500, map[string]string{"app.yaml": "third hand edit"})
	res = f.mustProcess(dep("app", rev(c4), at(530)), tracker.Recorded)
	wantSamples(t, res.Samples, plain(c4, at(500), at(530))...)
}

func TestHealthCheckedObjectsRecordWhenHealthy(t *testing.T) {
	f := newFixture(t)
	c0 := f.commit(0, nil)
	f.baseline("app", c0)
	c1 := f.commit(100, nil)
	// Flux applied c1 and is checking health: Ready does not name c1 yet.
	d := dep("app", rev(c1), time.Time{})
	d.WaitsForHealth = true
	f.mustProcess(d, tracker.AwaitingHealth)
	f.wantLedger(map[string]string{"uid-app": rev(c0)})
	// Healthy at 190s: recorded then, with that time.
	d.Applied = at(190)
	res := f.mustProcess(d, tracker.Recorded)
	wantSamples(t, res.Samples, plain(c1, at(100), at(190))...)
	if !res.AppliedFromFlux {
		t.Error("applied-and-healthy time not taken from Flux")
	}
}
