package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// DefaultShards spreads entries over enough ConfigMaps that 10,000 objects stay far below the 1 MiB limit.
	DefaultShards = 32
	// DefaultPrefix names the shard ConfigMaps: DefaultPrefix-00, DefaultPrefix-01, ...
	DefaultPrefix = "flux-commit-tracker-ledger"
	// LabelKey marks the ConfigMaps that hold ledger shards.
	LabelKey = "flux-commit-tracker.io/ledger"
	labelVal = "v1"
	// MaxEntryBytes bounds one encoded entry; a larger stored value is skipped as bad, a larger new one refused.
	MaxEntryBytes = 2048
	// maxWriteAttempts bounds the re-reads of one write that keeps meeting concurrent writers.
	maxWriteAttempts = 16
)

// ShardName is the name of shard i under prefix.
func ShardName(prefix string, i int) string { return fmt.Sprintf("%s-%02d", prefix, i) }

// ConfigMaps is a Ledger stored in sharded ConfigMaps in one namespace. Every write is a compare-and-set: the
// shard's resourceVersion guards the write, and after a conflict the shard is re-read, memory refreshed and the
// entry compared again with the one the caller decided from.
type ConfigMaps struct {
	client     client.Client
	reader     client.Reader
	namespace  string
	prefix     string
	shards     int
	onBadEntry func(ctx context.Context, shard, key string, err error)
	writer     string
	timeout    time.Duration

	mu      sync.RWMutex
	entries map[string]Entry
	shardOf map[string]string // uid → ConfigMap name holding it
	locks   map[string]*sync.Mutex
	// stored holds the last written or read version of each shard, so a write is one Update.
	stored map[string]*corev1.ConfigMap
}

var _ Ledger = (*ConfigMaps)(nil)

// ConfigMapsOptions configures a ConfigMaps ledger.
type ConfigMapsOptions struct {
	// Client writes shards; Reader (default Client) reads them uncached.
	Client client.Client
	Reader client.Reader
	// Namespace holds the shards; Prefix names them (default DefaultPrefix).
	Namespace string
	Prefix    string
	// Shards is the number of ConfigMaps entries are spread over (default DefaultShards).
	Shards int
	// OnBadEntry, if set, is told of every stored key that does not decode; the key is skipped.
	OnBadEntry func(ctx context.Context, shard, key string, err error)
	// Timeout bounds each read and write of a shard (default 30s): an apiserver that stops answering fails the
	// call, and the apply is retried.
	Timeout time.Duration
}

// NewConfigMaps returns a ledger backed by ConfigMaps; call Load before use.
func NewConfigMaps(opts ConfigMapsOptions) (*ConfigMaps, error) {
	if opts.Client == nil || opts.Namespace == "" {
		return nil, fmt.Errorf("ledger: a client and a namespace are required")
	}
	if opts.Reader == nil {
		opts.Reader = opts.Client
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Shards <= 0 {
		opts.Shards = DefaultShards
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.OnBadEntry == nil {
		opts.OnBadEntry = func(context.Context, string, string, error) {}
	}
	l := &ConfigMaps{
		client: opts.Client, reader: opts.Reader, namespace: opts.Namespace, prefix: opts.Prefix, shards: opts.Shards,
		onBadEntry: opts.OnBadEntry, writer: NewWriterID(), timeout: opts.Timeout,
		entries: map[string]Entry{}, shardOf: map[string]string{}, locks: map[string]*sync.Mutex{},
		stored: map[string]*corev1.ConfigMap{},
	}
	for i := range opts.Shards {
		l.locks[ShardName(l.prefix, i)] = &sync.Mutex{}
	}
	return l, nil
}

// Load reads every shard by name (the tracker may get only its own ConfigMaps); a missing shard is empty.
func (l *ConfigMaps) Load(ctx context.Context) error {
	for i := range l.shards {
		name := ShardName(l.prefix, i)
		cm, err := l.read(ctx, name)
		if err != nil {
			return err
		}
		l.refresh(ctx, name, cm)
	}
	return nil
}

// Get returns the entry for uid.
func (l *ConfigMaps) Get(uid string) (Entry, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	e, ok := l.entries[uid]
	return e, ok
}

// Len returns the number of entries.
func (l *ConfigMaps) Len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.entries)
}

// Entries returns a copy of all entries by UID.
func (l *ConfigMaps) Entries() map[string]Entry {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return maps.Clone(l.entries)
}

// Put stores e for uid whatever is stored.
func (l *ConfigMaps) Put(ctx context.Context, uid string, e Entry) error { return Put(ctx, l, uid, e) }

// Swap writes next for uid if the stored entry is still prev; an unchanged entry is not written again.
func (l *ConfigMaps) Swap(ctx context.Context, uid string, prev *Entry, next Entry) error {
	next.Writer = l.writer
	raw, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("ledger: encode entry for %s: %w", uid, err)
	}
	if len(raw) > MaxEntryBytes {
		return fmt.Errorf("ledger: entry for %s is %d bytes, over the %d-byte limit", uid, len(raw), MaxEntryBytes)
	}
	return l.write(ctx, l.shardFor(uid), func(cm *corev1.ConfigMap) (bool, error) {
		stored, ok, _ := decode(cm.Data[uid])
		if landed(stored, ok, next) {
			return false, nil // an earlier write of this decision went through though its answer was lost
		}
		if !matches(stored, ok, prev) {
			return false, fmt.Errorf("ledger: entry %s in %s/%s: %w", uid, l.namespace, cm.Name, ErrConflict)
		}
		if ok && stored.Equal(next) {
			return false, nil
		}
		cm.Data[uid] = string(raw)
		return true, nil
	})
}

// Delete removes the entry for uid from its shard.
func (l *ConfigMaps) Delete(ctx context.Context, uid string) error {
	l.mu.RLock()
	name, placed := l.shardOf[uid]
	l.mu.RUnlock()
	if !placed {
		return nil
	}
	return l.write(ctx, name, func(cm *corev1.ConfigMap) (bool, error) {
		if _, ok := cm.Data[uid]; !ok {
			return false, nil
		}
		delete(cm.Data, uid)
		return true, nil
	})
}

// write applies mutate to the shard and stores it: one Update from the cached version; after a conflict the
// shard is re-read, memory refreshed and mutate asked again. A deleted shard is created again.
func (l *ConfigMaps) write(ctx context.Context, name string, mutate func(*corev1.ConfigMap) (bool, error)) error {
	l.mu.Lock()
	lock := l.locks[name]
	if lock == nil {
		lock = &sync.Mutex{}
		l.locks[name] = lock
	}
	cached := l.stored[name]
	l.mu.Unlock()
	lock.Lock()
	defer lock.Unlock()

	var cm *corev1.ConfigMap
	if cached != nil {
		cm = cached.DeepCopy()
	} else {
		var err error
		if cm, err = l.read(ctx, name); err != nil {
			return err
		}
		l.refresh(ctx, name, cm)
		cm = cm.DeepCopy()
	}
	for range maxWriteAttempts {
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		changed, err := mutate(cm)
		if err != nil || !changed {
			l.refresh(ctx, name, cm)
			return err
		}
		l.dropBadKeys(ctx, cm)
		cctx, cancel := context.WithTimeout(ctx, l.timeout)
		if cm.ResourceVersion == "" {
			err = l.client.Create(cctx, cm)
		} else {
			err = l.client.Update(cctx, cm)
		}
		cancel()
		switch {
		case err == nil:
			l.refresh(ctx, name, cm)
			return nil
		case apierrors.IsConflict(err), apierrors.IsAlreadyExists(err), apierrors.IsNotFound(err):
			// Another writer, a hand edit or a deletion: read what is there now and decide again.
			fresh, rerr := l.read(ctx, name)
			if rerr != nil {
				return rerr
			}
			l.refresh(ctx, name, fresh)
			cm = fresh.DeepCopy()
		default:
			return fmt.Errorf("ledger: write ConfigMap %s/%s: %w", l.namespace, name, err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("ledger: write ConfigMap %s/%s: %w", l.namespace, name, ctx.Err())
		}
	}
	return fmt.Errorf("ledger: write ConfigMap %s/%s: still conflicting after %d attempts", l.namespace, name, maxWriteAttempts)
}

// read returns the stored shard, or a new empty one when it does not exist.
func (l *ConfigMaps) read(ctx context.Context, name string) (*corev1.ConfigMap, error) {
	cm := &corev1.ConfigMap{}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	err := l.reader.Get(ctx, types.NamespacedName{Namespace: l.namespace, Name: name}, cm)
	if apierrors.IsNotFound(err) {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			Namespace: l.namespace, Name: name,
			Labels: map[string]string{LabelKey: labelVal, "app.kubernetes.io/managed-by": "flux-commit-tracker"},
		}, Data: map[string]string{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: read ConfigMap %s/%s: %w", l.namespace, name, err)
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	return cm, nil
}

// refresh makes memory hold exactly the entries of shard name as cm has them; bad keys are skipped.
func (l *ConfigMaps) refresh(ctx context.Context, name string, cm *corev1.ConfigMap) {
	decoded := make(map[string]Entry, len(cm.Data))
	for uid, raw := range cm.Data {
		e, ok, err := decode(raw)
		if err != nil {
			l.onBadEntry(ctx, name, uid, err)
			continue
		}
		if ok {
			decoded[uid] = e
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for uid, shard := range l.shardOf {
		if _, still := decoded[uid]; shard == name && !still {
			delete(l.entries, uid)
			delete(l.shardOf, uid)
		}
	}
	for uid, e := range decoded {
		if shard, placed := l.shardOf[uid]; placed && shard != name {
			continue // the copy in the shard it was placed in wins
		}
		l.entries[uid], l.shardOf[uid] = e, name
	}
	if cm.ResourceVersion != "" {
		l.stored[name] = cm.DeepCopy()
	} else {
		delete(l.stored, name)
	}
}

// dropBadKeys removes keys that do not decode from a shard about to be written: they would be skipped at every
// load, and their objects start a new baseline, which records nothing.
func (l *ConfigMaps) dropBadKeys(ctx context.Context, cm *corev1.ConfigMap) {
	for uid, raw := range cm.Data {
		if _, _, err := decode(raw); err != nil {
			delete(cm.Data, uid)
			l.onBadEntry(ctx, cm.Name, uid, fmt.Errorf("removed: %w", err))
		}
	}
}

// shardFor is the shard holding uid, else the one its hash picks.
func (l *ConfigMaps) shardFor(uid string) string {
	l.mu.RLock()
	name, placed := l.shardOf[uid]
	l.mu.RUnlock()
	if placed {
		return name
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(uid))
	return ShardName(l.prefix, int(h.Sum32()%uint32(l.shards)))
}

// errEmptyEntry reports a stored value that decodes to nothing usable.
var errEmptyEntry = errors.New("entry has no kind, name or revision")

// decode parses one stored value; ok is false for an absent (empty) value, err set for a bad one.
func decode(raw string) (e Entry, ok bool, err error) {
	if raw == "" {
		return Entry{}, false, nil
	}
	if len(raw) > MaxEntryBytes {
		return Entry{}, false, fmt.Errorf("entry is %d bytes, over the %d-byte limit", len(raw), MaxEntryBytes)
	}
	if err := json.Unmarshal([]byte(raw), &e); err != nil {
		return Entry{}, false, fmt.Errorf("decode entry: %w", err)
	}
	if e.Kind == "" || e.Name == "" || e.Revision == "" {
		return Entry{}, false, errEmptyEntry
	}
	return e, true, nil
}
