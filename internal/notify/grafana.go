package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/outbox"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/revision"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// KindGrafana is the sink of Grafana annotations.
const KindGrafana = outbox.SinkGrafana

// Grafana keeps one region annotation per landed commit per cluster: from the commit's time to when the last
// object of the cluster applied it. Regions are found again by their tags, so a restart or a second object
// applying the same commit widens the region rather than adding one.
type Grafana struct {
	// URL is Grafana's base URL; Token is sent as a Bearer token (a service account token).
	URL, Token string
	// DashboardUID, if set, pins the regions to one dashboard; empty makes them organisation-wide.
	DashboardUID string
	Client       *http.Client
}

var (
	_ tracker.Notifier = (*Grafana)(nil)
	_ outbox.Sender    = (*Grafana)(nil)
)

// grafanaNotice is what the outbox keeps of an apply for Grafana.
type grafanaNotice struct {
	Cluster    string          `json:"cluster"`
	Repository string          `json:"repository"`
	Object     Object          `json:"object"`
	Applied    time.Time       `json:"applied"`
	Commits    []grafanaCommit `json:"commits"`
}

type grafanaCommit struct {
	SHA              string    `json:"sha"`
	Committed        time.Time `json:"committed"`
	ReconcileSeconds float64   `json:"reconcile_seconds"`
}

// Name is the sink's name.
func (g *Grafana) Name() string { return KindGrafana }

// Notice keeps the listed commits of r with their times.
func (g *Grafana) Notice(r tracker.Record) (json.RawMessage, bool, error) {
	if len(r.Commits) == 0 {
		return nil, false, nil
	}
	n := grafanaNotice{Cluster: r.Object.Cluster, Repository: r.Object.Repository, Applied: r.Applied.UTC(),
		Object: Object{Kind: r.Object.Kind, Namespace: r.Object.Namespace, Name: r.Object.Name}}
	for _, c := range r.Commits[max(0, len(r.Commits)-maxListedCommits):] {
		reconcile, _ := r.Stages(c.SHA)
		n.Commits = append(n.Commits, grafanaCommit{SHA: c.SHA, Committed: c.Committed.UTC(), ReconcileSeconds: reconcile.Duration.Seconds()})
	}
	body, err := json.Marshal(n)
	return body, err == nil, err
}

// annotation is Grafana's annotation as /api/annotations reads and writes it; times in Unix milliseconds.
type annotation struct {
	ID           int64    `json:"id,omitempty"`
	DashboardUID string   `json:"dashboardUID,omitempty"`
	Time         int64    `json:"time"`
	TimeEnd      int64    `json:"timeEnd"`
	Tags         []string `json:"tags,omitempty"`
	Text         string   `json:"text,omitempty"`
}

// maxTagLength is the most a tag of ours holds.
const maxTagLength = 50

// Send creates or widens the region of each commit of the notice. Answers 401 and 403 are retried like 5xx, so
// a token fixed within the outbox's patience loses nothing; other 4xx refuse the notice.
func (g *Grafana) Send(ctx context.Context, it ledger.Item) error {
	var n grafanaNotice
	if err := json.Unmarshal(it.Body, &n); err != nil {
		return fmt.Errorf("grafana: notice %s: %w: %w", it.ID, err, outbox.ErrRefused)
	}
	for _, c := range n.Commits {
		tags := g.tags(n, c.SHA)
		found, err := g.find(ctx, tags)
		if err != nil {
			return err
		}
		end := n.Applied.UnixMilli()
		switch {
		case found == nil:
			text := fmt.Sprintf("%s landed in %s: %s %s/%s applied it %s after its commit", revision.Short(c.SHA), n.Cluster, n.Object.Kind,
				n.Object.Namespace, n.Object.Name, seconds(c.ReconcileSeconds))
			err = g.do(ctx, http.MethodPost, "/api/annotations", annotation{DashboardUID: g.DashboardUID, Time: c.Committed.UnixMilli(),
				TimeEnd: end, Tags: tags, Text: text}, nil)
		case found.TimeEnd < end:
			err = g.do(ctx, http.MethodPatch, fmt.Sprintf("/api/annotations/%d", found.ID), map[string]int64{"timeEnd": end}, nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// tags identify a commit's region in one cluster.
func (g *Grafana) tags(n grafanaNotice, sha string) []string {
	repo := n.Repository
	if r, err := commits.ParseRepositoryURL(repo); err == nil && r.Owner != "" {
		repo = r.Owner + "/" + r.Name
	}
	tags := []string{"flux-commit-tracker", "cluster:" + n.Cluster, "repo:" + repo, "commit:" + revision.Short(sha)}
	for i, t := range tags {
		if len(t) > maxTagLength {
			tags[i] = t[:maxTagLength]
		}
	}
	return tags
}

// find returns the region with every one of tags, or nil.
func (g *Grafana) find(ctx context.Context, tags []string) (*annotation, error) {
	q := url.Values{"limit": {"1"}}
	q.Set("type", "annotation")
	for _, t := range tags {
		q.Add("tags", t)
	}
	var raw json.RawMessage
	if err := g.do(ctx, http.MethodGet, "/api/annotations?"+q.Encode(), nil, &raw); err != nil {
		return nil, err
	}
	found, err := parseAnnotations(raw)
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, nil
	}
	return &found[0], nil
}

// parseAnnotations reads a list of annotations; null, a non-list, or an entry without an ID is a bad answer,
// retried rather than trusted (it would make a duplicate region).
func parseAnnotations(raw []byte) ([]annotation, error) {
	if !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
		return nil, errors.New("grafana: GET /api/annotations: bad answer: not a list")
	}
	var found []annotation
	if err := json.Unmarshal(raw, &found); err != nil {
		return nil, fmt.Errorf("grafana: GET /api/annotations: bad answer: %w", err)
	}
	for _, a := range found {
		if a.ID <= 0 {
			return nil, errors.New("grafana: GET /api/annotations: bad answer: an annotation without an id")
		}
	}
	return found, nil
}

// do sends one request to Grafana and decodes its answer into out when set.
func (g *Grafana) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("grafana: %w", err)
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(g.URL, "/")+path, body)
	if err != nil {
		return fmt.Errorf("grafana: %w", outbox.ErrRefused)
	}
	req.Header.Set("Authorization", "Bearer "+g.Token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	// 401 and 403 are retried: a token fixed within the outbox's patience loses nothing.
	raw, err := exchange(g.Client, req, "grafana: "+method+" /api/annotations", http.StatusUnauthorized, http.StatusForbidden)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		// Null, truncated or wrongly typed: retried, never trusted.
		return fmt.Errorf("grafana: %s /api/annotations: bad answer: %w", method, err)
	}
	return nil
}

// seconds renders a latency in seconds for people: 1m30s.
func seconds(s float64) string { return latency.Human(time.Duration(s * float64(time.Second))) }
