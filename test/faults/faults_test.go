// Package faults_test runs the tracker binary as real processes against a real kube-apiserver and a fake
// GitHub API, breaks things (kill -9, two writers, leader failover, apiserver restarts, GitHub faults), and
// checks what it recorded against ground truth per commit. `make test` runs short versions; `make faults`
// (FAULTS_FULL=1) the full runs whose figures are in docs/reliability.md.
package faults_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/test/harness"
)

// report logs the figures docs/reliability.md quotes and fails on any commit recorded twice or missed.
func report(t *testing.T, name string, v verdict, extra string) {
	t.Helper()
	t.Logf("%s: %d commits to record, %d recorded, %d recorded twice, %d missed, %d lost in the crash window%s",
		name, v.want, v.recorded, v.twice, v.missed, v.lostInWindow, extra)
	if v.twice != 0 || v.missed != 0 {
		t.Errorf("%s: %d recorded twice, %d missed; want 0 and 0", name, v.twice, v.missed)
	}
}

func TestKillNineDuringRevisions(t *testing.T) {
	objects, revisions, kills := 5, 30, 3
	if full {
		objects, revisions, kills = 20, 300, 20
	}
	f := newFleet(t, objects)
	rng := rand.New(rand.NewPCG(1, 7))
	tr := f.startTracker("tracker-0")
	tr.WaitReady(time.Minute)
	f.baselined(t)
	trackers := []*tracker{tr}
	killAt := map[int]bool{}
	for len(killAt) < kills {
		killAt[1+rng.IntN(revisions-1)] = true
	}
	f.drive(rng, revisions, func(i int) {
		if !killAt[i] {
			return
		}
		// At a random moment within the next revision's work.
		time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
		tr.Kill()
		tr = f.startTracker("tracker-" + string(rune('a'+len(trackers)%26)))
		trackers = append(trackers, tr)
	})
	if !f.settled(2 * time.Minute) {
		t.Fatalf("ledger did not reach every object's revision:\n%s", harness.Tail(tr.LogPath))
	}
	v := f.judge(trackers...)
	report(t, "kill -9", v, fmt.Sprintf(" (%d kills, %d objects lost an apply)", kills, v.lostObjects))
}

func TestTwoWritersWithoutLeaderElection(t *testing.T) {
	objects, revisions := 5, 20
	if full {
		objects, revisions = 20, 150
	}
	f := newFleet(t, objects)
	a, b := f.startTracker("a"), f.startTracker("b")
	a.WaitReady(time.Minute)
	b.WaitReady(time.Minute)
	f.baselined(t)
	f.drive(rand.New(rand.NewPCG(2, 9)), revisions, nil)
	if !f.settled(2 * time.Minute) {
		t.Fatal("ledger did not reach every object's revision")
	}
	v := f.judge(a, b)
	report(t, "two writers", v, "")
	if v.lostInWindow != 0 {
		t.Errorf("%d commits lost without a crash", v.lostInWindow)
		explain(t, v, a, b)
	}
}

func TestLeaderFailoverWithOverlap(t *testing.T) {
	if !full {
		t.Skip("waits for a lease to expire; make faults runs it")
	}
	f := newFleet(t, 10)
	a, b := f.startTracker("a", "--enable-leader-election"), f.startTracker("b", "--enable-leader-election")
	a.WaitReady(time.Minute)
	b.WaitReady(time.Minute)
	f.baselined(t)
	rng := rand.New(rand.NewPCG(3, 11))
	f.drive(rng, 20, nil)
	if !f.settled(time.Minute) {
		t.Fatal("no leader recorded")
	}
	// Freeze the leader past its lease, let the other take over and record, then wake it: for a moment both
	// believe they lead, and both may write.
	leader, standby := a, b
	if len(recorded(t, b)) > len(recorded(t, a)) {
		leader, standby = b, a
	}
	leader.Signal(syscall.SIGSTOP)
	f.drive(rng, 20, nil)
	if !f.settled(time.Minute) {
		t.Fatal("the standby did not take over")
	}
	f.drive(rng, 5, func(int) {})
	leader.Signal(syscall.SIGCONT)
	f.drive(rng, 20, nil)
	if !f.settled(time.Minute) {
		t.Fatal("ledger did not reach every object's revision after the failover")
	}
	report(t, "leader failover", f.judge(leader, standby), "")
}

func TestAPIServerRestarts(t *testing.T) {
	if !full {
		t.Skip("restarts the shared apiserver; make faults runs it")
	}
	f := newFleet(t, 10)
	tr := f.startTracker("tracker")
	tr.WaitReady(time.Minute)
	f.baselined(t)
	rng := rand.New(rand.NewPCG(4, 13))
	var resumed []time.Duration
	for range 5 {
		f.drive(rng, 10, nil)
		restartAPIServer(t)
		down := time.Now()
		f.drive(rng, 5, nil)
		if !f.settled(90 * time.Second) {
			t.Fatalf("recording did not resume after an apiserver restart:\n%s", harness.Tail(tr.LogPath))
		}
		resumed = append(resumed, time.Since(down))
		if took := time.Since(down); took > time.Minute {
			t.Errorf("recording resumed %s after the apiserver came back, want within 60s", took.Round(time.Second))
		}
	}
	if !tr.Running() {
		t.Errorf("tracker exited across apiserver restarts:\n%s", harness.Tail(tr.LogPath))
	}
	report(t, "apiserver restarts", f.judge(tr), " (resumed after "+durations(resumed)+")")
}

func TestGitHubFaults(t *testing.T) {
	f := newFleet(t, 3)
	tr := f.startTracker("tracker", "--call-timeout", "2s")
	tr.WaitReady(time.Minute)
	f.baselined(t)
	type fault struct {
		name   string
		inject func()
	}
	var limitedUntil time.Time
	faults := []fault{
		{"5xx burst", func() { f.gh.FailNext(8, http.StatusBadGateway) }},
		{"null body", func() { f.gh.RespondNext(http.StatusOK, "null") }},
		{"empty body", func() { f.gh.RespondNext(http.StatusOK, "") }},
		{"compare with a null commit", func() { f.gh.RespondNext(http.StatusOK, `{"status":"ahead","ahead_by":1,"commits":[null]}`) }},
		{"truncated body", func() { f.gh.CutNext() }},
		{"hang", func() { f.gh.HangNext(2) }},
		{"429 Retry-After", func() {
			limitedUntil = time.Now().Add(3 * time.Second)
			f.gh.RateLimitNext(http.StatusTooManyRequests, 3*time.Second)
		}},
		{"secondary 403 Retry-After", func() {
			limitedUntil = time.Now().Add(3 * time.Second)
			f.gh.RateLimitNext(http.StatusForbidden, 3*time.Second)
		}},
		{"primary limit", func() {
			limitedUntil = time.Now().Add(3 * time.Second)
			f.gh.PrimaryRateLimitNext(http.StatusForbidden, 3*time.Second)
		}},
	}
	if full {
		faults = append(faults, faults...)
	}
	// Each fault hits the lookups of one revision; the revision must still be recorded once, with its true latency.
	wantLatency := map[key]float64{}
	for _, fl := range faults {
		limitedUntil = time.Time{}
		f.gh.ClearRequests()
		fl.inject()
		head := f.push(2)
		for _, name := range f.objects {
			f.move(name, head)
		}
		for pos := head - 1; pos <= head; pos++ {
			for _, name := range f.objects {
				wantLatency[key{name, f.history[pos].sha}] = f.appliedAt(head).Sub(f.history[pos].at).Seconds()
			}
		}
		if !f.settled(time.Minute) {
			t.Fatalf("%s: not recorded after recovery:\n%s", fl.name, harness.Tail(tr.LogPath))
		}
		if !limitedUntil.IsZero() {
			reqs := f.gh.Requests()
			for _, r := range reqs[1:] {
				if r.Time.Before(limitedUntil.Add(-time.Second)) {
					t.Errorf("%s: request %s at %s, before the limit lifted at %s", fl.name, r.Path, r.Time.Format(time.StampMilli), limitedUntil.Format(time.StampMilli))
				}
			}
		}
		if !tr.Running() {
			t.Fatalf("%s: tracker exited:\n%s", fl.name, harness.Tail(tr.LogPath))
		}
	}
	got := recorded(t, tr)
	wrong := 0
	for k, want := range wantLatency {
		if s := got[k]; len(s) != 1 || s[0] != want {
			wrong++
			t.Errorf("%s on %s: reconcile seconds %v, want exactly one sample of %v", k.commit[:7], k.object, s, want)
		}
	}
	v := f.judge(tr)
	report(t, "GitHub faults", v, "")
	if v.lostInWindow != 0 {
		t.Errorf("%d commits lost without a crash", v.lostInWindow)
	}
	t.Logf("GitHub faults: %d faults, 0 crashes, %d samples with a wrong latency", len(faults), wrong)
}

func durations(ds []time.Duration) string {
	out := ""
	for i, d := range ds {
		if i > 0 {
			out += ", "
		}
		out += d.Round(100 * time.Millisecond).String()
	}
	return out
}
