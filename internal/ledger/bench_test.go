package ledger_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
)

// wireCount counts the ConfigMap requests that reach the apiserver and the bytes of the bodies written.
type wireCount struct {
	writes, bytes, reads atomic.Int64
	largest              atomic.Int64

	mu     sync.Mutex
	keep   bool     // keep the bodies written
	bodies [][]byte // the bodies written, when keep is set
}

// counting is a transport that tells count of each ConfigMap request.
type counting struct {
	next  http.RoundTripper
	count *wireCount
}

func (t counting) RoundTrip(req *http.Request) (*http.Response, error) {
	c := t.count
	if strings.Contains(req.URL.Path, "/configmaps") {
		switch req.Method {
		case http.MethodPut, http.MethodPost, http.MethodPatch:
			c.mu.Lock()
			keep := c.keep
			c.mu.Unlock()
			n := req.ContentLength
			if (n < 0 || keep) && req.Body != nil {
				body, err := io.ReadAll(req.Body)
				if err != nil {
					return nil, fmt.Errorf("read request body: %w", err)
				}
				n, req.Body = int64(len(body)), io.NopCloser(bytes.NewReader(body))
				if keep {
					c.mu.Lock()
					c.bodies = append(c.bodies, body)
					c.mu.Unlock()
				}
			}
			c.writes.Add(1)
			c.bytes.Add(n)
			for old := c.largest.Load(); n > old && !c.largest.CompareAndSwap(old, n); old = c.largest.Load() {
			}
		case http.MethodGet:
			c.reads.Add(1)
		}
	}
	return t.next.RoundTrip(req)
}

func (c *wireCount) reset() {
	c.writes.Store(0)
	c.bytes.Store(0)
	c.reads.Store(0)
	c.largest.Store(0)
	c.mu.Lock()
	c.bodies = nil
	c.mu.Unlock()
}

// written returns the bodies written since the last reset, when keep is set.
func (c *wireCount) written() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.bodies...)
}

// countedClient is a client whose ConfigMap traffic count sees, as the tracker's client sends it.
func countedClient(t testing.TB, count *wireCount) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return counting{next: rt, count: count} })
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// benchObjects is the size of the ledger the benchmark moves objects in.
const benchObjects = 10000

// benchShards is the shard count of the benchmark's ledger.
var benchShards = flag.Int("bench-shards", ledger.DefaultShards, "shard count of BenchmarkLedgerWrites' ledger")

// benchEntry is object i at revision r, named as a multi-team cluster names them.
func benchEntry(i, r int) ledger.Entry {
	revision := fmt.Sprintf("main@sha1:%040x", r)
	return ledger.Entry{Kind: "Kustomization", Namespace: fmt.Sprintf("team-%03d", i%100), Name: fmt.Sprintf("app-%05d", i),
		Revision: revision, Recorded: revision, UpdatedAt: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), Writer: "0123456789ab"}
}

// benchUIDs are random version-4 UIDs, as the apiserver gives objects, the same in every run.
var benchUIDs = func() []string {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]string, benchObjects)
	for i := range out {
		a, b := rng.Uint64(), rng.Uint64()
		out[i] = fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", a>>32, a>>16&0xffff, a&0xfff, 0x8000|b>>48&0x3fff, b&0xffffffffffff)
	}
	return out
}()

func benchUID(i int) string { return benchUIDs[i] }

// BenchmarkLedgerWrites moves K objects of a 10,000-object ledger to one new revision at once and reports what
// the apiserver was sent: writes and bytes, per move and per moved object. It starts from the 32-shard layout of
// earlier versions and reports what the first Load's move to the current layout cost.
func BenchmarkLedgerWrites(b *testing.B) {
	ctx := context.Background()
	ns := newNamespace(b)
	entries := map[string]ledger.Entry{}
	for i := range benchObjects {
		entries[benchUID(i)] = benchEntry(i, 1)
	}
	createShards(b, ns, legacyData(b, entries))
	count := &wireCount{}
	c := countedClient(b, count)
	load := func(window time.Duration) *ledger.ConfigMaps {
		l, err := ledger.NewConfigMaps(ledger.ConfigMapsOptions{Client: c, Namespace: ns, Shards: *benchShards, BatchWindow: window})
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Load(ctx); err != nil {
			b.Fatal(err)
		}
		if l.Len() != benchObjects {
			b.Fatalf("loaded %d entries, want %d", l.Len(), benchObjects)
		}
		return l
	}
	// The first Load moves the earlier layout's entries home; it happens once, whatever b.N.
	count.reset()
	load(0)
	reads, writes, written := count.reads.Load(), count.writes.Load(), count.bytes.Load()
	b.Run("upgrade-load", func(b *testing.B) {
		b.ReportMetric(float64(reads), "reads")
		b.ReportMetric(float64(writes), "writes")
		b.ReportMetric(float64(written), "bytes")
	})
	revision := 1
	for _, k := range []int{1, 100, 1000, 10000} {
		for _, callers := range []int{8, k} {
			if k == 1 && callers != 8 {
				continue
			}
			for _, window := range []time.Duration{0, 20 * time.Millisecond} {
				name := fmt.Sprintf("K=%d/callers=%d/window=%s", k, callers, window)
				b.Run(name, func(b *testing.B) {
					l := load(window)
					count.reset()
					for range b.N {
						revision++
						moveAll(b, l, k, min(callers, k), revision)
					}
					touched := map[string]bool{}
					for i := range k {
						touched[l.Home(benchUID(i))] = true
					}
					moved := float64(k * b.N)
					b.ReportMetric(float64(len(touched)), "shards-touched")
					b.ReportMetric(float64(count.writes.Load())/float64(b.N), "writes/op")
					b.ReportMetric(float64(count.bytes.Load())/moved, "bytes/object")
					b.ReportMetric(float64(count.largest.Load()), "max-bytes/write")
					b.ReportMetric(float64(count.reads.Load())/float64(b.N), "rereads/op")
				})
			}
		}
	}
}

// moveAll moves objects 0..k-1 to revision r, callers Swaps at a time, as the controller's workers do.
func moveAll(b *testing.B, l *ledger.ConfigMaps, k, callers, r int) {
	work := make(chan int)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for i := range work {
				uid := benchUID(i)
				for {
					prev, ok := l.Get(uid)
					if !ok {
						b.Errorf("no entry for %s", uid)
						return
					}
					err := l.Swap(context.Background(), uid, &prev, benchEntry(i, r))
					if err == nil {
						break
					}
					if !errors.Is(err, ledger.ErrConflict) {
						b.Error(err)
						return
					}
				}
			}
		})
	}
	for i := range k {
		work <- i
	}
	close(work)
	wg.Wait()
}
