package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
)

// window is the batch window of these tests; their fake clock moves past it only when a test says so.
const window = 20 * time.Millisecond

// writeLog is a client that records the shard writes sent to the apiserver and can hold them at a gate.
type writeLog struct {
	client.Client
	mu     sync.Mutex
	sent   []map[string]string
	gate   chan struct{} // when set, a write waits until it is closed
	atGate chan struct{} // told of each write that reaches the gate
}

// hold records data, the keys a write sends (a removed key as ""), and waits at the gate if there is one.
func (w *writeLog) hold(ctx context.Context, data map[string]string) error {
	w.mu.Lock()
	w.sent = append(w.sent, data)
	gate, atGate := w.gate, w.atGate
	w.mu.Unlock()
	if gate == nil {
		return nil
	}
	atGate <- struct{}{}
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *writeLog) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	body, err := patch.Data(obj)
	if err != nil {
		return err
	}
	var sent struct{ Data map[string]*string }
	if err := json.Unmarshal(body, &sent); err != nil {
		return err
	}
	data := map[string]string{}
	for k, v := range sent.Data {
		data[k] = ""
		if v != nil {
			data[k] = *v
		}
	}
	if err := w.hold(ctx, data); err != nil {
		return err
	}
	return w.Client.Patch(ctx, obj, patch, opts...)
}

func (w *writeLog) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if err := w.hold(ctx, maps.Clone(obj.(*corev1.ConfigMap).Data)); err != nil {
		return err
	}
	return w.Client.Create(ctx, obj, opts...)
}

// writes returns the Data of every write sent so far.
func (w *writeLog) writes() []map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]map[string]string(nil), w.sent...)
}

// closeGate lets held writes, and those after them, through.
func (w *writeLog) closeGate() {
	w.mu.Lock()
	defer w.mu.Unlock()
	close(w.gate)
	w.gate = nil
}

// batched returns a one-shard ledger whose writes wait for window on clk and go through log.
func batched(t *testing.T, ns string, log *writeLog, clk *clocktesting.FakeClock) *ledger.ConfigMaps {
	t.Helper()
	l, err := ledger.NewConfigMaps(ledger.ConfigMapsOptions{Client: log, Namespace: ns, Shards: 1, BatchWindow: window, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Load(context.Background()); err != nil {
		t.Fatalf("load: %v", err)
	}
	return l
}

// waitPending waits until n ops wait for l's only shard.
func waitPending(t *testing.T, l *ledger.ConfigMaps, n int) {
	t.Helper()
	shard := ledger.ShardName(ledger.DefaultPrefix, 0)
	for deadline := time.Now().Add(30 * time.Second); ledger.Pending(l, shard) != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d ops wait for %s, want %d", ledger.Pending(l, shard), shard, n)
		}
	}
}

func kustomization(name string, r int) ledger.Entry {
	return ledger.Entry{Kind: "Kustomization", Namespace: "apps", Name: name, Revision: rev(r)}
}

// swapAsync runs a Swap and hands its verdict to the returned channel.
func swapAsync(ctx context.Context, l *ledger.ConfigMaps, uid string, prev *ledger.Entry, next ledger.Entry) <-chan error {
	out := make(chan error, 1)
	go func() { out <- l.Swap(ctx, uid, prev, next) }()
	return out
}

// stored reads the one shard of ns as an administrator.
func stored(t *testing.T, ns string) map[string]ledger.Entry {
	t.Helper()
	var cm corev1.ConfigMap
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: ledger.ShardName(ledger.DefaultPrefix, 0)}, &cm); err != nil {
		t.Fatal(err)
	}
	out := map[string]ledger.Entry{}
	for uid, raw := range cm.Data {
		var e ledger.Entry
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			t.Fatalf("stored %s = %q: %v", uid, raw, err)
		}
		out[uid] = e
	}
	return out
}

func TestGroupCommitWritesConcurrentSwapsToAShardOnce(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	log := &writeLog{Client: env.Client}
	clk := clocktesting.NewFakeClock(time.Now())
	l := batched(t, ns, log, clk)
	const n = 12
	verdicts := make([]<-chan error, n)
	for i := range n {
		verdicts[i] = swapAsync(ctx, l, fmt.Sprintf("uid-%02d", i), nil, kustomization(fmt.Sprintf("app-%d", i), i))
	}
	waitPending(t, l, n)
	for i, v := range verdicts {
		select {
		case err := <-v:
			t.Fatalf("Swap %d returned before its shard was written: %v", i, err)
		default:
		}
	}
	clk.Step(window)
	for i, v := range verdicts {
		if err := <-v; err != nil {
			t.Errorf("Swap %d: %v", i, err)
		}
	}
	if w := log.writes(); len(w) != 1 || len(w[0]) != n {
		t.Fatalf("%d concurrent Swaps sent %d writes (%v), want one holding all", n, len(w), w)
	}
	if got := newLedger(t, ns, 1).Len(); got != n {
		t.Errorf("stored %d entries, want %d", got, n)
	}
}

func TestGroupCommitWithoutWindowBatchesWhatQueuesBehindAWrite(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	log := &writeLog{Client: env.Client, gate: make(chan struct{}), atGate: make(chan struct{}, 16)}
	l, err := ledger.NewConfigMaps(ledger.ConfigMapsOptions{Client: log, Namespace: ns, Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Load(ctx); err != nil {
		t.Fatal(err)
	}
	first := swapAsync(ctx, l, "uid-first", nil, kustomization("first", 1))
	<-log.atGate
	// While the first write is in flight, the next Swaps queue up for one write after it.
	const n = 8
	verdicts := make([]<-chan error, n)
	for i := range n {
		verdicts[i] = swapAsync(ctx, l, fmt.Sprintf("uid-%02d", i), nil, kustomization(fmt.Sprintf("app-%d", i), i))
	}
	waitPending(t, l, n)
	log.closeGate()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i, v := range verdicts {
		if err := <-v; err != nil {
			t.Errorf("Swap %d: %v", i, err)
		}
	}
	if w := log.writes(); len(w) != 2 || len(w[1]) != n {
		t.Fatalf("1+%d Swaps sent %d writes, want 2, the second holding the %d that queued", n, len(w), n)
	}
}

func TestGroupCommitGivesEachSwapItsOwnVerdict(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	seed := newLedger(t, ns, 1)
	for _, name := range []string{"a", "b", "c"} {
		if err := seed.Put(ctx, "uid-"+name, kustomization(name, 1)); err != nil {
			t.Fatal(err)
		}
	}
	log := &writeLog{Client: env.Client}
	clk := clocktesting.NewFakeClock(time.Now())
	l := batched(t, ns, log, clk)
	a, _ := l.Get("uid-a")
	staleB := kustomization("b", 0)
	good := swapAsync(ctx, l, "uid-a", &a, kustomization("a", 2))
	stale := swapAsync(ctx, l, "uid-b", &staleB, kustomization("b", 2))
	firstSight := swapAsync(ctx, l, "uid-c", nil, kustomization("c", 2)) // c exists: a decision from nothing is stale
	fresh := swapAsync(ctx, l, "uid-d", nil, kustomization("d", 1))
	waitPending(t, l, 4)
	clk.Step(window)
	if err := <-good; err != nil {
		t.Errorf("Swap of a from its stored entry: %v", err)
	}
	if err := <-stale; !errors.Is(err, ledger.ErrConflict) {
		t.Errorf("Swap of b from a stale entry = %v, want ErrConflict", err)
	}
	if err := <-firstSight; !errors.Is(err, ledger.ErrConflict) {
		t.Errorf("Swap of c from no entry = %v, want ErrConflict", err)
	}
	if err := <-fresh; err != nil {
		t.Errorf("Swap of new d: %v", err)
	}
	if w := log.writes(); len(w) != 1 {
		t.Fatalf("one batch sent %d writes, want 1", len(w))
	}
	got := stored(t, ns)
	for name, r := range map[string]int{"a": 2, "b": 1, "c": 1, "d": 1} {
		if e := got["uid-"+name]; e.Revision != rev(r) {
			t.Errorf("stored %s at %s, want %s", name, e.Revision, rev(r))
		}
	}
	if b, _ := l.Get("uid-b"); b.Revision != rev(1) {
		t.Errorf("memory holds b at %s after its conflict, want the stored %s", b.Revision, rev(1))
	}
}

func TestGroupCommitRechecksEachSwapAfterAnotherWriterMidBatch(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	other := newLedger(t, ns, 1)
	for _, name := range []string{"a", "b"} {
		if err := other.Put(ctx, "uid-"+name, kustomization(name, 1)); err != nil {
			t.Fatal(err)
		}
	}
	log := &writeLog{Client: env.Client}
	clk := clocktesting.NewFakeClock(time.Now())
	l := batched(t, ns, log, clk)
	a, _ := l.Get("uid-a")
	b, _ := l.Get("uid-b")
	moveA := swapAsync(ctx, l, "uid-a", &a, kustomization("a", 2))
	moveB := swapAsync(ctx, l, "uid-b", &b, kustomization("b", 2))
	addC := swapAsync(ctx, l, "uid-c", nil, kustomization("c", 1))
	waitPending(t, l, 3)
	// Another process moves b while the batch waits: the batch's write conflicts, and only b's Swap is refused.
	if err := other.Swap(ctx, "uid-b", &b, kustomization("b", 5)); err != nil {
		t.Fatal(err)
	}
	clk.Step(window)
	if err := <-moveA; err != nil {
		t.Errorf("Swap of a: %v", err)
	}
	if err := <-moveB; !errors.Is(err, ledger.ErrConflict) {
		t.Errorf("Swap of b after another writer moved it = %v, want ErrConflict", err)
	}
	if err := <-addC; err != nil {
		t.Errorf("Swap of c: %v", err)
	}
	if w := log.writes(); len(w) != 2 {
		t.Fatalf("batch sent %d writes, want 2 (one refused on its resourceVersion, one after the re-read)", len(w))
	}
	got := stored(t, ns)
	for name, r := range map[string]int{"a": 2, "b": 5, "c": 1} {
		if e := got["uid-"+name]; e.Revision != rev(r) {
			t.Errorf("stored %s at %s, want %s", name, e.Revision, rev(r))
		}
	}
	if e, _ := l.Get("uid-b"); e.Revision != rev(5) {
		t.Errorf("memory holds b at %s, want the other writer's %s", e.Revision, rev(5))
	}
}

func TestGroupCommitLeavesOutAWaiterWhoseContextEnded(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	log := &writeLog{Client: env.Client}
	clk := clocktesting.NewFakeClock(time.Now())
	l := batched(t, ns, log, clk)
	cctx, cancel := context.WithCancel(ctx)
	x := swapAsync(ctx, l, "uid-x", nil, kustomization("x", 1))
	y := swapAsync(cctx, l, "uid-y", nil, kustomization("y", 1))
	z := swapAsync(ctx, l, "uid-z", nil, kustomization("z", 1))
	waitPending(t, l, 3)
	cancel()
	if err := <-y; !errors.Is(err, context.Canceled) {
		t.Fatalf("Swap whose context ended = %v, want context.Canceled", err)
	}
	clk.Step(window)
	for name, v := range map[string]<-chan error{"x": x, "z": z} {
		if err := <-v; err != nil {
			t.Errorf("Swap of %s: %v", name, err)
		}
	}
	got := stored(t, ns)
	if _, ok := got["uid-y"]; ok || len(got) != 2 {
		t.Errorf("stored %v, want x and z only", got)
	}
	if _, ok := l.Get("uid-y"); ok {
		t.Error("memory holds the entry of the Swap that gave up")
	}
}

func TestGroupCommitWaiterGivingUpMidWriteKeepsExactlyOnce(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	log := &writeLog{Client: env.Client, gate: make(chan struct{}), atGate: make(chan struct{}, 4)}
	clk := clocktesting.NewFakeClock(time.Now())
	l := batched(t, ns, log, clk)
	cctx, cancel := context.WithCancel(ctx)
	p := swapAsync(ctx, l, "uid-p", nil, kustomization("p", 1))
	q := swapAsync(cctx, l, "uid-q", nil, kustomization("q", 1))
	waitPending(t, l, 2)
	clk.Step(window)
	<-log.atGate
	// The write holding q is in flight: q's caller gets an error at once, p still waits for the write.
	cancel()
	if err := <-q; !errors.Is(err, context.Canceled) {
		t.Fatalf("Swap whose context ended mid-write = %v, want context.Canceled", err)
	}
	select {
	case err := <-p:
		t.Fatalf("Swap of p returned before its write did: %v", err)
	default:
	}
	log.closeGate()
	if err := <-p; err != nil {
		t.Fatalf("Swap of p: %v", err)
	}
	// q's entry landed: q deciding again the same is told so, another writer deciding from nothing is refused.
	retry := swapAsync(ctx, l, "uid-q", nil, kustomization("q", 1))
	waitPending(t, l, 1)
	clk.Step(window)
	if err := <-retry; err != nil {
		t.Errorf("retry of q = %v, want nil (its write landed)", err)
	}
	if err := newLedger(t, ns, 1).Swap(ctx, "uid-q", nil, kustomization("q", 1)); !errors.Is(err, ledger.ErrConflict) {
		t.Errorf("another writer's Swap of q from nothing = %v, want ErrConflict", err)
	}
}

// hangingClient never answers a write before its deadline.
type hangingClient struct{ client.Client }

func (hangingClient) Patch(ctx context.Context, _ client.Object, _ client.Patch, _ ...client.PatchOption) error {
	<-ctx.Done()
	return ctx.Err()
}

func (hangingClient) Create(ctx context.Context, _ client.Object, _ ...client.CreateOption) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestSwapFailsWhenTheWriteOutlivesTheTimeout(t *testing.T) {
	ns := newNamespace(t)
	l, err := ledger.NewConfigMaps(ledger.ConfigMapsOptions{Client: hangingClient{env.Client}, Namespace: ns, Shards: 1, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := l.Swap(context.Background(), "u", nil, kustomization("u", 1)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Swap against a hanging apiserver = %v, want context.DeadlineExceeded", err)
	}
	if _, ok := l.Get("u"); ok {
		t.Error("memory holds an entry whose write failed")
	}
}
