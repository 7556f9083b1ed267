package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Item is one notice a sink must deliver over the network. It is stored in the shard of the object it is about,
// in the same write as that object's checkpoint, so a crash neither loses it nor makes it twice; it stays until
// delivered (Done). Its ID is the same for the same notice whoever makes it, so a destination can deduplicate.
type Item struct {
	ID      string
	Sink    string
	Created time.Time
	Body    json.RawMessage
}

// Outbox is a Ledger that also keeps the items its checkpoints queue.
type Outbox interface {
	Ledger
	// SwapQueue is Swap that also stores items in the same write, when the swap takes place.
	SwapQueue(ctx context.Context, uid string, prev *Entry, next Entry, items []Item) error
	// Pending returns the items not yet delivered, oldest first.
	Pending() []Item
	// Done removes delivered (or undeliverable) items.
	Done(ctx context.Context, ids ...string) error
}

const (
	// outboxPrefix marks the shard keys that hold items rather than entries.
	outboxPrefix = "outbox."
	// MaxItemBytes bounds one stored item.
	MaxItemBytes = 4096
	// MaxItemsPerShard bounds the items waiting in one shard: past it new items are dropped and reported.
	MaxItemsPerShard = 64
)

// ErrOutboxFull is reported (through OnOverflow) for an item dropped because its shard holds MaxItemsPerShard.
var ErrOutboxFull = errors.New("outbox full")

// ItemID names the notice of sink about parts (an object, a revision, an event) alike in every process.
func ItemID(sink string, parts ...string) string {
	h := sha256.New()
	for _, p := range append([]string{sink}, parts...) {
		_, _ = h.Write([]byte(p))
		_, _ = h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// wireItem is an Item as stored.
type wireItem struct {
	S string          `json:"s"`
	T int64           `json:"t"`
	B json.RawMessage `json:"b"`
}

func isItemKey(key string) bool { return strings.HasPrefix(key, outboxPrefix) }

func encodeItem(it Item) (string, error) {
	// Bodies are kept as they are: no HTML escaping, so what is delivered (and signed) reads back unchanged.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(wireItem{S: it.Sink, T: it.Created.UnixMilli(), B: it.Body}); err != nil {
		return "", fmt.Errorf("ledger: encode item %s: %w", it.ID, err)
	}
	raw := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(raw) > MaxItemBytes {
		return "", fmt.Errorf("ledger: item %s of %s is %d bytes, over the %d-byte limit", it.ID, it.Sink, len(raw), MaxItemBytes)
	}
	return string(raw), nil
}

func decodeItem(key, raw string) (Item, error) {
	if len(raw) > MaxItemBytes {
		return Item{}, fmt.Errorf("item is %d bytes, over the %d-byte limit", len(raw), MaxItemBytes)
	}
	var w wireItem
	if err := json.Unmarshal([]byte(raw), &w); err != nil {
		return Item{}, fmt.Errorf("decode item: %w", err)
	}
	id := strings.TrimPrefix(key, outboxPrefix)
	if w.S == "" || id == "" || len(w.B) == 0 {
		return Item{}, errors.New("item has no sink, id or body")
	}
	return Item{ID: id, Sink: w.S, Created: time.UnixMilli(w.T).UTC(), Body: w.B}, nil
}

// oldestFirst orders items by creation, then ID.
func oldestFirst(items []Item) []Item {
	slices.SortFunc(items, func(a, b Item) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return items
}
