package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
)

// legacyEntry is the entry format of the 32-shard layout.
type legacyEntry struct {
	Kind      string    `json:"kind"`
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Revision  string    `json:"revision"`
	Recorded  string    `json:"recorded,omitempty"`
	Export    string    `json:"export,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`
	Writer    string    `json:"writer,omitempty"`
}

func legacyJSON(t testing.TB, e ledger.Entry) string {
	t.Helper()
	raw, err := json.Marshal(legacyEntry{Kind: e.Kind, Namespace: e.Namespace, Name: e.Name, Revision: e.Revision,
		Recorded: e.Recorded, Export: e.Export, UpdatedAt: e.UpdatedAt, Writer: e.Writer})
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// legacyShard is where the 32-shard layout kept uid.
func legacyShard(uid string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(uid))
	return ledger.ShardName(ledger.DefaultPrefix, int(h.Sum32()%ledger.LegacyShards))
}

// legacyEntries are n entries as trackers of the 32-shard layout wrote them: some rolled back (a mark past the
// revision), some with an export, some from before writers were recorded.
func legacyEntries(n int) map[string]ledger.Entry {
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	out := map[string]ledger.Entry{}
	for i := range n {
		e := ledger.Entry{Kind: "Kustomization", Namespace: fmt.Sprintf("team-%02d", i%7), Name: fmt.Sprintf("app-%04d", i),
			Revision: rev(i + 1), UpdatedAt: at.Add(time.Duration(i) * time.Second)}
		if i%3 == 0 {
			e.Kind, e.Recorded = "HelmRelease", rev(i+2)
		}
		if i%5 == 0 {
			e.Export = fmt.Sprintf("sha256:%064d", i)
		}
		if i%2 == 0 {
			e.Writer = "0123456789ab"
		}
		out[fmt.Sprintf("%08d-0000-4000-8000-000000000000", i)] = e
	}
	return out
}

// createShards creates the ConfigMaps of data, by name, as the ledger labels them.
func createShards(t testing.TB, ns string, data map[string]map[string]string) {
	t.Helper()
	for name, d := range data {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{ledger.LabelKey: "v1"}}, Data: d}
		if err := env.Client.Create(context.Background(), cm); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
}

// legacyData places entries as the 32-shard layout did.
func legacyData(t testing.TB, entries map[string]ledger.Entry) map[string]map[string]string {
	t.Helper()
	data := map[string]map[string]string{}
	for uid, e := range entries {
		name := legacyShard(uid)
		if data[name] == nil {
			data[name] = map[string]string{}
		}
		data[name][uid] = legacyJSON(t, e)
	}
	return data
}

func loadDefault(t *testing.T, c client.Client, ns string) (*ledger.ConfigMaps, error) {
	t.Helper()
	l, err := ledger.NewConfigMaps(ledger.ConfigMapsOptions{Client: c, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	return l, l.Load(context.Background())
}

// shardsHolding reads every ledger ConfigMap of ns: per uid, the shards holding it and what they hold.
func shardsHolding(t *testing.T, ns string) map[string]map[string]string {
	t.Helper()
	var cms corev1.ConfigMapList
	if err := env.Client.List(context.Background(), &cms, client.InNamespace(ns), client.MatchingLabels{ledger.LabelKey: "v1"}); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, cm := range cms.Items {
		for uid, raw := range cm.Data {
			if out[uid] == nil {
				out[uid] = map[string]string{}
			}
			out[uid][cm.Name] = raw
		}
	}
	return out
}

// checkLayout fails unless ns holds each of want once, in its home shard, as same (nil: Equal) says want has it.
func checkLayout(t *testing.T, ns string, l *ledger.ConfigMaps, want map[string]ledger.Entry, same func(a, b ledger.Entry) bool) {
	t.Helper()
	if same == nil {
		same = ledger.Entry.Equal
	}
	held := shardsHolding(t, ns)
	for uid, e := range want {
		raw, ok := held[uid][l.Home(uid)]
		if !ok || len(held[uid]) != 1 {
			t.Errorf("entry %s stored in %v, want only its home %s", uid, held[uid], l.Home(uid))
			continue
		}
		var got ledger.Entry
		if err := json.Unmarshal([]byte(raw), &got); err != nil || !same(got, e) {
			t.Errorf("stored %s = %q (%v), want %+v", uid, raw, err, e)
		}
	}
	if len(held) != len(want) {
		t.Errorf("%d keys stored, want %d", len(held), len(want))
	}
}

func TestUpgradeFromTheLegacyLayoutKeepsEveryEntryAndRecordsNothingTwice(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	want := legacyEntries(300)
	createShards(t, ns, legacyData(t, want))

	// Two new processes start over the old data at once: both move entries, neither loses or copies one.
	var a, b *ledger.ConfigMaps
	var errA, errB error
	var wg sync.WaitGroup
	wg.Go(func() { a, errA = loadDefault(t, env.Client, ns) })
	wg.Go(func() { b, errB = loadDefault(t, env.Client, ns) })
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("load over the legacy layout: %v, %v", errA, errB)
	}
	for name, l := range map[string]*ledger.ConfigMaps{"a": a, "b": b} {
		if l.Len() != len(want) {
			t.Errorf("ledger %s loaded %d entries, want %d", name, l.Len(), len(want))
		}
		for uid, e := range want {
			if got, ok := l.Get(uid); !ok || !got.Equal(e) {
				t.Errorf("ledger %s holds %s = %+v (found %v), want %+v", name, uid, got, ok, e)
			}
		}
	}
	checkLayout(t, ns, a, want, nil)

	// A restart over the moved data finds it all and writes nothing.
	log := &writeLog{Client: env.Client}
	if c, err := loadDefault(t, log, ns); err != nil || c.Len() != len(want) {
		t.Fatalf("reload: %v, %d entries", err, c.Len())
	}
	if w := log.writes(); len(w) != 0 {
		t.Errorf("reload of the new layout sent %d writes, want 0", len(w))
	}

	// Both processes decide every object's next revision from what they loaded: one Swap of each wins.
	var wins [2]atomic.Int64
	var lost atomic.Int64
	for i, l := range []*ledger.ConfigMaps{a, b} {
		wg.Go(func() {
			var inner sync.WaitGroup
			work := make(chan string)
			for range 4 {
				inner.Go(func() {
					for uid := range work {
						prev := want[uid]
						next := prev
						next.Revision, next.Recorded = rev(9000), rev(9000)
						err := l.Swap(ctx, uid, &prev, next)
						switch {
						case err == nil:
							wins[i].Add(1)
						case errors.Is(err, ledger.ErrConflict):
						default:
							t.Error(err)
						}
						if got, _ := l.Get(uid); got.Revision != rev(9000) {
							lost.Add(1)
						}
					}
				})
			}
			for uid := range want {
				work <- uid
			}
			close(work)
			inner.Wait()
		})
	}
	wg.Wait()
	if total := wins[0].Load() + wins[1].Load(); total != int64(len(want)) {
		t.Errorf("%d + %d Swaps won, want exactly one per object (%d)", wins[0].Load(), wins[1].Load(), len(want))
	}
	if lost.Load() != 0 {
		t.Errorf("%d refused Swaps left memory without the winner's entry", lost.Load())
	}
}

// failAfter lets n writes through, then fails every write.
type failAfter struct {
	client.Client
	n atomic.Int64
}

func (f *failAfter) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if f.n.Add(-1) < 0 {
		return errors.New("connection reset by peer")
	}
	return f.Client.Patch(ctx, obj, patch, opts...)
}

func (f *failAfter) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if f.n.Add(-1) < 0 {
		return errors.New("connection reset by peer")
	}
	return f.Client.Create(ctx, obj, opts...)
}

func TestInterruptedUpgradeIsCompletedByTheNextLoad(t *testing.T) {
	ns := newNamespace(t)
	want := legacyEntries(300)
	data := legacyData(t, want)
	probe, err := ledger.NewConfigMaps(ledger.ConfigMapsOptions{Client: env.Client, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	// One object was moved home and recorded on before: its old copy is stale, the home copy wins.
	var movedOn string
	for uid := range want {
		if probe.Home(uid) != legacyShard(uid) {
			movedOn = uid
			break
		}
	}
	newer := want[movedOn]
	newer.Revision, newer.Recorded, newer.Writer = rev(777), "", "fedcba987654"
	home := probe.Home(movedOn)
	if data[home] == nil {
		data[home] = map[string]string{}
	}
	raw, err := json.Marshal(newer)
	if err != nil {
		t.Fatal(err)
	}
	data[home][movedOn] = string(raw)
	want[movedOn] = newer
	createShards(t, ns, data)

	// The first new process fails part-way: some entries are home, some not, old copies remain.
	failing := &failAfter{Client: env.Client}
	failing.n.Store(40)
	if _, err := loadDefault(t, failing, ns); err == nil {
		t.Fatal("load with failing writes succeeded")
	}
	l, err := loadDefault(t, env.Client, ns)
	if err != nil {
		t.Fatalf("load after an interrupted upgrade: %v", err)
	}
	for uid, e := range want {
		if got, ok := l.Get(uid); !ok || !got.Equal(e) {
			t.Errorf("holds %s = %+v (found %v), want %+v", uid, got, ok, e)
		}
	}
	checkLayout(t, ns, l, want, nil)
}
