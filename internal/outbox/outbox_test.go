package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/outbox"
)

// flaky fails its first failures sends, then takes every notice.
type flaky struct {
	mu       sync.Mutex
	failures int
	err      error
	got      []string
}

func (f *flaky) Send(_ context.Context, it ledger.Item) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failures > 0 {
		f.failures--
		return f.err
	}
	f.got = append(f.got, it.ID)
	return nil
}

func queue(t *testing.T, led *ledger.Memory, sink string, n int, at time.Time) {
	t.Helper()
	for i := range n {
		uid := fmt.Sprintf("uid-%s-%d", sink, i)
		it := ledger.Item{ID: ledger.ItemID(sink, uid), Sink: sink, Created: at.Add(time.Duration(i) * time.Millisecond), Body: json.RawMessage(`{}`)}
		if err := led.SwapQueue(context.Background(), uid, nil, ledger.Entry{Kind: "Kustomization", Name: uid, Revision: "r"}, []ledger.Item{it}); err != nil {
			t.Fatal(err)
		}
	}
}

// A destination down for a while delays its notices, in order, with growing waits; it loses none and gets each
// once. Another sink's notices go meanwhile.
func TestDownDestinationDelaysButLosesNothing(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(t0)
	led := ledger.NewMemory()
	queue(t, led, "down", 3, t0)
	queue(t, led, "up", 2, t0)
	down := &flaky{failures: 4, err: errors.New("connection refused")}
	up := &flaky{}
	results := map[string]int{}
	var latencies []time.Duration
	var mu sync.Mutex
	d := &outbox.Deliverer{Outbox: led, Senders: map[string]outbox.Sender{"down": down, "up": up}, Clock: clk,
		OnResult: func(_ context.Context, sink, result string, latency time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			results[sink+"/"+result]++
			if sink == "down" && result == outbox.ResultDelivered {
				latencies = append(latencies, latency)
			}
		}}
	for pass := 0; len(led.Pending()) > 0 && pass < 100; pass++ {
		d.Pass(context.Background())
		clk.Step(time.Second)
	}
	if n := len(led.Pending()); n != 0 {
		t.Fatalf("%d notices still pending", n)
	}
	if len(up.got) != 2 || len(down.got) != 3 {
		t.Fatalf("delivered %d to up and %d to down, want 2 and 3, once each", len(up.got), len(down.got))
	}
	if results["down/retry"] != 4 || results["down/delivered"] != 3 || results["up/delivered"] != 2 {
		t.Errorf("results %v, want 4 retries then 3 delivered for down, 2 delivered for up", results)
	}
	for i, id := range down.got {
		if want := ledger.ItemID("down", fmt.Sprintf("uid-down-%d", i)); id != want {
			t.Errorf("down got %s at %d, want %s: in order", id, i, want)
		}
	}
	// Backoff after 4 failures: at least 0.5+1+2+4 s passed before the first delivery.
	if len(latencies) == 0 || latencies[0] < 7*time.Second {
		t.Errorf("first delivery to down after %v, want the backoff of 4 failures (≥ 7.5 s)", latencies)
	}
}

func TestRefusedAndUnconfiguredNoticesAreDropped(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	led := ledger.NewMemory()
	queue(t, led, "picky", 1, t0)
	queue(t, led, "gone", 1, t0)
	results := map[string]int{}
	var mu sync.Mutex
	d := &outbox.Deliverer{Outbox: led, Senders: map[string]outbox.Sender{"picky": &flaky{failures: 1, err: fmt.Errorf("400 Bad Request: %w", outbox.ErrRefused)}},
		Clock: clocktesting.NewFakeClock(t0), OnResult: func(_ context.Context, sink, result string, _ time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			results[sink+"/"+result]++
		}}
	d.Pass(context.Background())
	if n := len(led.Pending()); n != 0 {
		t.Errorf("%d notices pending, want both dropped", n)
	}
	if results["picky/refused"] != 1 || results["gone/unconfigured"] != 1 {
		t.Errorf("results %v, want one refused and one unconfigured", results)
	}
}
