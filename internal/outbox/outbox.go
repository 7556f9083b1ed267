// Package outbox delivers the notices the tracker stores in its ledger with each checkpoint: asynchronously,
// with backoff and jitter, each carrying its ID so a destination can deduplicate, and none lost while a
// destination is down. It runs on the replica that leads.
package outbox

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/redact"
)

// Sender delivers the notices of one sink.
type Sender interface {
	Send(ctx context.Context, it ledger.Item) error
}

// ErrRefused is wrapped by a Send error that retrying cannot help (the destination refused the notice): the
// notice is dropped and counted.
var ErrRefused = errors.New("notice refused")

// Results of one delivery attempt.
const (
	ResultDelivered    = "delivered"
	ResultRetry        = "retry"
	ResultRefused      = "refused"
	ResultUnconfigured = "unconfigured" // its sink is no longer configured: dropped
	ResultOverflow     = "overflow"     // not queued: its ledger shard held the most notices waiting
)

// Sinks that deliver from the outbox, by the name their notices carry.
const (
	SinkWebhook = "webhook"
	SinkSlack   = "slack"
	SinkTeams   = "teams"
	SinkGrafana = "grafana"
	SinkForge   = "forge" // commit statuses and deployments
)

// Every sink and every result, for the metrics' allowed values.
var (
	Sinks   = []string{SinkWebhook, SinkSlack, SinkTeams, SinkGrafana, SinkForge}
	Results = []string{ResultDelivered, ResultRetry, ResultRefused, ResultUnconfigured, ResultOverflow}
)

// Defaults of a Deliverer.
const (
	DefaultInterval   = time.Second
	DefaultTimeout    = 10 * time.Second
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 5 * time.Minute
)

// Deliverer sends pending notices to their sinks.
type Deliverer struct {
	Outbox  ledger.Outbox
	Senders map[string]Sender
	Logger  *slog.Logger
	// Clock (default the real one), Interval between passes, Timeout of one send, and the backoff bounds of a
	// failing notice; zero values take the defaults.
	Clock                  clock.Clock
	Interval, Timeout      time.Duration
	MinBackoff, MaxBackoff time.Duration
	// OnResult, if set, is told of every attempt, from one goroutine per sink at once; latency is from the
	// notice's creation, for a delivered one.
	OnResult func(ctx context.Context, sink, result string, latency time.Duration)

	mu    sync.Mutex
	retry map[string]backoff // by sink: a failing destination waits as a whole, its notices kept in order
}

type backoff struct {
	attempts int
	next     time.Time
}

func (d *Deliverer) defaults() {
	if d.Clock == nil {
		d.Clock = clock.RealClock{}
	}
	if d.Interval <= 0 {
		d.Interval = DefaultInterval
	}
	if d.Timeout <= 0 {
		d.Timeout = DefaultTimeout
	}
	if d.MinBackoff <= 0 {
		d.MinBackoff = DefaultMinBackoff
	}
	if d.MaxBackoff <= 0 {
		d.MaxBackoff = DefaultMaxBackoff
	}
	if d.OnResult == nil {
		d.OnResult = func(context.Context, string, string, time.Duration) {}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
}

// Run makes a pass every Interval until ctx ends.
func (d *Deliverer) Run(ctx context.Context) error {
	d.defaults()
	for {
		d.Pass(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-d.Clock.After(d.Interval):
		}
	}
}

// Pass tries every pending notice that is due, each sink's in order on its own goroutine, so a slow destination
// holds back only its own notices.
func (d *Deliverer) Pass(ctx context.Context) {
	d.defaults()
	bySink := map[string][]ledger.Item{}
	for _, it := range d.Outbox.Pending() {
		bySink[it.Sink] = append(bySink[it.Sink], it)
	}
	var wg sync.WaitGroup
	for sink, items := range bySink {
		wg.Go(func() {
			for _, it := range items {
				if ctx.Err() != nil || !d.attempt(ctx, sink, it) {
					return // the destination fails: the rest of its notices wait for the next pass
				}
			}
		})
	}
	wg.Wait()
}

// attempt delivers it unless its sink waits after a failure; it reports false when the sink is not to be tried
// further in this pass.
func (d *Deliverer) attempt(ctx context.Context, sink string, it ledger.Item) bool {
	now := d.Clock.Now()
	d.mu.Lock()
	b := d.retry[sink]
	d.mu.Unlock()
	if now.Before(b.next) {
		return false
	}
	sender, ok := d.Senders[sink]
	if !ok {
		d.Logger.WarnContext(ctx, "notice dropped: its sink is not configured", "sink", sink, "notice", it.ID)
		d.finish(ctx, sink, it, ResultUnconfigured, 0)
		return true
	}
	sctx, cancel := context.WithTimeout(ctx, d.Timeout)
	err := sender.Send(sctx, it)
	cancel()
	switch {
	case err == nil:
		d.finish(ctx, sink, it, ResultDelivered, d.Clock.Since(it.Created))
		return true
	case errors.Is(err, ErrRefused):
		d.Logger.WarnContext(ctx, "notice refused by its destination: dropped", "sink", sink, "notice", it.ID, "error", redact.Error(err))
		d.finish(ctx, sink, it, ResultRefused, 0)
		return true
	}
	b.attempts++
	wait := min(d.MaxBackoff, d.MinBackoff<<min(b.attempts-1, 20))
	wait = wait/2 + rand.N(wait) // jittered: half to one and a half times
	if limited, ok := commits.RetryAfter(err, now); ok {
		wait = max(wait, min(limited, d.MaxBackoff)) // a destination's rate limit is honoured
	}
	b.next = now.Add(wait)
	d.mu.Lock()
	if d.retry == nil {
		d.retry = map[string]backoff{}
	}
	d.retry[sink] = b
	d.mu.Unlock()
	d.Logger.InfoContext(ctx, "notice not delivered yet: retried later", "sink", sink, "notice", it.ID, "attempts", b.attempts,
		"retry_in", wait.Round(time.Millisecond), "error", redact.Error(err))
	d.OnResult(ctx, sink, ResultRetry, 0)
	return false
}

// finish removes a notice that needs no more attempts.
func (d *Deliverer) finish(ctx context.Context, sink string, it ledger.Item, result string, latency time.Duration) {
	if err := d.Outbox.Done(ctx, it.ID); err != nil {
		// Still in the ledger: tried again at the next pass, and the destination sees the same ID.
		d.Logger.WarnContext(ctx, "delivered notice not yet removed from the outbox", "sink", sink, "notice", it.ID, "error", err)
	}
	d.mu.Lock()
	delete(d.retry, sink)
	d.mu.Unlock()
	d.OnResult(ctx, sink, result, latency)
}
