package ledger

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// DefaultShards spreads entries over enough ConfigMaps that one holding 10,000 objects is a few KB: a write
	// sends only the keys it changes, but etcd stores the whole shard again each time.
	DefaultShards = 256
	// DefaultPrefix names the shard ConfigMaps: DefaultPrefix-00, DefaultPrefix-01, ... DefaultPrefix-255.
	DefaultPrefix = "flux-commit-tracker-ledger"
	// LabelKey marks the ConfigMaps that hold ledger shards.
	LabelKey = "flux-commit-tracker.io/ledger"
	labelVal = "v1"
	// MaxEntryBytes bounds one encoded entry; a larger stored value is skipped as bad, a larger new one refused.
	MaxEntryBytes = 2048
	// legacyShards is the shard count of the earlier layout; Load also reads those names and moves what they hold.
	legacyShards = 32
	// maxWriteAttempts bounds the re-reads of one write that keeps meeting concurrent writers.
	maxWriteAttempts = 16
	// loadConcurrency bounds the shard reads and writes Load has in flight; the client's rate limit still applies.
	loadConcurrency = 8
)

// ShardName is the name of shard i under prefix.
func ShardName(prefix string, i int) string { return fmt.Sprintf("%s-%02d", prefix, i) }

// ConfigMaps is a Ledger stored in sharded ConfigMaps in one namespace. Every write is a compare-and-set: the
// shard's resourceVersion guards the write, and after a conflict the shard is re-read, memory refreshed and each
// entry compared again with the one its caller decided from. Swaps to one shard that wait at the same time are
// written together, in one merge patch of the keys they change, each with its own verdict.
type ConfigMaps struct {
	client     client.Client
	reader     client.Reader
	namespace  string
	prefix     string
	shards     int
	onBadEntry func(ctx context.Context, shard, key string, err error)
	writer     string
	timeout    time.Duration
	window     time.Duration
	clock      clock.Clock

	mu      sync.RWMutex
	entries map[string]Entry
	held    map[string]map[string]struct{} // shard → uids memory holds from it
	queues  map[string]*queue
	// stored holds the last written or read version of each shard, so a write is one Patch (or Create).
	stored map[string]*corev1.ConfigMap
	// items holds the outbox items by ID, itemShard the shard of each.
	items      map[string]Item
	itemShard  map[string]string
	onOverflow func(ctx context.Context, it Item)
}

var _ Outbox = (*ConfigMaps)(nil)

// ConfigMapsOptions configures a ConfigMaps ledger.
type ConfigMapsOptions struct {
	// Client writes shards; Reader (default Client) reads them uncached.
	Client client.Client
	Reader client.Reader
	// Namespace holds the shards; Prefix names them (default DefaultPrefix).
	Namespace string
	Prefix    string
	// Shards is the number of ConfigMaps entries are spread over (default DefaultShards). Every process sharing
	// the ledger must use the same count; Load moves entries stored under another count of up to max(Shards, 32).
	Shards int
	// OnBadEntry, if set, is told of every stored key that does not decode; the key is skipped.
	OnBadEntry func(ctx context.Context, shard, key string, err error)
	// Timeout bounds each read and write of a shard (default 30s): an apiserver that stops answering fails the
	// call, and the apply is retried.
	Timeout time.Duration
	// BatchWindow is how long a write waits for more Swaps and Deletes to its shard before the shard is written
	// (default 0: at once). Whatever the window, those that arrive while a write of their shard is in flight go
	// together in the next one.
	BatchWindow time.Duration
	// Clock times BatchWindow (default the real clock).
	Clock clock.Clock
	// OnOverflow, if set, is told of every outbox item dropped because its shard holds MaxItemsPerShard.
	OnOverflow func(ctx context.Context, it Item)
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
	if opts.BatchWindow < 0 {
		opts.BatchWindow = 0
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.OnBadEntry == nil {
		opts.OnBadEntry = func(context.Context, string, string, error) {}
	}
	if opts.OnOverflow == nil {
		opts.OnOverflow = func(context.Context, Item) {}
	}
	return &ConfigMaps{
		client: opts.Client, reader: opts.Reader, namespace: opts.Namespace, prefix: opts.Prefix, shards: opts.Shards,
		onBadEntry: opts.OnBadEntry, writer: NewWriterID(), timeout: opts.Timeout, window: opts.BatchWindow, clock: opts.Clock,
		entries: map[string]Entry{}, held: map[string]map[string]struct{}{}, queues: map[string]*queue{},
		stored: map[string]*corev1.ConfigMap{}, items: map[string]Item{}, itemShard: map[string]string{}, onOverflow: opts.OnOverflow,
	}, nil
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

// Find returns the UIDs whose entries match.
func (l *ConfigMaps) Find(match func(Entry) bool) []string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return find(l.entries, match)
}

// Put stores e for uid whatever is stored.
func (l *ConfigMaps) Put(ctx context.Context, uid string, e Entry) error { return Put(ctx, l, uid, e) }

// Swap writes next for uid if the stored entry is still prev; an unchanged entry is not written again. It returns
// once the shard holding next is written, or ctx ends.
func (l *ConfigMaps) Swap(ctx context.Context, uid string, prev *Entry, next Entry) error {
	return l.SwapQueue(ctx, uid, prev, next, nil)
}

// SwapQueue is Swap that also stores items in the shard, in the same write, when the swap takes place; an item
// already stored is kept as it is, and one past MaxItemsPerShard is dropped and reported to OnOverflow.
func (l *ConfigMaps) SwapQueue(ctx context.Context, uid string, prev *Entry, next Entry, items []Item) error {
	next.Writer = l.writer
	raw, err := encode(uid, next)
	if err != nil {
		return err
	}
	o := &op{uid: uid, prev: prev, next: next, raw: raw, items: items}
	for _, it := range items {
		r, err := encodeItem(it)
		if err != nil {
			return err
		}
		o.itemRaws = append(o.itemRaws, r)
	}
	err = l.submit(ctx, l.Home(uid), o)
	if err == nil {
		for _, it := range o.dropped {
			l.onOverflow(ctx, it)
		}
	}
	return err
}

// Pending returns the outbox items not yet delivered, oldest first.
func (l *ConfigMaps) Pending() []Item {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return oldestFirst(slices.Collect(maps.Values(l.items)))
}

// Done removes the items ids from their shards; an item already gone is not an error.
func (l *ConfigMaps) Done(ctx context.Context, ids ...string) error {
	var errs []error
	for _, id := range ids {
		l.mu.RLock()
		shard, ok := l.itemShard[id]
		l.mu.RUnlock()
		if !ok {
			continue
		}
		if err := l.submit(ctx, shard, &op{uid: outboxPrefix + id, del: true}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Delete removes the entry for uid from its shard.
func (l *ConfigMaps) Delete(ctx context.Context, uid string) error {
	if _, ok := l.Get(uid); !ok {
		return nil
	}
	return l.submit(ctx, l.Home(uid), &op{uid: uid, del: true})
}

// op is one change waiting for its shard's next write.
type op struct {
	uid  string
	del  bool // remove uid; otherwise store next (encoded as raw) if the stored entry is prev
	prev *Entry
	next Entry
	raw  string
	// items are stored with next; itemRaws are their encodings, dropped those past the shard's cap.
	items    []Item
	itemRaws []string
	dropped  []Item

	ctx       context.Context
	done      chan error
	abandoned atomic.Bool
}

// apply makes the change of o on cm if its condition holds; changed says whether cm must be written.
func (o *op) apply(cm *corev1.ConfigMap) (changed bool, err error) {
	if o.del {
		if _, ok := cm.Data[o.uid]; !ok {
			return false, nil
		}
		delete(cm.Data, o.uid)
		return true, nil
	}
	stored, ok, _ := decode(cm.Data[o.uid])
	if landed(stored, ok, o.next) {
		return false, nil // an earlier write of this decision went through though its answer was lost
	}
	if !matches(stored, ok, o.prev) {
		return false, fmt.Errorf("ledger: entry %s in %s/%s: %w", o.uid, cm.Namespace, cm.Name, ErrConflict)
	}
	if ok && stored.Equal(o.next) {
		return false, nil
	}
	cm.Data[o.uid] = o.raw
	o.dropped = nil
	held := 0
	for key := range cm.Data {
		if isItemKey(key) {
			held++
		}
	}
	for i, it := range o.items {
		key := outboxPrefix + it.ID
		if _, ok := cm.Data[key]; ok {
			continue
		}
		if held >= MaxItemsPerShard {
			o.dropped = append(o.dropped, it)
			continue
		}
		cm.Data[key] = o.itemRaws[i]
		held++
	}
	return true, nil
}

// queue holds the ops waiting for one shard; write is held while the shard is written.
type queue struct {
	write   sync.Mutex
	mu      sync.Mutex
	pending []*op
	armed   bool // a flush is on its way for pending
}

// queue returns the queue of shard name.
func (l *ConfigMaps) queue(name string) *queue {
	l.mu.Lock()
	defer l.mu.Unlock()
	q := l.queues[name]
	if q == nil {
		q = &queue{}
		l.queues[name] = q
	}
	return q
}

// submit queues o for shard name and waits for its verdict or the end of ctx.
func (l *ConfigMaps) submit(ctx context.Context, name string, o *op) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ledger: write %s to ConfigMap %s/%s: %w", o.uid, l.namespace, name, err)
	}
	o.ctx, o.done = ctx, make(chan error, 1)
	q := l.queue(name)
	q.mu.Lock()
	q.pending = append(q.pending, o)
	if !q.armed {
		q.armed = true
		var wait <-chan time.Time
		if l.window > 0 {
			wait = l.clock.NewTimer(l.window).C() // started here, so the window opens with the first op
		}
		go l.flush(name, q, wait)
	}
	q.mu.Unlock()
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		o.abandoned.Store(true)
		select {
		case err := <-o.done:
			return err
		default:
		}
		return fmt.Errorf("ledger: write %s to ConfigMap %s/%s: %w", o.uid, l.namespace, name, ctx.Err())
	}
}

// flush writes what is pending for shard name once the window has passed and the shard's last write is done.
func (l *ConfigMaps) flush(name string, q *queue, wait <-chan time.Time) {
	if wait != nil {
		<-wait
	}
	q.write.Lock()
	defer q.write.Unlock()
	q.mu.Lock()
	batch := q.pending
	q.pending, q.armed = nil, false
	q.mu.Unlock()
	l.commit(name, batch)
}

// commit applies batch to shard name in one write and tells each op its verdict. A write that conflicts re-reads
// the shard, refreshes memory and checks every op again; an op whose caller has gone is left out of later writes.
// The caller holds the shard's write lock.
func (l *ConfigMaps) commit(name string, batch []*op) {
	live := batch[:0:0]
	for _, o := range batch {
		if !o.abandoned.Load() {
			live = append(live, o)
		}
	}
	if len(live) == 0 {
		return
	}
	// The write serves every op: no single caller's end may cancel it, its deadline still bounds it.
	ctx := context.WithoutCancel(live[0].ctx)
	l.mu.RLock()
	cached := l.stored[name]
	l.mu.RUnlock()
	cm := cached
	if cm == nil {
		var err error
		if cm, err = l.reread(ctx, name); err != nil {
			tell(live, err)
			return
		}
	}
	for range maxWriteAttempts {
		live = stillWaiting(live)
		if len(live) == 0 {
			return
		}
		work := cm.DeepCopy()
		if work.Data == nil {
			work.Data = map[string]string{}
		}
		verdicts := make([]error, len(live))
		var written []int
		for i, o := range live {
			changed, err := o.apply(work)
			verdicts[i] = err
			if changed {
				written = append(written, i)
			}
		}
		if len(written) == 0 {
			for i, o := range live {
				o.done <- verdicts[i]
			}
			return
		}
		l.tidy(ctx, work)
		err := l.send(ctx, cm, work)
		switch {
		case err == nil:
			l.refresh(ctx, name, work)
			for i, o := range live {
				o.done <- verdicts[i]
			}
			return
		case apierrors.IsConflict(err), apierrors.IsAlreadyExists(err), apierrors.IsNotFound(err):
			// Another writer, a hand edit or a deletion: read what is there now and check every op again.
			fresh, rerr := l.reread(ctx, name)
			if rerr != nil {
				tell(live, rerr)
				return
			}
			cm = fresh
		default:
			// The write may have landed: its ops get the error, and a retry of the same decision finds it as its own.
			err = fmt.Errorf("ledger: write ConfigMap %s/%s: %w", l.namespace, name, err)
			for _, i := range written {
				verdicts[i] = err
			}
			for i, o := range live {
				o.done <- verdicts[i]
			}
			return
		}
	}
	tell(live, fmt.Errorf("ledger: write ConfigMap %s/%s: still conflicting after %d attempts", l.namespace, name, maxWriteAttempts))
}

// send writes work over base, bounded by the per-call timeout: a Create when base does not exist, else a merge
// patch of the keys that differ, refused with a Conflict unless the shard is still at base's resourceVersion.
func (l *ConfigMaps) send(ctx context.Context, base, work *corev1.ConfigMap) error {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	if base.ResourceVersion == "" {
		return l.client.Create(ctx, work)
	}
	return l.client.Patch(ctx, work, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
}

// stillWaiting returns the ops whose callers still wait.
func stillWaiting(ops []*op) []*op {
	out := ops[:0]
	for _, o := range ops {
		if !o.abandoned.Load() {
			out = append(out, o)
		}
	}
	return out
}

// tell gives every op the same verdict.
func tell(ops []*op, err error) {
	for _, o := range ops {
		o.done <- err
	}
}

// reread reads shard name and refreshes memory from it; the shard comes without its managedFields, so a patch
// made from it never names them.
func (l *ConfigMaps) reread(ctx context.Context, name string) (*corev1.ConfigMap, error) {
	cm, err := l.read(ctx, name)
	if err != nil {
		return nil, err
	}
	l.refresh(ctx, name, cm)
	cm.ManagedFields = nil
	return cm, nil
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

// refresh makes memory hold exactly the entries shard name holds for the uids it is home to, as cm has them;
// bad keys are reported and skipped, copies of other shards' uids (the earlier layout's) ignored.
func (l *ConfigMaps) refresh(ctx context.Context, name string, cm *corev1.ConfigMap) {
	decoded := make(map[string]Entry, len(cm.Data))
	items := map[string]Item{}
	for uid, raw := range cm.Data {
		if isItemKey(uid) {
			if it, err := decodeItem(uid, raw); err == nil {
				items[it.ID] = it
			} else {
				l.onBadEntry(ctx, name, uid, err)
			}
			continue
		}
		e, ok, err := decode(raw)
		if err != nil {
			l.onBadEntry(ctx, name, uid, err)
			continue
		}
		if ok && l.Home(uid) == name {
			decoded[uid] = e
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for uid := range l.held[name] {
		if _, still := decoded[uid]; !still {
			delete(l.entries, uid)
		}
	}
	held := make(map[string]struct{}, len(decoded))
	for uid, e := range decoded {
		l.entries[uid] = e
		held[uid] = struct{}{}
	}
	l.held[name] = held
	for id, shard := range l.itemShard {
		if _, still := items[id]; shard == name && !still {
			delete(l.items, id)
			delete(l.itemShard, id)
		}
	}
	for id, it := range items {
		l.items[id], l.itemShard[id] = it, name
	}
	// A shard that does not exist is kept too: its first write is a Create, refused if another writer made it.
	c := cm.DeepCopy()
	c.ManagedFields = nil
	l.stored[name] = c
}

// tidy prepares a shard about to be written: keys that do not decode are removed (they would be skipped at every
// load, and their objects start a new baseline, which records nothing), entries in the earlier long format are
// written compactly.
func (l *ConfigMaps) tidy(ctx context.Context, cm *corev1.ConfigMap) {
	for uid, raw := range cm.Data {
		if isItemKey(uid) {
			if _, err := decodeItem(uid, raw); err != nil {
				delete(cm.Data, uid)
				l.onBadEntry(ctx, cm.Name, uid, fmt.Errorf("removed: %w", err))
			}
			continue
		}
		e, ok, err := decode(raw)
		if err != nil {
			delete(cm.Data, uid)
			l.onBadEntry(ctx, cm.Name, uid, fmt.Errorf("removed: %w", err))
			continue
		}
		if compact, err := encode(uid, e); ok && err == nil {
			cm.Data[uid] = compact
		}
	}
}

// Home is the shard that holds uid: the one its hash picks.
func (l *ConfigMaps) Home(uid string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(uid))
	return ShardName(l.prefix, int(h.Sum32()%uint32(l.shards)))
}
