// Package ledger remembers, per Flux object, the revision it last applied and the furthest revision whose
// commits were recorded (a high-water mark), so that each (object, commit) is recorded exactly once across
// restarts, rollbacks and any number of tracker processes.
package ledger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ErrConflict reports that the stored entry is no longer the one a decision was made from; the caller's
// memory has been refreshed and it must decide again.
var ErrConflict = errors.New("ledger entry changed by another writer")

// Entry is the checkpoint for one Flux object. It is stored as compact JSON (see MarshalJSON); the longer format
// written before is still read.
type Entry struct {
	Kind      string
	Namespace string
	Name      string
	// Revision is the revision the object last applied, as Flux reports it.
	Revision string
	// Recorded is the furthest revision whose delivered commits were recorded (or the baseline); a rollback
	// leaves it in place so that a roll-forward records only commits past it. Empty in entries written before
	// it existed, and in entries where it equals Revision: there Revision is the mark.
	Recorded string
	// Export identifies (a fixed-size hash) the last exporter-info.json seen at Recorded, so a file left
	// unchanged by later commits does not record its upstream commits again.
	Export string
	// UpdatedAt is when the entry was written, stored to the second.
	UpdatedAt time.Time
	// Writer identifies the process that wrote the entry, so a write that landed though its answer was lost
	// (an apiserver restart) is known as its own and not decided again.
	Writer string
	// Stuck is the revision the object was announced stuck on (waiting or failing since StuckSince, stored to
	// the second); empty when it is not. It makes the stuck notice once per episode, and the recovered one.
	Stuck      string
	StuckSince time.Time
	// Applies are the object's last applies of a new revision, oldest first, at most MaxApplies: when each
	// revision (its digest) was applied, stored to the second, for telling when a commit was.
	Applies []Apply
}

// Apply is one apply of a new revision: its digest and when Flux applied it.
type Apply struct {
	Digest string
	At     time.Time
}

// MaxApplies bounds the applies an entry keeps.
const MaxApplies = 10

// WithApply returns applies with a (at to the second) added last, the oldest dropped past MaxApplies.
func WithApply(applies []Apply, a Apply) []Apply {
	a.At = a.At.UTC().Truncate(time.Second)
	out := append(slices.Clone(applies), a)
	return out[max(0, len(out)-MaxApplies):]
}

// Mark returns the high-water mark: the furthest revision recorded.
func (e Entry) Mark() string {
	if e.Recorded != "" {
		return e.Recorded
	}
	return e.Revision
}

// Equal reports whether two entries hold the same checkpoint, written by the same process at the same time.
func (e Entry) Equal(o Entry) bool {
	return e.SameCheckpoint(o) && e.UpdatedAt.Equal(o.UpdatedAt) && e.Writer == o.Writer
}

// SameCheckpoint reports whether two entries hold the same revisions, export, stuck episode and applies, whenever
// and by whom written.
func (e Entry) SameCheckpoint(o Entry) bool {
	return e.Kind == o.Kind && e.Namespace == o.Namespace && e.Name == o.Name && e.Revision == o.Revision &&
		e.Mark() == o.Mark() && e.Export == o.Export && e.Stuck == o.Stuck && e.StuckSince.Equal(o.StuckSince) &&
		slices.EqualFunc(e.Applies, o.Applies, func(a, b Apply) bool { return a.Digest == b.Digest && a.At.Equal(b.At) })
}

// NewWriterID returns a random identity for one ledger-writing process.
func NewWriterID() string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return fmt.Sprintf("t%x", time.Now().UnixNano())
	}
	return hex.EncodeToString(b)
}

// landed reports whether stored is next as this writer wrote it: the write went through, whatever its answer.
func landed(stored Entry, ok bool, next Entry) bool {
	return ok && next.Writer != "" && stored.Writer == next.Writer && stored.SameCheckpoint(next)
}

// Ledger stores one Entry per object UID.
type Ledger interface {
	// Load reads the stored entries; it must succeed before any other call.
	Load(ctx context.Context) error
	// Get returns the entry for uid.
	Get(uid string) (Entry, bool)
	// Swap stores next for uid, durably, if the stored entry is still prev (nil: no entry). Otherwise it
	// refreshes memory from the store and returns an error wrapping ErrConflict.
	Swap(ctx context.Context, uid string, prev *Entry, next Entry) error
	// Delete removes the entry for uid; removing a missing entry is not an error.
	Delete(ctx context.Context, uid string) error
	// Len returns the number of entries.
	Len() int
	// Entries returns a copy of all entries by UID.
	Entries() map[string]Entry
	// Find returns the UIDs whose entries match, without copying the entries.
	Find(match func(Entry) bool) []string
}

// find returns the UIDs of the entries that match; the caller holds their lock.
func find(entries map[string]Entry, match func(Entry) bool) []string {
	var uids []string
	for uid, e := range entries {
		if match(e) {
			uids = append(uids, uid)
		}
	}
	return uids
}

// Put stores e for uid whatever is stored: a Swap from the entry in memory, retried on conflicts.
func Put(ctx context.Context, l Ledger, uid string, e Entry) error {
	for {
		var prev *Entry
		if old, ok := l.Get(uid); ok {
			prev = &old
		}
		err := l.Swap(ctx, uid, prev, e)
		if !errors.Is(err, ErrConflict) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// matches reports whether stored (found when ok) is the entry prev describes.
func matches(stored Entry, ok bool, prev *Entry) bool {
	if prev == nil {
		return !ok
	}
	return ok && stored.Equal(*prev)
}
