// Package notify turns the tracker's Records and stuck rollouts into notices for people and their tools,
// delivered from the ledger's outbox: a generic signed webhook, Slack incoming webhooks, Microsoft Teams workflow
// webhooks and Grafana annotations.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/outbox"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/revision"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// Headers of a webhook delivery.
const (
	HeaderEvent     = "X-Flux-Commit-Tracker-Event"
	HeaderDelivery  = "X-Flux-Commit-Tracker-Delivery" // the notice's ID: the same on every retry, for deduplication
	HeaderSignature = "X-Flux-Commit-Tracker-Signature"
)

// PayloadVersion names the webhook payload's schema.
const PayloadVersion = "flux-commit-tracker.io/v1"

// EventLanded is sent once per apply that recorded commits.
const EventLanded = "landed"

// maxListedCommits keeps a payload within what the ledger stores per notice; commits_total says how many there are.
const maxListedCommits = 16

// Landed is the payload of a landed event.
type Landed struct {
	Version      string         `json:"version"`
	Event        string         `json:"event"`
	Cluster      string         `json:"cluster"`
	Object       Object         `json:"object"`
	Revision     string         `json:"revision"`
	Repository   string         `json:"repository"`
	Applied      time.Time      `json:"applied"`
	Healthy      bool           `json:"healthy"`
	Commits      []LandedCommit `json:"commits"`
	CommitsTotal int            `json:"commits_total"`
}

// Object names a Flux object.
type Object struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// LandedCommit is one delivered commit and how long it took.
type LandedCommit struct {
	SHA              string    `json:"sha"`
	Committed        time.Time `json:"committed"`
	ReconcileSeconds float64   `json:"reconcile_seconds"`
	E2ESeconds       float64   `json:"e2e_seconds"`
	UpstreamCommits  int       `json:"upstream_commits"`
}

// Kinds of destination a Webhook posts to; each is a sink of its own in the outbox.
const (
	KindWebhook = outbox.SinkWebhook // the versioned Landed payload, signed
	KindSlack   = outbox.SinkSlack   // a Slack incoming webhook message
	KindTeams   = outbox.SinkTeams   // a Microsoft Teams workflow webhook message (an Adaptive Card)
)

// Webhook posts a notice of every landed apply, and of stuck and recovered rollouts, to URL, in the form its Kind reads.
type Webhook struct {
	// Kind is KindWebhook (the default), KindSlack or KindTeams.
	Kind string
	URL  string
	// Secret keys the HMAC-SHA256 signature of each body; empty sends none.
	Secret []byte
	Client *http.Client
}

var (
	_ tracker.Notifier = (*Webhook)(nil)
	_ outbox.Sender    = (*Webhook)(nil)
)

// Name is the sink's name in the outbox and in metrics: its kind.
func (w *Webhook) Name() string {
	if w.Kind == "" {
		return KindWebhook
	}
	return w.Kind
}

// Notice returns the landed payload of r, newest commits last, at most maxListedCommits of them.
func (w *Webhook) Notice(r tracker.Record) (json.RawMessage, bool, error) {
	if len(r.Commits) == 0 {
		return nil, false, nil
	}
	p := Landed{Version: PayloadVersion, Event: EventLanded, Cluster: r.Object.Cluster,
		Object:   Object{Kind: r.Object.Kind, Namespace: r.Object.Namespace, Name: r.Object.Name},
		Revision: r.Revision, Repository: r.Object.Repository, Applied: r.Applied.UTC(), Healthy: r.Healthy(),
		CommitsTotal: len(r.Commits)}
	for _, c := range r.Commits[max(0, len(r.Commits)-maxListedCommits):] {
		reconcile, e2e := r.Stages(c.SHA)
		p.Commits = append(p.Commits, LandedCommit{SHA: c.SHA, Committed: c.Committed.UTC(), ReconcileSeconds: reconcile.Duration.Seconds(),
			E2ESeconds: e2e.Seconds(), UpstreamCommits: len(c.Upstream)})
	}
	return w.body(p, func(code string) string { return summary(p, code) })
}

// body is the notice in the form w's kind reads: payload itself for the webhook, text(code) for people on Slack
// (code marking up a SHA) and Teams.
func (w *Webhook) body(payload any, text func(code string) string) (json.RawMessage, bool, error) {
	var body []byte
	var err error
	switch w.Name() {
	case KindSlack:
		body, err = json.Marshal(map[string]string{"text": text("`")})
	case KindTeams:
		body, err = json.Marshal(newTeamsMessage(text("")))
	default:
		body, err = json.Marshal(payload)
	}
	return body, err == nil, err
}

// summary is one line per notice for people: the object, where, and each listed commit with its latency.
func summary(p Landed, code string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Landed in %s: %s %s/%s applied %d commit(s) of %s", p.Cluster, p.Object.Kind, p.Object.Namespace, p.Object.Name, p.CommitsTotal, p.Repository)
	for _, c := range p.Commits {
		fmt.Fprintf(&b, "\n• %s%s%s committed → applied in %s", code, revision.Short(c.SHA), code, seconds(c.ReconcileSeconds))
	}
	if n := p.CommitsTotal - len(p.Commits); n > 0 {
		fmt.Fprintf(&b, "\n… and %d older", n)
	}
	return b.String()
}

// Microsoft Teams' message with one Adaptive Card, as a workflow webhook takes it.
type (
	teamsMessage struct {
		Type        string            `json:"type"`
		Attachments []teamsAttachment `json:"attachments"`
	}
	teamsAttachment struct {
		ContentType string    `json:"contentType"`
		Content     teamsCard `json:"content"`
	}
	teamsCard struct {
		Schema  string           `json:"$schema"`
		Type    string           `json:"type"`
		Version string           `json:"version"`
		Body    []teamsTextBlock `json:"body"`
	}
	teamsTextBlock struct {
		Type string `json:"type"`
		Text string `json:"text"`
		Wrap bool   `json:"wrap"`
	}
)

// newTeamsMessage wraps text in the Adaptive Card message a Teams workflow webhook posts to its channel.
func newTeamsMessage(text string) teamsMessage {
	return teamsMessage{Type: "message", Attachments: []teamsAttachment{{
		ContentType: "application/vnd.microsoft.card.adaptive",
		Content: teamsCard{Schema: "http://adaptivecards.io/schemas/adaptive-card.json", Type: "AdaptiveCard", Version: "1.4",
			Body: []teamsTextBlock{{Type: "TextBlock", Text: text, Wrap: true}}},
	}}}
}

// Send posts the notice (see exchange for the answers retried and refused).
func (w *Webhook) Send(ctx context.Context, it ledger.Item) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(it.Body))
	if err != nil {
		return fmt.Errorf("%s: %w", w.Name(), outbox.ErrRefused) // a URL that does not parse: checked at startup, never here
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderEvent, eventOf(it.Body))
	req.Header.Set(HeaderDelivery, it.ID)
	if len(w.Secret) > 0 && w.Name() == KindWebhook {
		req.Header.Set(HeaderSignature, Signature(w.Secret, it.Body))
	}
	_, err = exchange(w.Client, req, w.Name()+": post")
	return err
}

// Signature is the value of HeaderSignature for body: sha256= and the hex HMAC-SHA256 of body keyed by secret.
func Signature(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	_, _ = m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
