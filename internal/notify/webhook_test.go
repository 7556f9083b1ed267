package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/notify"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/outbox"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func record() tracker.Record {
	a, b := strings.Repeat("a", 40), strings.Repeat("b", 40)
	return tracker.Record{
		Object: telemetry.ObjectAttributes{Cluster: "prod-eu", Namespace: "apps", Kind: "Kustomization", Name: "web", Repository: "https://github.com/acme/app"},
		UID:    "uid-web", Revision: "main@sha1:" + b, Applied: t0.Add(90 * time.Second), AppliedFromFlux: true, WaitsForHealth: true,
		Commits: []latency.DeliveredCommit{{SHA: a, Committed: t0}, {SHA: b, Committed: t0.Add(30 * time.Second)}},
		Samples: []latency.Sample{
			{Stage: latency.StageReconcile, Commit: a, Duration: 90 * time.Second}, {Stage: latency.StageE2E, Commit: a, Duration: 90 * time.Second},
			{Stage: latency.StageReconcile, Commit: b, Duration: 60 * time.Second}, {Stage: latency.StageE2E, Commit: b, Duration: 60 * time.Second},
		},
	}
}

// A landed notice names the object, the revision and every commit with its latency, signed, with its ID.
func TestWebhookPostsSignedLandedNotice(t *testing.T) {
	secret := []byte("hook-secret")
	var got *http.Request
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		body, _ = io.ReadAll(r.Body) // a short body fails the signature check below
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	hook := &notify.Webhook{URL: srv.URL + "/hooks/T0001/secret-path", Secret: secret, Client: srv.Client()}
	payload, ok, err := hook.Notice(record())
	if err != nil || !ok {
		t.Fatalf("Notice = %v, %v", ok, err)
	}
	it := ledger.Item{ID: "0123abcd", Sink: hook.Name(), Created: t0, Body: payload}
	if err := hook.Send(context.Background(), it); err != nil {
		t.Fatal(err)
	}
	if got.Method != http.MethodPost || got.Header.Get(notify.HeaderDelivery) != "0123abcd" || got.Header.Get(notify.HeaderEvent) != "landed" ||
		got.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request %s with headers %v", got.Method, got.Header)
	}
	if sig := got.Header.Get(notify.HeaderSignature); sig != notify.Signature(secret, body) || !strings.HasPrefix(sig, "sha256=") {
		t.Errorf("signature %q does not match the body", sig)
	}
	var l notify.Landed
	if err := json.Unmarshal(body, &l); err != nil {
		t.Fatal(err)
	}
	if l.Version != notify.PayloadVersion || l.Cluster != "prod-eu" || l.Object.Name != "web" || l.CommitsTotal != 2 || len(l.Commits) != 2 ||
		l.Commits[0].ReconcileSeconds != 90 || l.Commits[1].E2ESeconds != 60 || !l.Healthy || !l.Applied.Equal(t0.Add(90*time.Second)) {
		t.Errorf("payload %+v", l)
	}
}

func TestWebhookAnswers(t *testing.T) {
	for _, tt := range []struct {
		code    int
		refused bool
	}{{500, false}, {503, false}, {429, false}, {408, false}, {400, true}, {404, true}, {410, true}} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(tt.code) }))
		hook := &notify.Webhook{URL: srv.URL + "/secret-path", Client: srv.Client()}
		err := hook.Send(context.Background(), ledger.Item{ID: "x", Body: json.RawMessage(`{}`)})
		if err == nil || errors.Is(err, outbox.ErrRefused) != tt.refused {
			t.Errorf("answer %d: %v; want an error, refused %v", tt.code, err, tt.refused)
		}
		if err != nil && strings.Contains(err.Error(), "secret-path") {
			t.Errorf("answer %d: error %q shows the URL", tt.code, err)
		}
		srv.Close()
	}
	// A destination that is down: retried, and the error does not show the URL either.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/secret-path"
	srv.Close()
	err := (&notify.Webhook{URL: url}).Send(context.Background(), ledger.Item{ID: "x", Body: json.RawMessage(`{}`)})
	if err == nil || errors.Is(err, outbox.ErrRefused) || strings.Contains(err.Error(), "secret-path") {
		t.Errorf("destination down: %v; want a retried error without the URL", err)
	}
}

// BenchmarkLandedNoticeBytes reports what one notice adds to its apply's ledger write, for 1 commit and for
// more than the 16 listed.
func BenchmarkLandedNoticeBytes(b *testing.B) {
	for _, n := range []int{1, 40} {
		b.Run(fmt.Sprintf("commits=%d", n), func(b *testing.B) {
			r := record()
			r.Commits, r.Samples = nil, nil
			for i := range n {
				sha := fmt.Sprintf("%040x", i+1)
				r.Commits = append(r.Commits, latency.DeliveredCommit{SHA: sha, Committed: t0.Add(time.Duration(i) * time.Second)})
				r.Samples = append(r.Samples, latency.Sample{Stage: latency.StageReconcile, Commit: sha, Duration: time.Minute},
					latency.Sample{Stage: latency.StageE2E, Commit: sha, Duration: time.Minute})
			}
			hook := &notify.Webhook{URL: "https://hooks.example.com/x"}
			var size int
			for b.Loop() {
				body, _, err := hook.Notice(r)
				if err != nil {
					b.Fatal(err)
				}
				size = len(body)
			}
			if size > ledger.MaxItemBytes-64 {
				b.Fatalf("a notice of %d commits is %d bytes: over what the ledger stores", n, size)
			}
			b.ReportMetric(float64(size), "bytes/notice")
		})
	}
}

// Slack and Teams get a message for people, in the shape each reads, at the same POST.
func TestChatMessages(t *testing.T) {
	for _, kind := range []string{notify.KindSlack, notify.KindTeams} {
		hook := &notify.Webhook{Kind: kind, URL: "https://hooks.example.com/x", Secret: []byte("k")}
		body, ok, err := hook.Notice(record())
		if err != nil || !ok {
			t.Fatalf("%s: %v, %v", kind, ok, err)
		}
		var text string
		switch kind {
		case notify.KindSlack:
			var m struct{ Text string }
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatal(err)
			}
			text = m.Text
		case notify.KindTeams:
			var m struct {
				Type        string
				Attachments []struct {
					ContentType string
					Content     struct {
						Type string
						Body []struct{ Type, Text string }
					}
				}
			}
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatal(err)
			}
			if m.Type != "message" || len(m.Attachments) != 1 || m.Attachments[0].ContentType != "application/vnd.microsoft.card.adaptive" ||
				m.Attachments[0].Content.Type != "AdaptiveCard" || len(m.Attachments[0].Content.Body) != 1 {
				t.Fatalf("teams message %s", body)
			}
			text = m.Attachments[0].Content.Body[0].Text
		}
		for _, want := range []string{"prod-eu", "Kustomization apps/web", "2 commit(s)", "aaaaaaa", "1m30s", "bbbbbbb", "1m0s"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s message %q lacks %q", kind, text, want)
			}
		}
		if hook.Name() != kind {
			t.Errorf("sink name %q, want %q", hook.Name(), kind)
		}
	}
}
