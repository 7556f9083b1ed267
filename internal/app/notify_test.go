package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/notify"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/notify/grafanatest"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/fluxstatus"
)

// receiver is a webhook destination that is down (503) until up is set, and keeps each notice it takes.
type receiver struct {
	mu       sync.Mutex
	up       bool
	refused  int
	received map[string][]notify.Landed // by delivery ID
	badSigs  int
	secret   []byte
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.up {
		r.refused++
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if req.Header.Get(notify.HeaderSignature) != notify.Signature(r.secret, body) {
		r.badSigs++
	}
	var l notify.Landed
	_ = json.Unmarshal(body, &l)
	r.received[req.Header.Get(notify.HeaderDelivery)] = append(r.received[req.Header.Get(notify.HeaderDelivery)], l)
	w.WriteHeader(http.StatusAccepted)
}

func (r *receiver) count() (ids, posts, refused int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ls := range r.received {
		posts += len(ls)
	}
	return len(r.received), posts, r.refused
}

// A destination down while commits land gets every notice once it is back, signed, once each; a restart of
// the tracker sends none again.
func TestWebhookNoticesSurviveADownDestinationAndARestart(t *testing.T) {
	s := newScenario(t)
	recv := &receiver{received: map[string][]notify.Landed{}, secret: []byte("hook-key")}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	var slackMu sync.Mutex
	var slackTexts []string
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var m struct{ Text string }
		_ = json.NewDecoder(req.Body).Decode(&m)
		slackMu.Lock()
		slackTexts = append(slackTexts, m.Text)
		slackMu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	defer slack.Close()
	grafana := grafanatest.New("glsa-token")
	gsrv := httptest.NewServer(grafana)
	defer gsrv.Close()
	env := map[string]string{"NOTIFY_WEBHOOK_SECRET": "hook-key", "SLACK_WEBHOOK_URL": slack.URL + "/services/T0/B0/slack-secret",
		"GRAFANA_URL": gsrv.URL, "GRAFANA_TOKEN": "glsa-token"}
	c0 := s.commit(0, map[string]string{"app.yaml": "v0"})
	s.createKustomization("app", c0, 10)
	tr := s.startTrackerEnv(env, "--notify-webhook-url", srv.URL+"/hooks/secret-token")
	eventually(t, 10*time.Second, "baseline in ledger", func() bool { return s.ledgerRevision("app") == "main@sha1:"+c0 })

	c1 := s.commit(100, map[string]string{"app.yaml": "v1"})
	s.apply("app", "main@sha1:"+c1, s.at(142))
	wantCommits(t, tr, map[string]float64{c1: 42})
	eventually(t, 10*time.Second, "delivery attempts while the destination is down", func() bool { _, _, refused := recv.count(); return refused >= 2 })
	if got := tr.Metric("flux_commit_tracker_outbox_depth", `sink="webhook"`); got != 1 {
		t.Errorf("outbox depth while down = %v, want 1", got)
	}
	recv.mu.Lock()
	recv.up = true
	recv.mu.Unlock()
	eventually(t, 30*time.Second, "the notice delivered once the destination is back", func() bool { ids, _, _ := recv.count(); return ids == 1 })
	eventually(t, 10*time.Second, "the outbox empty", func() bool { return tr.Metric("flux_commit_tracker_outbox_depth", `sink="webhook"`) == 0 })
	tr.Stop()

	tr2 := s.startTrackerEnv(env, "--notify-webhook-url", srv.URL+"/hooks/secret-token")
	c2 := s.commit(200, map[string]string{"app.yaml": "v2"})
	s.apply("app", "main@sha1:"+c2, s.at(230))
	wantCommits(t, tr2, map[string]float64{c2: 30})
	eventually(t, 10*time.Second, "the second notice", func() bool { ids, _, _ := recv.count(); return ids == 2 })
	time.Sleep(2 * time.Second) // a pass or two more: nothing is sent again
	ids, posts, _ := recv.count()
	if ids != 2 || posts != 2 || recv.badSigs != 0 {
		t.Fatalf("%d notices in %d posts (%d badly signed), want 2 in 2, all signed", ids, posts, recv.badSigs)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	for _, ls := range recv.received {
		l := ls[0]
		if l.Object.Name != "app" || l.Cluster != "test-cluster" || len(l.Commits) != 1 || (l.Commits[0].SHA != c1 && l.Commits[0].SHA != c2) {
			t.Errorf("notice %+v", l)
		}
	}
	// Slack, a sink of its own, was never down: it got both messages, for people.
	slackMu.Lock()
	if len(slackTexts) != 2 || !strings.Contains(slackTexts[0], "Kustomization "+s.ns+"/app") || !strings.Contains(slackTexts[0], c1[:7]) {
		t.Errorf("slack messages %q, want two naming the object and the commits", slackTexts)
	}
	slackMu.Unlock()
	// Grafana: one region per commit, each from its commit to its apply, across the restart.
	eventually(t, 10*time.Second, "two Grafana regions", func() bool { return len(grafana.Annotations()) >= 2 })
	regions := grafana.Annotations()
	if len(regions) != 2 {
		t.Errorf("%d Grafana regions, want 2 (one per landed commit)", len(regions))
	}
	for _, a := range regions {
		tags := fmt.Sprint(a["tags"])
		if !strings.Contains(tags, "cluster:test-cluster") || !strings.Contains(tags, "repo:acme/manifests") ||
			(!strings.Contains(tags, "commit:"+c1[:7]) && !strings.Contains(tags, "commit:"+c2[:7])) {
			t.Errorf("region tags %s", tags)
		}
	}
	for _, line := range append(tr.Lines(), tr2.Lines()...) {
		if strings.Contains(line, "secret-token") || strings.Contains(line, "hook-key") || strings.Contains(line, "slack-secret") ||
			strings.Contains(line, "glsa-token") {
			t.Errorf("log line shows the webhook's URL or key: %s", line)
		}
	}
}

// events counts the notices received by event and object name.
func (r *receiver) events() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, ls := range r.received {
		for _, l := range ls {
			out[l.Event+" "+l.Object.Name]++
		}
	}
	return out
}

// An object failing for longer than --notify-stuck-after is announced stuck once and recovered once, across a
// restart; one failing for less sends nothing but its landed notice.
func TestStuckAndRecoveredNoticesOnceAcrossARestart(t *testing.T) {
	s := newScenario(t)
	recv := &receiver{up: true, received: map[string][]notify.Landed{}, secret: []byte("hook-key")}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	env := map[string]string{"NOTIFY_WEBHOOK_SECRET": "hook-key"}
	args := []string{"--notify-webhook-url", srv.URL, "--notify-stuck-after", "4s"}
	c0 := s.commit(0, map[string]string{"app.yaml": "v0"})
	s.createKustomization("app", c0, 10)
	s.createKustomization("short", c0, 10)
	tr := s.startTrackerEnv(env, args...)
	eventually(t, 10*time.Second, "baselines in ledger", func() bool {
		return s.ledgerRevision("app") == fluxstatus.Revision(c0) && s.ledgerRevision("short") == fluxstatus.Revision(c0)
	})

	c1 := s.commit(100, map[string]string{"app.yaml": "broken"})
	s.failApply("app", c1, time.Now())
	s.failApply("short", c1, time.Now())
	time.Sleep(time.Second) // a failure well under the threshold
	s.apply("short", fluxstatus.Revision(c1), time.Now())
	eventually(t, 15*time.Second, "the stuck notice", func() bool { return recv.events()["stuck app"] == 1 })
	tr.Stop()

	tr2 := s.startTrackerEnv(env, args...)
	eventually(t, 10*time.Second, "the restarted tracker sees app failing", func() bool {
		return tr2.Metric("flux_commit_tracker_failing_revision_age_seconds", `flux_name="app"`) > 0
	})
	time.Sleep(5 * time.Second) // past the threshold again: the restarted tracker must not announce it twice
	c2 := s.commit(200, map[string]string{"app.yaml": "fixed"})
	s.apply("app", fluxstatus.Revision(c2), time.Now())
	eventually(t, 15*time.Second, "the recovered notice", func() bool { return recv.events()["recovered app"] == 1 })
	time.Sleep(2 * time.Second) // a pass or two more: nothing is sent again
	want := map[string]int{"stuck app": 1, "recovered app": 1, "landed app": 1, "landed short": 1}
	if got := recv.events(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("notices by event %v, want %v", got, want)
	}
	if recv.badSigs != 0 {
		t.Errorf("%d notices badly signed", recv.badSigs)
	}
}
