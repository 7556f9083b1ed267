package ledger

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Load reads every shard by name (the tracker may get only its own ConfigMaps); a missing shard is empty. An
// entry found outside its home shard, as the earlier 32-shard layout placed it, is moved home: written there
// unless the home shard already holds its uid (the home copy wins), then removed from where it was. Only the
// home shard of a uid is ever written for it, so a copy left elsewhere is never the one a Swap checks.
func (l *ConfigMaps) Load(ctx context.Context) error {
	cms := make([]*corev1.ConfigMap, max(l.shards, legacyShards))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(loadConcurrency)
	for i := range cms {
		g.Go(func() error {
			cm, err := l.read(gctx, ShardName(l.prefix, i))
			cms[i] = cm
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	l.mu.Lock()
	l.entries, l.held, l.stored = map[string]Entry{}, map[string]map[string]struct{}{}, map[string]*corev1.ConfigMap{}
	l.items, l.itemShard = map[string]Item{}, map[string]string{}
	l.mu.Unlock()
	for _, cm := range cms {
		l.refresh(ctx, cm.Name, cm)
	}
	return l.moveHome(ctx, cms)
}

// moveHome writes each entry held outside its home shard into it, one write per home shard, then removes the
// copies whose uid its home shard now holds, one write per shard they were in.
func (l *ConfigMaps) moveHome(ctx context.Context, cms []*corev1.ConfigMap) error {
	moves := map[string][]*op{}
	away := map[string][]string{}
	seen := map[string]bool{}
	for _, cm := range cms {
		// Shards in order, keys sorted: of several copies outside home, the first found is the one moved.
		for _, uid := range slices.Sorted(maps.Keys(cm.Data)) {
			if isItemKey(uid) {
				continue // items stay in the shard they were written to
			}
			home := l.Home(uid)
			if home == cm.Name {
				continue
			}
			away[cm.Name] = append(away[cm.Name], uid)
			e, ok, err := decode(cm.Data[uid])
			if err != nil || !ok || seen[uid] {
				continue
			}
			seen[uid] = true
			if _, held := l.Get(uid); held {
				continue
			}
			raw, err := encode(uid, e)
			if err != nil {
				l.onBadEntry(ctx, cm.Name, uid, err)
				continue
			}
			moves[home] = append(moves[home], &op{uid: uid, next: e, raw: raw})
		}
	}
	// A conflict is a home shard that holds the uid already: its copy wins.
	if err := l.commitEach(ctx, moves, func(err error) bool { return errors.Is(err, ErrConflict) }); err != nil {
		return fmt.Errorf("ledger: move entries to their home shards: %w", err)
	}
	drops := map[string][]*op{}
	for shard, uids := range away {
		for _, uid := range uids {
			if _, held := l.Get(uid); held {
				drops[shard] = append(drops[shard], &op{uid: uid, del: true})
			}
		}
	}
	if err := l.commitEach(ctx, drops, nil); err != nil {
		return fmt.Errorf("ledger: remove entries moved to their home shards: %w", err)
	}
	return nil
}

// commitEach writes each shard's ops at once, a few shards at a time; the first op error that fine does not
// accept fails the call.
func (l *ConfigMaps) commitEach(ctx context.Context, byShard map[string][]*op, fine func(error) bool) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(loadConcurrency)
	for name, ops := range byShard {
		g.Go(func() error {
			for _, o := range ops {
				o.ctx, o.done = gctx, make(chan error, 1)
			}
			q := l.queue(name)
			q.write.Lock()
			l.commit(name, ops)
			q.write.Unlock()
			var failed error
			for _, o := range ops {
				if err := <-o.done; err != nil && failed == nil && (fine == nil || !fine(err)) {
					failed = err
				}
			}
			return failed
		})
	}
	return g.Wait()
}

// Read lists the ledger's shards in namespace (by their label, in one call) and returns the entries by UID,
// without writing: for readers that are not the tracker. Keys that do not decode are skipped.
func Read(ctx context.Context, r client.Reader, namespace string) (map[string]Entry, error) {
	var cms corev1.ConfigMapList
	if err := r.List(ctx, &cms, client.InNamespace(namespace), client.MatchingLabels{LabelKey: labelVal}); err != nil {
		return nil, fmt.Errorf("ledger: list shards in %s: %w", namespace, err)
	}
	entries := map[string]Entry{}
	for _, cm := range cms.Items {
		for uid, raw := range cm.Data {
			if isItemKey(uid) {
				continue
			}
			if e, ok, err := decode(raw); ok && err == nil {
				entries[uid] = e
			}
		}
	}
	return entries, nil
}
