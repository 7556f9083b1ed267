package ledger

import (
	"context"
	"fmt"
	"maps"
	"sync"
)

// Memory is a Ledger that lives only in memory.
type Memory struct {
	mu      sync.RWMutex
	entries map[string]Entry
}

var _ Ledger = (*Memory)(nil)

// NewMemory returns an empty in-memory ledger.
func NewMemory() *Memory { return &Memory{entries: map[string]Entry{}} }

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
func (m *Memory) Swap(_ context.Context, uid string, prev *Entry, next Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	stored, ok := m.entries[uid]
	if !matches(stored, ok, prev) {
		return fmt.Errorf("ledger: entry %s: %w", uid, ErrConflict)
	}
	m.entries[uid] = next
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
