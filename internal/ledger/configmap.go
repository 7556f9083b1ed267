package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// DefaultShards spreads entries over enough ConfigMaps that 10,000 objects stay far below the 1 MiB limit.
	DefaultShards = 32
	// LabelKey marks the ConfigMaps that hold ledger shards.
	LabelKey = "flux-commit-tracker.io/ledger"
	labelVal = "v1"
)

// ConfigMaps is a Ledger stored in sharded ConfigMaps in one namespace.
type ConfigMaps struct {
	client    client.Client
	reader    client.Reader
	namespace string
	prefix    string
	shards    int

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
	// Client writes shards; Reader (default Client) reads them uncached at Load.
	Client client.Client
	Reader client.Reader
	// Namespace holds the shards; Prefix names them (default flux-commit-tracker-ledger).
	Namespace string
	Prefix    string
	// Shards is the number of ConfigMaps new entries are spread over (default DefaultShards).
	Shards int
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
		opts.Prefix = "flux-commit-tracker-ledger"
	}
	if opts.Shards <= 0 {
		opts.Shards = DefaultShards
	}
	l := &ConfigMaps{
		client: opts.Client, reader: opts.Reader, namespace: opts.Namespace, prefix: opts.Prefix, shards: opts.Shards,
		entries: map[string]Entry{}, shardOf: map[string]string{}, locks: map[string]*sync.Mutex{},
		stored: map[string]*corev1.ConfigMap{},
	}
	for i := range opts.Shards {
		l.locks[l.shardName(i)] = &sync.Mutex{}
	}
	return l, nil
}

// Load reads every shard; entries are kept where they are found, so changing the shard count is safe.
func (l *ConfigMaps) Load(ctx context.Context) error {
	var list corev1.ConfigMapList
	if err := l.reader.List(ctx, &list, client.InNamespace(l.namespace), client.MatchingLabels{LabelKey: labelVal}); err != nil {
		return fmt.Errorf("ledger: list ConfigMaps in %s: %w", l.namespace, err)
	}
	entries, shardOf := map[string]Entry{}, map[string]string{}
	for _, cm := range list.Items {
		for uid, raw := range cm.Data {
			var e Entry
			if err := json.Unmarshal([]byte(raw), &e); err != nil {
				return fmt.Errorf("ledger: ConfigMap %s/%s key %s: %w", cm.Namespace, cm.Name, uid, err)
			}
			entries[uid], shardOf[uid] = e, cm.Name
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries, l.shardOf = entries, shardOf
	l.stored = map[string]*corev1.ConfigMap{}
	for i := range list.Items {
		cm := &list.Items[i]
		if l.locks[cm.Name] == nil {
			l.locks[cm.Name] = &sync.Mutex{}
		}
		l.stored[cm.Name] = cm
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

// Put writes the entry for uid to its shard; an unchanged entry is not written again.
func (l *ConfigMaps) Put(ctx context.Context, uid string, e Entry) error {
	raw, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("ledger: encode entry for %s: %w", uid, err)
	}
	l.mu.RLock()
	old, exists := l.entries[uid]
	name, placed := l.shardOf[uid]
	l.mu.RUnlock()
	if exists && old == e {
		return nil
	}
	if !placed {
		name = l.shardName(l.shardIndex(uid))
	}
	if err := l.updateShard(ctx, name, func(data map[string]string) { data[uid] = string(raw) }); err != nil {
		return err
	}
	l.mu.Lock()
	l.entries[uid], l.shardOf[uid] = e, name
	l.mu.Unlock()
	return nil
}

// Delete removes the entry for uid from its shard.
func (l *ConfigMaps) Delete(ctx context.Context, uid string) error {
	l.mu.RLock()
	name, placed := l.shardOf[uid]
	l.mu.RUnlock()
	if !placed {
		return nil
	}
	if err := l.updateShard(ctx, name, func(data map[string]string) { delete(data, uid) }); err != nil {
		return err
	}
	l.mu.Lock()
	delete(l.entries, uid)
	delete(l.shardOf, uid)
	l.mu.Unlock()
	return nil
}

// updateShard applies mutate to the shard's data and writes it: one Update from the cached version, re-read
// only on a conflict; the shard is created when missing.
func (l *ConfigMaps) updateShard(ctx context.Context, name string, mutate func(map[string]string)) error {
	l.mu.RLock()
	lock := l.locks[name]
	cached := l.stored[name]
	l.mu.RUnlock()
	lock.Lock()
	defer lock.Unlock()

	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm, err := l.shardToWrite(ctx, name, cached)
		cached = nil // after a conflict, read the shard again
		if err != nil {
			return err
		}
		mutate(cm.Data)
		if cm.ResourceVersion == "" {
			err = l.client.Create(ctx, cm)
		} else {
			err = l.client.Update(ctx, cm)
		}
		if err != nil {
			return err
		}
		l.mu.Lock()
		l.stored[name] = cm
		l.mu.Unlock()
		return nil
	})
	if err != nil {
		return fmt.Errorf("ledger: write ConfigMap %s/%s: %w", l.namespace, name, err)
	}
	return nil
}

// shardToWrite returns a copy of the cached shard, else the stored one, else a new one.
func (l *ConfigMaps) shardToWrite(ctx context.Context, name string, cached *corev1.ConfigMap) (*corev1.ConfigMap, error) {
	if cached != nil {
		return cached.DeepCopy(), nil
	}
	cm := &corev1.ConfigMap{}
	err := l.reader.Get(ctx, types.NamespacedName{Namespace: l.namespace, Name: name}, cm)
	if apierrors.IsNotFound(err) {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			Namespace: l.namespace, Name: name,
			Labels: map[string]string{LabelKey: labelVal, "app.kubernetes.io/managed-by": "flux-commit-tracker"},
		}, Data: map[string]string{}}, nil
	}
	if err != nil {
		return nil, err
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	return cm, nil
}

func (l *ConfigMaps) shardName(i int) string { return fmt.Sprintf("%s-%02d", l.prefix, i) }

func (l *ConfigMaps) shardIndex(uid string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(uid))
	return int(h.Sum32() % uint32(l.shards))
}
