package ledger_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
)

// TestWriteSendsOnlyTheKeysItChanges: a Swap or Delete in a shard of many entries sends its own key (and the bad
// keys it removes), never the shard's other entries, and the shard keeps them all.
func TestWriteSendsOnlyTheKeysItChanges(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	const n = 40
	uid := func(i int) string { return fmt.Sprintf("%08d-0000-4000-8000-000000000000", i) }
	data := map[string]string{"not-json": "{"}
	for i := range n {
		raw, err := json.Marshal(kustomization(fmt.Sprintf("app-%d", i), 1))
		if err != nil {
			t.Fatal(err)
		}
		data[uid(i)] = string(raw)
	}
	name := ledger.ShardName(ledger.DefaultPrefix, 0)
	createShards(t, ns, map[string]map[string]string{name: data})
	count := &wireCount{keep: true}
	l, err := ledger.NewConfigMaps(ledger.ConfigMapsOptions{Client: countedClient(t, count), Namespace: ns, Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Load(ctx); err != nil {
		t.Fatal(err)
	}

	// sent checks the one write since the last reset: it names want and no other entry of the shard.
	sent := func(op string, want ...string) {
		t.Helper()
		defer count.reset()
		bodies := count.written()
		if len(bodies) != 1 {
			t.Fatalf("%s sent %d writes, want 1", op, len(bodies))
		}
		body := bodies[0]
		if !bytes.Contains(body, []byte(`"resourceVersion"`)) {
			t.Errorf("%s sent %d bytes without the resourceVersion that guards it", op, len(body))
		}
		for _, key := range want {
			if !bytes.Contains(body, []byte(key)) {
				t.Errorf("%s sent %d bytes without key %s", op, len(body), key)
			}
		}
		for i := range n {
			if k := uid(i); !slices.Contains(want, k) && bytes.Contains(body, []byte(k)) {
				t.Errorf("%s sent the shard's other entry %s: %d bytes", op, k, len(body))
				return
			}
		}
	}

	count.reset()
	prev, _ := l.Get(uid(7))
	if err := l.Swap(ctx, uid(7), &prev, kustomization("app-7", 2)); err != nil {
		t.Fatal(err)
	}
	sent("Swap", uid(7), "not-json")
	if err := l.Delete(ctx, uid(8)); err != nil {
		t.Fatal(err)
	}
	sent("Delete", uid(8))

	var cm corev1.ConfigMap
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &cm); err != nil {
		t.Fatal(err)
	}
	if _, bad := cm.Data["not-json"]; bad || len(cm.Data) != n-1 {
		t.Fatalf("shard holds %d keys (bad key kept: %v), want the %d good entries but the deleted one", len(cm.Data), bad, n-1)
	}
	if got, _ := newLedger(t, ns, 1).Get(uid(7)); got.Revision != rev(2) {
		t.Errorf("stored %s at %s, want %s", uid(7), got.Revision, rev(2))
	}
}
