package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/notify"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

func stuck(event string, failing bool) tracker.Stuck {
	a := strings.Repeat("a", 40)
	return tracker.Stuck{Event: event, UID: "uid-web", Failing: failing,
		Object:   telemetry.ObjectAttributes{Cluster: "prod-eu", Namespace: "apps", Kind: "Kustomization", Name: "web", Repository: "https://github.com/acme/app"},
		Revision: "main@sha1:" + a, Applied: "main@sha1:" + strings.Repeat("0", 40), Since: t0, At: t0.Add(17 * time.Minute),
		Commits: []latency.DeliveredCommit{{SHA: a, Committed: t0.Add(-time.Minute)}}}
}

// The webhook gets a stuck event as a versioned payload under its own event header, signed.
func TestWebhookPostsStuckEvent(t *testing.T) {
	var got *http.Request
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		body, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	hook := &notify.Webhook{URL: srv.URL, Secret: []byte("k"), Client: srv.Client()}
	payload, ok, err := hook.StuckNotice(stuck(notify.EventStuck, true))
	if err != nil || !ok {
		t.Fatalf("StuckNotice = %v, %v", ok, err)
	}
	if err := hook.Send(context.Background(), ledger.Item{ID: "id1", Sink: hook.Name(), Created: t0, Body: payload}); err != nil {
		t.Fatal(err)
	}
	if got.Header.Get(notify.HeaderEvent) != notify.EventStuck || got.Header.Get(notify.HeaderSignature) != notify.Signature([]byte("k"), body) {
		t.Errorf("headers %v", got.Header)
	}
	var p notify.Rollout
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Version != notify.PayloadVersion || p.Event != "stuck" || !p.Failing || p.Object.Name != "web" || !p.Since.Equal(t0) ||
		!p.At.Equal(t0.Add(17*time.Minute)) || p.CommitsTotal != 1 || p.Commits[0].SHA != strings.Repeat("a", 40) {
		t.Errorf("payload %+v", p)
	}
}

// Slack and Teams read what happened, to whom and for how long.
func TestStuckAndRecoveredMessagesForPeople(t *testing.T) {
	for _, tt := range []struct {
		kind, event string
		failing     bool
		want        []string
	}{
		{notify.KindSlack, notify.EventStuck, true, []string{"Stuck in prod-eu: Kustomization apps/web has been failing on `main@sha1:aaaa", "for 17m0s", "• `aaaaaaa`"}},
		{notify.KindSlack, notify.EventStuck, false, []string{"Stuck in prod-eu: Kustomization apps/web has not applied `main@sha1:aaaa", "for 17m0s"}},
		{notify.KindTeams, notify.EventRecovered, false, []string{"Recovered in prod-eu: Kustomization apps/web applied main@sha1:0000", "17m0s after it got stuck on main@sha1:aaaa"}},
	} {
		hook := &notify.Webhook{Kind: tt.kind, URL: "https://hooks.example.com/x"}
		body, ok, err := hook.StuckNotice(stuck(tt.event, tt.failing))
		if err != nil || !ok {
			t.Fatalf("%s %s: %v, %v", tt.kind, tt.event, ok, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(string(body), w) {
				t.Errorf("%s %s message %s, want it to hold %q", tt.kind, tt.event, body, w)
			}
		}
	}
}
