package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	flag.Parse()
	if fuzzing() {
		// Fuzz targets decode entries in memory: no apiserver per fuzz worker.
		os.Exit(m.Run())
	}
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop envtest:", err)
	}
	os.Exit(code)
}

// fuzzing reports whether this binary runs a fuzz target (the coordinator or one of its workers).
func fuzzing() bool {
	f := flag.Lookup("test.fuzz")
	return (f != nil && f.Value.String() != "") || flag.Lookup("test.fuzzworker") != nil && flag.Lookup("test.fuzzworker").Value.String() == "true"
}

func newNamespace(t testing.TB) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "ledger-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}

func newLedger(t *testing.T, ns string, shards int) *ledger.ConfigMaps {
	t.Helper()
	l, err := ledger.NewConfigMaps(ledger.ConfigMapsOptions{Client: env.Client, Namespace: ns, Shards: shards})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Load(context.Background()); err != nil {
		t.Fatalf("load: %v", err)
	}
	return l
}

func TestConfigMapsSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

	first := newLedger(t, ns, 4)
	want := map[string]ledger.Entry{}
	for i := range 20 {
		uid := fmt.Sprintf("uid-%02d", i)
		e := ledger.Entry{Kind: "Kustomization", Namespace: "apps", Name: fmt.Sprintf("app-%d", i), Revision: fmt.Sprintf("main@sha1:%040d", i), UpdatedAt: at}
		if err := first.Put(ctx, uid, e); err != nil {
			t.Fatalf("put %s: %v", uid, err)
		}
		want[uid] = e
	}
	if err := first.Delete(ctx, "uid-03"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	delete(want, "uid-03")

	// A new process with a different shard count finds every entry.
	second := newLedger(t, ns, 7)
	if second.Len() != len(want) {
		t.Fatalf("reloaded %d entries, want %d", second.Len(), len(want))
	}
	for uid, e := range want {
		got, ok := second.Get(uid)
		if !ok || !got.SameCheckpoint(e) || !got.UpdatedAt.Equal(e.UpdatedAt) || got.Writer == "" {
			t.Errorf("entry %s = %+v (found %v), want %+v", uid, got, ok, e)
		}
	}
	if _, ok := second.Get("uid-03"); ok {
		t.Error("deleted entry came back after reload")
	}
	updated := want["uid-05"]
	updated.Revision = "main@sha1:" + fmt.Sprintf("%040d", 99)
	if err := second.Put(ctx, "uid-05", updated); err != nil {
		t.Fatal(err)
	}
	want["uid-05"] = updated
	third := newLedger(t, ns, 7)
	if got, _ := third.Get("uid-05"); got.Revision != updated.Revision {
		t.Errorf("updated revision = %q, want %q", got.Revision, updated.Revision)
	}

	// The second ledger moved each entry to its home under 7 shards: one copy of each, there.
	checkLayout(t, ns, third, want, ledger.Entry.SameCheckpoint)
}

func TestConfigMapsSkipsUnchangedWrites(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	l := newLedger(t, ns, 1)
	e := ledger.Entry{Kind: "Kustomization", Namespace: "a", Name: "b", Revision: "main@sha1:" + fmt.Sprintf("%040d", 1)}
	if err := l.Put(ctx, "u", e); err != nil {
		t.Fatal(err)
	}
	var before corev1.ConfigMap
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "flux-commit-tracker-ledger-00"}, &before); err != nil {
		t.Fatal(err)
	}
	if err := l.Put(ctx, "u", e); err != nil {
		t.Fatal(err)
	}
	var after corev1.ConfigMap
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "flux-commit-tracker-ledger-00"}, &after); err != nil {
		t.Fatal(err)
	}
	if before.ResourceVersion != after.ResourceVersion {
		t.Errorf("unchanged Put rewrote the ConfigMap: resourceVersion %s → %s", before.ResourceVersion, after.ResourceVersion)
	}
}

func TestConfigMapsHoldsTenThousandObjects(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 10,000 entries")
	}
	ctx := context.Background()
	ns := newNamespace(t)
	l := newLedger(t, ns, ledger.DefaultShards)
	const n = 10000
	long := ledger.Entry{Kind: "Kustomization", Namespace: "a-namespace-name-of-typical-length", Name: "an-object-name-that-is-rather-long-too-0000"}
	// Fill the shards directly, one write per shard, then prove a Put lands next to 10,000 loaded entries.
	shardData := map[int]map[string]string{}
	for i := range n {
		uid := fmt.Sprintf("00000000-0000-0000-0000-%012d", i)
		e := long
		e.Revision = fmt.Sprintf("refs/heads/main@sha1:%040d", i)
		raw := fmt.Sprintf(`{"kind":%q,"namespace":%q,"name":%q,"revision":%q,"updatedAt":"2026-11-01T12:00:00Z"}`, e.Kind, e.Namespace, e.Name, e.Revision)
		s := i % ledger.DefaultShards
		if shardData[s] == nil {
			shardData[s] = map[string]string{}
		}
		shardData[s][uid] = raw
	}
	for s, data := range shardData {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("flux-commit-tracker-ledger-%02d", s), Labels: map[string]string{ledger.LabelKey: "v1"}}, Data: data}
		if err := env.Client.Create(ctx, cm); err != nil {
			t.Fatalf("create shard %d (%d entries): %v", s, len(data), err)
		}
	}
	if err := l.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if l.Len() != n {
		t.Fatalf("loaded %d entries, want %d", l.Len(), n)
	}
	extra := long
	extra.Revision = "main@sha1:" + fmt.Sprintf("%040d", 7)
	if err := l.Put(ctx, "extra-uid", extra); err != nil {
		t.Fatalf("put beside 10,000 entries: %v", err)
	}
}

func TestConfigMapsRereadsAfterConflict(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	a := newLedger(t, ns, 1)
	b := newLedger(t, ns, 1)
	entry := func(name string) ledger.Entry {
		return ledger.Entry{Kind: "Kustomization", Namespace: "apps", Name: name, Revision: "main@sha1:" + fmt.Sprintf("%040d", 1)}
	}
	if err := a.Put(ctx, "uid-a", entry("a")); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "uid-b", entry("b")); err != nil {
		t.Fatal(err)
	}
	// a's cached shard is now stale: its next write conflicts, re-reads and keeps b's entry.
	if err := a.Put(ctx, "uid-c", entry("c")); err != nil {
		t.Fatalf("put after a concurrent write: %v", err)
	}
	reloaded := newLedger(t, ns, 1)
	for _, uid := range []string{"uid-a", "uid-b", "uid-c"} {
		if _, ok := reloaded.Get(uid); !ok {
			t.Errorf("entry %s lost", uid)
		}
	}
}

func rev(i int) string { return fmt.Sprintf("main@sha1:%040d", i) }

func TestSwapRefusesAnEntryAnotherWriterMoved(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	a, b := newLedger(t, ns, 2), newLedger(t, ns, 2)
	base := ledger.Entry{Kind: "Kustomization", Namespace: "apps", Name: "web", Revision: rev(1)}
	if err := a.Swap(ctx, "uid", nil, base); err != nil {
		t.Fatal(err)
	}
	// b decided from an empty ledger: its write must be refused and its memory refreshed with a's entry.
	if err := b.Swap(ctx, "uid", nil, ledger.Entry{Kind: "Kustomization", Namespace: "apps", Name: "web", Revision: rev(9)}); !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("Swap from a stale decision = %v, want ErrConflict", err)
	}
	got, ok := b.Get("uid")
	if !ok || got.Revision != rev(1) {
		t.Fatalf("after the conflict b holds %+v (found %v), want revision %s", got, ok, rev(1))
	}
	base = got
	// Deciding again from the refreshed entry succeeds.
	moved := base
	moved.Revision, moved.Recorded = rev(2), rev(2)
	if err := b.Swap(ctx, "uid", &base, moved); err != nil {
		t.Fatalf("Swap from the refreshed entry: %v", err)
	}
	// a still holds base in memory: its next decision conflicts too.
	if err := a.Swap(ctx, "uid", &base, moved); !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("a's Swap from base after b moved it = %v, want ErrConflict", err)
	}
	if got, _ := newLedger(t, ns, 2).Get("uid"); !got.SameCheckpoint(moved) {
		t.Errorf("stored entry %+v, want %+v", got, moved)
	}
}

func TestBadKeysAreSkippedCountedAndHealed(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	good := `{"kind":"Kustomization","namespace":"a","name":"b","revision":"` + rev(1) + `","updatedAt":"2026-11-01T12:00:00Z"}`
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ledger.ShardName(ledger.DefaultPrefix, 0), Labels: map[string]string{ledger.LabelKey: "v1"}},
		Data: map[string]string{"good": good, "not-json": "{", "wrong-type": `{"kind":1}`, "empty-object": "{}"}}
	if err := env.Client.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	var bad []string
	l, err := ledger.NewConfigMaps(ledger.ConfigMapsOptions{Client: env.Client, Namespace: ns, Shards: 1,
		OnBadEntry: func(_ context.Context, _, key string, _ error) { bad = append(bad, key) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Load(ctx); err != nil {
		t.Fatalf("Load with bad keys: %v", err)
	}
	if l.Len() != 1 || len(bad) != 3 {
		t.Fatalf("loaded %d entries and reported %d bad keys (%v), want 1 and 3", l.Len(), len(bad), bad)
	}
	// The next write of the shard removes the bad keys.
	if err := l.Put(ctx, "new", ledger.Entry{Kind: "Kustomization", Namespace: "a", Name: "c", Revision: rev(2)}); err != nil {
		t.Fatal(err)
	}
	var after corev1.ConfigMap
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(cm), &after); err != nil {
		t.Fatal(err)
	}
	var kept ledger.Entry
	if len(after.Data) != 2 || json.Unmarshal([]byte(after.Data["good"]), &kept) != nil || kept.Revision != rev(1) || kept.Name != "b" {
		t.Errorf("shard after a write holds %v, want the good entry and the new one", after.Data)
	}
	if after.Data["good"] == good {
		t.Error("the write left the good entry in the long format")
	}
}

func TestDeletedOrRecreatedShardIsWrittenAgain(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	l := newLedger(t, ns, 1)
	e := ledger.Entry{Kind: "Kustomization", Namespace: "a", Name: "b", Revision: rev(1)}
	if err := l.Put(ctx, "u1", e); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKey{Namespace: ns, Name: ledger.ShardName(ledger.DefaultPrefix, 0)}
	if err := env.Client.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: key.Name}}); err != nil {
		t.Fatal(err)
	}
	// Deleted by hand: the next write creates it again, without the lost entry.
	e2 := e
	e2.Name, e2.Revision = "c", rev(2)
	if err := l.Put(ctx, "u2", e2); err != nil {
		t.Fatalf("write after the shard was deleted: %v", err)
	}
	if _, ok := l.Get("u1"); ok {
		t.Error("memory still holds an entry of the deleted shard")
	}
	// Recreated by hand with other content: the next write re-reads it and keeps that content.
	if err := env.Client.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: key.Name}}); err != nil {
		t.Fatal(err)
	}
	raw := `{"kind":"Kustomization","namespace":"a","name":"d","revision":"` + rev(3) + `","updatedAt":"2026-11-01T12:00:00Z"}`
	if err := env.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: key.Name}, Data: map[string]string{"u3": raw}}); err != nil {
		t.Fatal(err)
	}
	e4 := e
	e4.Name, e4.Revision = "e", rev(4)
	if err := l.Put(ctx, "u4", e4); err != nil {
		t.Fatalf("write after the shard was recreated: %v", err)
	}
	var got corev1.ConfigMap
	if err := env.Client.Get(ctx, key, &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Data["u3"]; !ok || len(got.Data) != 2 {
		t.Errorf("shard holds %v, want the hand-written u3 and u4", got.Data)
	}
	if _, ok := l.Get("u3"); !ok {
		t.Error("memory did not learn the hand-written entry on re-read")
	}
}

func TestConcurrentWritersRecordEachMoveOnce(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	const writers, moves = 4, 10
	ledgers := make([]*ledger.ConfigMaps, writers)
	for i := range ledgers {
		ledgers[i] = newLedger(t, ns, 1)
	}
	var mu sync.Mutex
	won := map[int]int{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			l := ledgers[w]
			for m := 1; m <= moves; {
				prev, ok := l.Get("uid")
				var prevp *ledger.Entry
				if ok {
					prevp = &prev
					var cur int
					if _, err := fmt.Sscanf(prev.Revision, "main@sha1:%d", &cur); err != nil {
						t.Error(err)
						return
					}
					if cur >= m {
						m = cur + 1
						continue
					}
				}
				err := l.Swap(ctx, "uid", prevp, ledger.Entry{Kind: "Kustomization", Namespace: "a", Name: "b", Revision: rev(m)})
				if errors.Is(err, ledger.ErrConflict) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				won[m]++
				mu.Unlock()
				m++
			}
		})
	}
	wg.Wait()
	for m := 1; m <= moves; m++ {
		if won[m] != 1 {
			t.Errorf("move %d won by %d writers, want exactly 1", m, won[m])
		}
	}
}

// lostAnswerClient applies a Patch and then reports it failed, as when the apiserver restarts before answering.
type lostAnswerClient struct {
	client.Client
	lose atomic.Bool
}

func (c *lostAnswerClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if err := c.Client.Patch(ctx, obj, patch, opts...); err != nil {
		return err
	}
	if c.lose.Swap(false) {
		return errors.New("http2: server sent GOAWAY and closed the connection")
	}
	return nil
}

func TestWriteThatLandedWithoutAnAnswerIsOwn(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	c := &lostAnswerClient{Client: env.Client}
	l, err := ledger.NewConfigMaps(ledger.ConfigMapsOptions{Client: c, Namespace: ns, Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Load(ctx); err != nil {
		t.Fatal(err)
	}
	base := ledger.Entry{Kind: "Kustomization", Namespace: "a", Name: "b", Revision: rev(1)}
	if err := l.Swap(ctx, "u", nil, base); err != nil {
		t.Fatal(err)
	}
	base, _ = l.Get("u")
	next := base
	next.Revision, next.UpdatedAt = rev(2), time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	c.lose.Store(true)
	if err := l.Swap(ctx, "u", &base, next); err == nil {
		t.Fatal("the lost answer was not reported")
	}
	// Decided again from the same entry a second later: the write that landed is recognised as this one.
	next.UpdatedAt = next.UpdatedAt.Add(time.Second)
	if err := l.Swap(ctx, "u", &base, next); err != nil {
		t.Fatalf("retry after a lost answer = %v, want nil (the write landed)", err)
	}
	// Another writer deciding the same from base is refused: only one of them may emit.
	other := newLedger(t, ns, 1)
	if err := other.Swap(ctx, "u", &base, next); !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("another writer's Swap from base = %v, want ErrConflict", err)
	}
}
