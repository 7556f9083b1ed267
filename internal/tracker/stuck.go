package tracker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/flux"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
)

// Events of a rollout that has waited too long.
const (
	EventStuck     = "stuck"     // the object has not applied what its source fetched, or fails on it, for StuckAfter
	EventRecovered = "recovered" // an object announced stuck applied a revision again, or caught up
)

// Stuck describes a stuck or recovered rollout, for the notice of it.
type Stuck struct {
	// Event is EventStuck or EventRecovered.
	Event  string
	Object telemetry.ObjectAttributes
	UID    string
	// Revision is what the object was stuck on: the source's revision, or the attempted one it fails on.
	Revision string
	// Applied is the revision the object applied: still the old one when stuck, the new one when recovered.
	Applied string
	// Since is when the wait began; Failing says the object was failing, not only waiting.
	Since   time.Time
	Failing bool
	// At is when it was found stuck, or when it recovered.
	At time.Time
	// Commits are the commits waiting (stuck, as far as they are known) or delivered by the recovering apply.
	Commits []latency.DeliveredCommit
}

// StuckNotifier is a Notifier that also tells of stuck and recovered rollouts.
type StuckNotifier interface {
	Notifier
	// StuckNotice returns the notice of s, or false when s needs none.
	StuckNotice(s Stuck) (body json.RawMessage, ok bool, err error)
}

// stuckRetryAfterError is when an object whose stuck notice could not be stored is looked at again.
const stuckRetryAfterError = 30 * time.Second

// earliest is the sooner of two waits, zero meaning none.
func earliest(a, b time.Duration) time.Duration {
	if a <= 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

// stuckNotices makes every stuck notifier's notice of s, identified alike in every process by the object, the
// revision it was stuck on and the event: each is made once per episode.
func (t *Tracker) stuckNotices(s Stuck) ([]ledger.Item, error) {
	var items []ledger.Item
	for _, n := range t.opts.Notifiers {
		sn, ok := n.(StuckNotifier)
		if !ok {
			continue
		}
		body, ok, err := sn.StuckNotice(s)
		if err != nil {
			return nil, fmt.Errorf("%s %s notice of %s/%s: %w", n.Name(), s.Event, s.Object.Namespace, s.Object.Name, err)
		}
		if ok {
			items = append(items, ledger.Item{ID: ledger.ItemID(n.Name(), s.Object.Cluster, s.UID, s.Event, s.Revision), Sink: n.Name(),
				Created: s.At, Body: body})
		}
	}
	return items, nil
}

// watchesStuck reports whether stuck rollouts are announced at all.
func (t *Tracker) watchesStuck() bool {
	if t.opts.StuckAfter <= 0 || t.outbox == nil {
		return false
	}
	for _, n := range t.opts.Notifiers {
		if _, ok := n.(StuckNotifier); ok {
			return true
		}
	}
	return false
}

// stuckOn says what d waits on and since when: the attempted revision it fails on, or the source's revision it
// has not applied, waiting since its oldest pending commit was made (never before the last apply). Zero since:
// nothing waits.
func stuckOn(d flux.Deployment, state rollout) (rev string, since time.Time, failing bool) {
	if !d.FailingSince.IsZero() && d.AttemptedRevision != "" {
		return d.AttemptedRevision, d.FailingSince, true
	}
	if state.state.PendingSince.IsZero() {
		return "", time.Time{}, false
	}
	since = state.state.PendingSince
	if d.Applied.After(since) {
		since = d.Applied
	}
	return d.SourceRevision, since, false
}

// watchStuck announces, once per episode and across processes, an object whose next revision has waited longer
// than StuckAfter, and its recovery once it has none waiting; it returns when to look again.
func (t *Tracker) watchStuck(ctx context.Context, d flux.Deployment, attrs telemetry.ObjectAttributes, log *slog.Logger) (time.Duration, error) {
	if !t.watchesStuck() {
		return 0, nil
	}
	t.rollouts.mu.Lock()
	state := t.rollouts.states[rolloutKey(d.Kind, d.Namespace, d.Name)]
	t.rollouts.mu.Unlock()
	rev, since, failing := stuckOn(d, state)
	now := t.opts.Clock.Now()
	for range maxDecisions {
		entry, known := t.opts.Ledger.Get(d.UID)
		if !known {
			return 0, nil // nothing applied yet: no episode to mark
		}
		next, s := entry, Stuck{Object: attrs, UID: d.UID, Applied: d.Revision, At: now}
		switch {
		case since.IsZero() && entry.Stuck == "":
			return 0, nil
		case since.IsZero():
			// Caught up without a new apply (the source went back): the episode ends here.
			s.Event, s.Revision, s.Since = EventRecovered, entry.Stuck, entry.StuckSince
			next.Stuck, next.StuckSince = "", time.Time{}
		case entry.Stuck != "":
			return 0, nil // announced already
		case now.Sub(since) < t.opts.StuckAfter:
			return since.Add(t.opts.StuckAfter).Sub(now), nil
		default:
			s.Event, s.Revision, s.Since, s.Failing, s.Commits = EventStuck, rev, since, failing, state.pending
			next.Stuck, next.StuckSince = rev, since.UTC().Truncate(time.Second)
		}
		items, err := t.stuckNotices(s)
		if err != nil {
			return 0, err
		}
		err = t.outbox.SwapQueue(ctx, d.UID, &entry, next, items)
		if errors.Is(err, ledger.ErrConflict) {
			continue
		}
		if err != nil {
			t.opts.Recorder.AddError(ctx, telemetry.ReasonLedger, attrs)
			return 0, fmt.Errorf("%s notice of %s/%s: %w", s.Event, d.Namespace, d.Name, err)
		}
		log.InfoContext(ctx, "rollout "+s.Event+": notice queued", "stuck_revision", s.Revision, "since", s.Since, "failing", s.Failing,
			"pending_commits", len(s.Commits))
		return 0, nil
	}
	return 0, nil
}

// recovery ends prev's stuck episode in next, the checkpoint of an apply (rec, when it recorded commits), and
// returns the recovered notices to queue with it.
func (t *Tracker) recovery(d flux.Deployment, prev *ledger.Entry, next *ledger.Entry, at time.Time, rec *Record) ([]ledger.Item, error) {
	if prev == nil || prev.Stuck == "" {
		return nil, nil
	}
	if prev.Revision == next.Revision {
		next.Stuck, next.StuckSince = prev.Stuck, prev.StuckSince
		return nil, nil
	}
	s := Stuck{Event: EventRecovered, Object: telemetry.ObjectAttributes{Cluster: t.opts.ClusterName, Namespace: d.Namespace, Kind: d.Kind,
		Name: d.Name}, UID: d.UID, Revision: prev.Stuck, Applied: d.Revision, Since: prev.StuckSince, At: at}
	if rec != nil {
		s.Object, s.Commits, s.At = rec.Object, rec.Commits, rec.Applied
	}
	return t.stuckNotices(s)
}
