package notify

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/revision"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// Events of a rollout that waited too long, each sent once per episode.
const (
	EventStuck     = tracker.EventStuck
	EventRecovered = tracker.EventRecovered
)

// Rollout is the payload of a stuck or recovered event.
type Rollout struct {
	Version    string `json:"version"`
	Event      string `json:"event"`
	Cluster    string `json:"cluster"`
	Object     Object `json:"object"`
	Repository string `json:"repository"`
	// StuckRevision is what the object waited on or failed on; Applied is its applied revision.
	StuckRevision string    `json:"stuck_revision"`
	Applied       string    `json:"applied"`
	Failing       bool      `json:"failing"`
	Since         time.Time `json:"since"`
	// At is when it was found stuck, or when it recovered.
	At           time.Time       `json:"at"`
	Commits      []RolloutCommit `json:"commits"`
	CommitsTotal int             `json:"commits_total"`
}

// RolloutCommit is one commit that waited (stuck) or landed (recovered).
type RolloutCommit struct {
	SHA       string    `json:"sha"`
	Committed time.Time `json:"committed"`
}

var _ tracker.StuckNotifier = (*Webhook)(nil)

// StuckNotice returns the stuck or recovered payload of s, newest commits last, at most maxListedCommits of them.
func (w *Webhook) StuckNotice(s tracker.Stuck) (json.RawMessage, bool, error) {
	p := Rollout{Version: PayloadVersion, Event: s.Event, Cluster: s.Object.Cluster,
		Object:     Object{Kind: s.Object.Kind, Namespace: s.Object.Namespace, Name: s.Object.Name},
		Repository: s.Object.Repository, StuckRevision: s.Revision, Applied: s.Applied, Failing: s.Failing,
		Since: s.Since.UTC(), At: s.At.UTC(), CommitsTotal: len(s.Commits), Commits: []RolloutCommit{}}
	for _, c := range s.Commits[max(0, len(s.Commits)-maxListedCommits):] {
		p.Commits = append(p.Commits, RolloutCommit{SHA: c.SHA, Committed: c.Committed.UTC()})
	}
	return w.body(p, func(code string) string { return rolloutSummary(p, code) })
}

// rolloutSummary is the stuck or recovered notice for people: the object, how long, and the commits.
func rolloutSummary(p Rollout, code string) string {
	var b strings.Builder
	waited := latency.Human(p.At.Sub(p.Since))
	object := fmt.Sprintf("%s %s/%s", p.Object.Kind, p.Object.Namespace, p.Object.Name)
	switch {
	case p.Event == EventRecovered:
		fmt.Fprintf(&b, "Recovered in %s: %s applied %s%s%s, %s after it got stuck on %s%s%s", p.Cluster, object, code, p.Applied, code,
			waited, code, p.StuckRevision, code)
	case p.Failing:
		fmt.Fprintf(&b, "Stuck in %s: %s has been failing on %s%s%s for %s", p.Cluster, object, code, p.StuckRevision, code, waited)
	default:
		fmt.Fprintf(&b, "Stuck in %s: %s has not applied %s%s%s for %s", p.Cluster, object, code, p.StuckRevision, code, waited)
	}
	for _, c := range p.Commits {
		fmt.Fprintf(&b, "\n• %s%s%s committed %s", code, revision.Short(c.SHA), code, c.Committed.Format(time.RFC3339))
	}
	if n := p.CommitsTotal - len(p.Commits); n > 0 {
		fmt.Fprintf(&b, "\n… and %d older", n)
	}
	return b.String()
}

// eventOf reads the event a payload carries; a landed payload is the default.
func eventOf(body []byte) string {
	var probe struct {
		Event string `json:"event"`
	}
	if json.Unmarshal(body, &probe) == nil && (probe.Event == EventStuck || probe.Event == EventRecovered) {
		return probe.Event
	}
	return EventLanded
}
