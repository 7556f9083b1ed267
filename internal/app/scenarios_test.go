package app_test

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/github/githubtest"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/apptest"
)

const (
	reconcileCount = "flux_commit_tracker_flux_reconcile_time_seconds_count"
	reconcileSum   = "flux_commit_tracker_flux_reconcile_time_seconds_sum"
	e2eCount       = "flux_commit_tracker_e2e_export_time_seconds_count"
	e2eSum         = "flux_commit_tracker_e2e_export_time_seconds_sum"
	exportCount    = "flux_commit_tracker_kube_manifests_exporter_export_time_seconds_count"
	exportSum      = "flux_commit_tracker_kube_manifests_exporter_export_time_seconds_sum"
	errorsTotal    = "flux_commit_tracker_errors_total"
	skewTotal      = "flux_commit_tracker_clock_skew_total"
	notRecorded    = "flux_commit_tracker_range_not_recorded_total"
	recordedTotal  = "flux_commit_tracker_commits_recorded_total"
)

// wantCommits waits until exactly the given commits (sha → reconcile seconds) are logged as applied.
func wantCommits(t *testing.T, tr *apptest.Tracker, want map[string]float64) {
	t.Helper()
	eventually(t, 20*time.Second, fmt.Sprintf("%d commits recorded", len(want)), func() bool { return len(tr.Applied()) >= len(want) })
	got := tr.Applied()
	if len(got) != len(want) {
		t.Fatalf("recorded %d commits, want %d: %+v", len(got), len(want), got)
	}
	for _, c := range got {
		sec, ok := want[c.Commit]
		if !ok {
			t.Errorf("recorded unexpected commit %s", c.Commit)
			continue
		}
		if c.ReconcileSeconds != sec {
			t.Errorf("commit %s reconcile = %vs, want %vs", c.Commit, c.ReconcileSeconds, sec)
		}
		if !c.AppliedFromFlux {
			t.Errorf("commit %s: applied time not taken from Flux's Ready condition", c.Commit)
		}
		delete(want, c.Commit)
	}
}

func TestOneCommit(t *testing.T) {
	s := newScenario(t)
	c0 := s.commit(0, map[string]string{"app.yaml": "v0"})
	s.createKustomization("app", c0, 10)
	tr := s.startTracker()
	eventually(t, 10*time.Second, "baseline in ledger", func() bool { return s.ledgerRevision("app") == "main@sha1:"+c0 })
	if n := len(tr.Applied()); n != 0 {
		t.Fatalf("first sight recorded %d commits, want 0", n)
	}

	c1 := s.commit(100, map[string]string{"app.yaml": "v1"})
	s.apply("app", "main@sha1:"+c1, s.at(142))
	wantCommits(t, tr, map[string]float64{c1: 42})
	labels := []string{`flux_name="app"`, `k8s_cluster_name="test-cluster"`, `vcs_repository_url_full="https://github.com/acme/manifests"`, `flux_kind="Kustomization"`}
	if got := tr.Metric(reconcileCount, labels...); got != 1 {
		t.Errorf("reconcile count = %v, want 1", got)
	}
	if got := tr.Metric(reconcileSum, labels...); got != 42 {
		t.Errorf("reconcile sum = %v, want 42", got)
	}
	if got := tr.Metric(e2eSum, labels...); got != 42 {
		t.Errorf("e2e sum = %v, want 42 (no upstream: from the manifests commit)", got)
	}
	if got := tr.Metric(recordedTotal, labels...); got != 1 {
		t.Errorf("commits recorded = %v, want 1", got)
	}
	if got := s.ledgerRevision("app"); got != "main@sha1:"+c1 {
		t.Errorf("ledger revision = %q, want c1", got)
	}
}

func TestFiveCommitsInOneApply(t *testing.T) {
	s := newScenario(t)
	c0 := s.commit(0, map[string]string{"a": "0"})
	s.createKustomization("app", c0, 5)
	tr := s.startTracker()
	eventually(t, 10*time.Second, "baseline", func() bool { return s.ledgerRevision("app") != "" })

	want := map[string]float64{}
	var last string
	for i := 1; i <= 5; i++ {
		last = s.commit(i*10, map[string]string{"a": fmt.Sprint(i)})
		want[last] = float64(200 - i*10)
	}
	s.apply("app", "main@sha1:"+last, s.at(200))
	wantCommits(t, tr, want)
	if got := tr.Metric(reconcileCount, `flux_name="app"`); got != 5 {
		t.Errorf("reconcile count = %v, want 5", got)
	}
	if got := tr.Metric(reconcileSum, `flux_name="app"`); got != 190+180+170+160+150 {
		t.Errorf("reconcile sum = %v, want 850", got)
	}
	// One compare and one exporter-info lookup per commit, nothing else.
	var compares int
	for _, r := range s.gh.Requests() {
		if strings.Contains(r.Path, "/compare/") {
			compares++
		}
	}
	if compares != 1 {
		t.Errorf("compare calls = %d, want 1", compares)
	}
}

func TestRestartRecordsNothingTwiceAndCatchesUp(t *testing.T) {
	s := newScenario(t)
	c0 := s.commit(0, map[string]string{"a": "0"})
	s.createKustomization("app", c0, 5)
	first := s.startTracker()
	eventually(t, 10*time.Second, "baseline", func() bool { return s.ledgerRevision("app") != "" })
	c1 := s.commit(10, map[string]string{"a": "1"})
	s.apply("app", "main@sha1:"+c1, s.at(40))
	wantCommits(t, first, map[string]float64{c1: 30})
	first.Stop()

	// While the tracker is down Flux applies two more commits in one go.
	c2 := s.commit(50, map[string]string{"a": "2"})
	c3 := s.commit(60, map[string]string{"a": "3"})
	s.apply("app", "main@sha1:"+c3, s.at(100))

	second := s.startTracker()
	wantCommits(t, second, map[string]float64{c2: 50, c3: 40})
	second.Stop()

	// A third start with nothing new records nothing.
	third := s.startTracker()
	eventually(t, 10*time.Second, "ledger loaded", func() bool { return third.Logged("ledger loaded") })
	consistently(t, 2*time.Second, "no commit recorded again", func() bool { return len(third.Applied()) == 0 })
	if got := third.Metric(reconcileCount, `flux_name="app"`); got != 0 {
		t.Errorf("third run reconcile count = %v, want 0", got)
	}
}

func TestRollbackAndForcePushRecordNothing(t *testing.T) {
	s := newScenario(t)
	c0 := s.commit(0, map[string]string{"a": "0"})
	c1 := s.commit(10, map[string]string{"a": "1"})
	s.createKustomization("app", c1, 20)
	tr := s.startTracker()
	eventually(t, 10*time.Second, "baseline", func() bool { return s.ledgerRevision("app") == "main@sha1:"+c1 })

	// Rollback to the parent.
	s.apply("app", "main@sha1:"+c0, s.at(30))
	eventually(t, 10*time.Second, "rollback counted", func() bool { return tr.Metric(notRecorded, `status="behind"`) == 1 })

	// Force-push: a sibling of c1 on a rewritten main.
	forced := s.repo.Commit(githubCommit(s, 40, c0))
	s.repo.ForceBranch("main", forced)
	// Back to c1: it was the baseline before the rollback, so it is not recorded (once recorded, never again).
	s.apply("app", "main@sha1:"+c1, s.at(45))
	eventually(t, 10*time.Second, "ledger back at c1", func() bool { return s.ledgerRevision("app") == "main@sha1:"+c1 })
	s.apply("app", "main@sha1:"+forced, s.at(50))
	eventually(t, 10*time.Second, "force-push counted", func() bool { return tr.Metric(notRecorded, `status="diverged"`) == 1 })
	if got := tr.Applied(); len(got) != 0 {
		t.Fatalf("recorded %+v, want nothing: rollback, roll-forward to the mark and force-push deliver no new commit", got)
	}
	if s.ledgerRevision("app") != "main@sha1:"+forced {
		t.Errorf("ledger did not move to the force-pushed revision")
	}
}

func TestGitHubServerErrorThenSuccessRecordsOnce(t *testing.T) {
	s := newScenario(t)
	c0 := s.commit(0, nil)
	s.createKustomization("app", c0, 5)
	tr := s.startTracker()
	eventually(t, 10*time.Second, "baseline", func() bool { return s.ledgerRevision("app") != "" })
	c1 := s.commit(10, map[string]string{"a": "1"})
	s.gh.ClearRequests()
	s.gh.FailNext(1, 500)
	s.apply("app", "main@sha1:"+c1, s.at(25))
	wantCommits(t, tr, map[string]float64{c1: 15})
	var statuses []int
	for _, r := range s.gh.Requests() {
		if strings.Contains(r.Path, "/compare/") {
			statuses = append(statuses, r.Status)
		}
	}
	if fmt.Sprint(statuses) != "[500 200]" {
		t.Errorf("compare statuses = %v, want [500 200]", statuses)
	}
	consistently(t, time.Second, "recorded once", func() bool { return tr.Metric(reconcileCount, `flux_name="app"`) == 1 })
}

func TestRateLimitWaitsForRetryAfter(t *testing.T) {
	s := newScenario(t)
	c0 := s.commit(0, nil)
	s.createKustomization("app", c0, 5)
	tr := s.startTracker()
	eventually(t, 10*time.Second, "baseline", func() bool { return s.ledgerRevision("app") != "" })
	c1 := s.commit(10, nil)
	s.gh.ClearRequests()
	s.gh.RateLimitNext(429, 2*time.Second)
	s.apply("app", "main@sha1:"+c1, s.at(20))
	wantCommits(t, tr, map[string]float64{c1: 10})
	reqs := s.gh.Requests()
	if len(reqs) < 2 || reqs[0].Status != 429 {
		t.Fatalf("requests = %+v, want a 429 first", reqs)
	}
	for _, r := range reqs[1:] {
		if gap := r.Time.Sub(reqs[0].Time); gap < 2*time.Second-50*time.Millisecond {
			t.Errorf("request %s %s sent %v after the 429, before retry-after (2s)", r.Method, r.Path, gap)
		}
	}
}

func TestUnknownCommitAndBadRevisionAreCounted(t *testing.T) {
	s := newScenario(t)
	c0 := s.commit(0, nil)
	s.createKustomization("app", c0, 5)
	tr := s.startTracker()
	eventually(t, 10*time.Second, "baseline", func() bool { return s.ledgerRevision("app") != "" })

	s.apply("app", "main@sha1:"+strings.Repeat("ab", 20), s.at(10))
	eventually(t, 10*time.Second, "unknown commit counted", func() bool { return tr.Metric(errorsTotal, `reason="commit_not_found"`) == 1 })
	s.apply("app", "main@sha1:not-a-sha", s.at(20))
	eventually(t, 10*time.Second, "bad revision counted", func() bool { return tr.Metric(errorsTotal, `reason="invalid_revision"`) == 1 })

	// The next good revision records everything since the last good one.
	c1 := s.commit(30, nil)
	s.apply("app", "main@sha1:"+c1, s.at(90))
	wantCommits(t, tr, map[string]float64{c1: 60})
}

func TestExporterInfoUpstreamStages(t *testing.T) {
	s := newScenario(t)
	c0 := s.commit(0, nil)
	s.createKustomization("app", c0, 5)
	tr := s.startTracker()
	eventually(t, 10*time.Second, "baseline", func() bool { return s.ledgerRevision("app") != "" })

	u1, u2 := strings.Repeat("1a", 20), strings.Repeat("2b", 20)
	info := fmt.Sprintf(`{"commit":%q,"commits_since_last_export":[
		{"hash":%q,"message":"feat","author":"A","email":"a@example.com","time":%q},
		{"hash":%q,"message":"fix","author":"B","email":"b@example.com","time":%q}],
		"export_build_link":"https://ci.example.com/1"}`, u2, u1, s.at(100).Format(time.RFC3339), u2, s.at(150).Format(time.RFC3339))
	good := s.commit(200, map[string]string{"exporter-info.json": info})
	bad := s.commit(210, map[string]string{"exporter-info.json": `{"commit": 42`})
	s.apply("app", "main@sha1:"+bad, s.at(300))
	wantCommits(t, tr, map[string]float64{good: 100, bad: 90})

	if got := tr.Metric(exportCount, `flux_name="app"`); got != 2 {
		t.Errorf("export count = %v, want 2", got)
	}
	if got := tr.Metric(exportSum, `flux_name="app"`); got != 100+50 {
		t.Errorf("export sum = %v, want 150", got)
	}
	// e2e: u1 (200s) and u2 (150s) from the good commit, the bad commit's own 90s.
	if got := tr.Metric(e2eCount, `flux_name="app"`); got != 3 {
		t.Errorf("e2e count = %v, want 3", got)
	}
	if got := tr.Metric(e2eSum, `flux_name="app"`); got != 200+150+90 {
		t.Errorf("e2e sum = %v, want 440", got)
	}
	if got := tr.Metric(errorsTotal, `reason="exporter_info"`); got != 1 {
		t.Errorf("exporter_info errors = %v, want 1", got)
	}
}

func TestSkewedClockIsClamped(t *testing.T) {
	s := newScenario(t)
	c0 := s.commit(0, nil)
	s.createKustomization("app", c0, 5)
	tr := s.startTracker()
	eventually(t, 10*time.Second, "baseline", func() bool { return s.ledgerRevision("app") != "" })
	c1 := s.commit(100, nil)
	s.apply("app", "main@sha1:"+c1, s.at(70)) // Flux's clock is 30s behind the committer's
	wantCommits(t, tr, map[string]float64{c1: 0})
	if got := tr.Metric(skewTotal, `flux_name="app"`); got != 2 {
		t.Errorf("clock skew = %v, want 2 (reconcile and e2e)", got)
	}
	if got := tr.Metric(reconcileSum, `flux_name="app"`); got != 0 || math.Signbit(got) {
		t.Errorf("reconcile sum = %v, want 0", got)
	}
}

func TestManyKustomizationsShareLookups(t *testing.T) {
	s := newScenario(t)
	c0 := s.commit(0, nil)
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for _, n := range names {
		s.createKustomization(n, c0, 5)
	}
	tr := s.startTracker()
	eventually(t, 10*time.Second, "baselines", func() bool {
		for _, n := range names {
			if s.ledgerRevision(n) == "" {
				return false
			}
		}
		return true
	})
	c1 := s.commit(10, nil)
	s.gh.ClearRequests()
	for i, n := range names {
		s.apply(n, "main@sha1:"+c1, s.at(20+i))
	}
	eventually(t, 20*time.Second, "all recorded", func() bool { return len(tr.Applied()) == len(names) })
	var recorded []string
	for _, c := range tr.Applied() {
		recorded = append(recorded, c.Name)
	}
	sort.Strings(recorded)
	if fmt.Sprint(recorded) != fmt.Sprint(names) {
		t.Errorf("recorded objects %v, want %v", recorded, names)
	}
	if n := len(s.gh.Requests()); n > 2 {
		t.Errorf("GitHub calls for one new revision on %d objects = %d, want ≤ 2: %+v", len(names), n, s.gh.Requests())
	}
}

// githubCommit is a commit on c0 made after a force-push, committed at t0+sec.
func githubCommit(s *scenario, sec int, parent string) githubtest.CommitSpec {
	return githubtest.CommitSpec{CommitterTime: s.at(sec), AuthorTime: s.at(sec), Parents: []string{parent}, Branch: "rewrite", Files: map[string]string{"a": "forced"}}
}
