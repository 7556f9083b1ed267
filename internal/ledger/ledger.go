// Package ledger remembers, per Flux object, the last revision whose commits were recorded, so that each
// (object, revision) is recorded exactly once across restarts.
package ledger

import (
	"context"
	"time"
)

// Entry is the checkpoint for one Flux object.
type Entry struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Revision  string `json:"revision"`
	// Export identifies the last exporter-info.json seen at Revision, so a file left unchanged by later commits
	// does not record its upstream commits again.
	Export    string    `json:"export,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Ledger stores one Entry per object UID.
type Ledger interface {
	// Load reads the stored entries; it must succeed before any other call.
	Load(ctx context.Context) error
	// Get returns the entry for uid.
	Get(uid string) (Entry, bool)
	// Put stores the entry for uid, durably, before it returns.
	Put(ctx context.Context, uid string, e Entry) error
	// Delete removes the entry for uid; removing a missing entry is not an error.
	Delete(ctx context.Context, uid string) error
	// Len returns the number of entries.
	Len() int
	// Entries returns a copy of all entries by UID.
	Entries() map[string]Entry
}
