package github_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// BenchmarkRangeWarm measures a Range answered from the cache.
func BenchmarkRangeWarm(b *testing.B) {
	f := newFixture(b, nil)
	base, head := f.commit(nil), f.commit(nil)
	ctx := context.Background()
	if _, err := f.p.Range(ctx, repo, base, head); err != nil {
		b.Fatal(err)
	}
	f.srv.ClearRequests()
	for b.Loop() {
		if _, err := f.p.Range(ctx, repo, base, head); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(f.srv.Requests()))/float64(b.N), "github-calls/revision")
}

// BenchmarkRevision has K objects sharing one repository each look up the range and the
// exporter-info.json of one new revision, concurrently, as reconcilers do after one push.
func BenchmarkRevision(b *testing.B) {
	for _, k := range []int{1, 50, 500} {
		b.Run(fmt.Sprintf("objects=%d", k), func(b *testing.B) {
			f := newFixture(b, nil)
			prev := f.commit(map[string]string{"exporter-info.json": `{"n":0}`})
			ctx := context.Background()
			f.srv.ClearRequests()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				head := f.commit(map[string]string{"exporter-info.json": fmt.Sprintf(`{"n":%d}`, i+1)})
				b.StartTimer()
				var wg sync.WaitGroup
				for range k {
					wg.Go(func() {
						r, err := f.p.Range(ctx, repo, prev, head)
						if err != nil || len(r.Commits) != 1 {
							b.Errorf("Range: %d commits, %v", len(r.Commits), err)
						}
						if _, err := f.p.File(ctx, repo, head, "exporter-info.json", 1<<20); err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
				prev = head
			}
			calls := len(f.srv.Requests())
			if calls != 2*b.N {
				b.Errorf("%d GitHub calls for %d revisions, want one compare and one contents call each", calls, b.N)
			}
			b.ReportMetric(float64(calls)/float64(b.N), "github-calls/revision")
		})
	}
}
