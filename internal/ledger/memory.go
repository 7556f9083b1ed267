package ledger

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// Memory is a Ledger that lives only in memory.
type Memory struct {
	mu      sync.RWMutex
	entries map[string]Entry
	items   map[string]Item
}

var _ Outbox = (*Memory)(nil)

// NewMemory returns an empty in-memory ledger.
func NewMemory() *Memory { return &Memory{entries: map[string]Entry{}, items: map[string]Item{}} }

// Load does nothing: the memory ledger starts empty.
func (m *Memory) Load(context.Context) error { return nil }

// Get returns the entry for uid.
func (m *Memory) Get(uid string) (Entry, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e, ok := m.entries[uid]
	return e, ok
}

// Swap stores next for uid if the entry is still prev.
func (m *Memory) Swap(ctx context.Context, uid string, prev *Entry, next Entry) error {
	return m.SwapQueue(ctx, uid, prev, next, nil)
}

// SwapQueue is Swap that also keeps items when the swap takes place (an item already kept stays as it is).
func (m *Memory) SwapQueue(_ context.Context, uid string, prev *Entry, next Entry, items []Item) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	stored, ok := m.entries[uid]
	if !matches(stored, ok, prev) {
		return fmt.Errorf("ledger: entry %s: %w", uid, ErrConflict)
	}
	m.entries[uid] = next
	for _, it := range items {
		if _, kept := m.items[it.ID]; !kept {
			m.items[it.ID] = it
		}
	}
	return nil
}

// Pending returns the items not yet done, oldest first.
func (m *Memory) Pending() []Item {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return oldestFirst(slices.Collect(maps.Values(m.items)))
}

// Done removes the items ids.
func (m *Memory) Done(_ context.Context, ids ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		delete(m.items, id)
	}
	return nil
}

// Delete removes the entry for uid.
func (m *Memory) Delete(_ context.Context, uid string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.entries, uid)
	return nil
}

// Len returns the number of entries.
func (m *Memory) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.entries)
}

// Entries returns a copy of all entries by UID.
func (m *Memory) Entries() map[string]Entry {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return maps.Clone(m.entries)
}

// Find returns the UIDs whose entries match.
func (m *Memory) Find(match func(Entry) bool) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return find(m.entries, match)
}
