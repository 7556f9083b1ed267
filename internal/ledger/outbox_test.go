package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
)

func item(i int, at time.Time) ledger.Item {
	return ledger.Item{ID: ledger.ItemID("webhook", "uid", fmt.Sprint(i)), Sink: "webhook", Created: at.Add(time.Duration(i) * time.Second),
		Body: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}
}

// Items go in with the checkpoint that queues them, survive a restart, are never queued by a swap that
// conflicts, and leave once done.
func TestOutboxItemsTravelWithTheirCheckpoint(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	l := newLedger(t, ns, 4)
	e := ledger.Entry{Kind: "Kustomization", Namespace: "apps", Name: "app", Revision: rev(1), UpdatedAt: at}
	if err := l.SwapQueue(ctx, "uid-a", nil, e, []ledger.Item{item(1, at), item(2, at)}); err != nil {
		t.Fatal(err)
	}
	// A swap from a stale entry conflicts and queues nothing.
	stale := e
	stale.Revision = rev(0)
	next := e
	next.Revision = rev(2)
	if err := l.SwapQueue(ctx, "uid-a", &stale, next, []ledger.Item{item(3, at)}); !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("swap from a stale entry = %v, want a conflict", err)
	}

	restarted := newLedger(t, ns, 4)
	got := restarted.Pending()
	if len(got) != 2 || got[0].ID != item(1, at).ID || got[1].ID != item(2, at).ID || string(got[0].Body) != `{"n":1}` ||
		got[0].Sink != "webhook" || !got[0].Created.Equal(at.Add(time.Second)) {
		t.Fatalf("after a restart pending = %+v, want items 1 and 2 as queued", got)
	}
	if restarted.Len() != 1 {
		t.Errorf("%d entries, want 1: items are not entries", restarted.Len())
	}
	if err := restarted.Done(ctx, got[0].ID); err != nil {
		t.Fatal(err)
	}
	if p := newLedger(t, ns, 4).Pending(); len(p) != 1 || p[0].ID != got[1].ID {
		t.Errorf("after done and a restart pending = %+v, want item 2 only", p)
	}
}

// A shard holds at most MaxItemsPerShard items; the rest are dropped and reported, and the checkpoint still lands.
func TestOutboxIsBoundedPerShard(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	var dropped []string
	l, err := ledger.NewConfigMaps(ledger.ConfigMapsOptions{Client: env.Client, Namespace: ns, Shards: 1,
		OnOverflow: func(_ context.Context, it ledger.Item) { dropped = append(dropped, it.ID) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Load(ctx); err != nil {
		t.Fatal(err)
	}
	items := make([]ledger.Item, ledger.MaxItemsPerShard+3)
	for i := range items {
		items[i] = item(i, at)
	}
	e := ledger.Entry{Kind: "Kustomization", Namespace: "apps", Name: "app", Revision: rev(1), UpdatedAt: at}
	if err := l.SwapQueue(ctx, "uid-a", nil, e, items); err != nil {
		t.Fatal(err)
	}
	if n := len(l.Pending()); n != ledger.MaxItemsPerShard {
		t.Errorf("%d items pending, want the cap %d", n, ledger.MaxItemsPerShard)
	}
	if len(dropped) != 3 {
		t.Errorf("%d items reported dropped, want 3", len(dropped))
	}
	if got, ok := l.Get("uid-a"); !ok || got.Revision != rev(1) {
		t.Errorf("entry %+v (found %v), want the checkpoint stored", got, ok)
	}
}
