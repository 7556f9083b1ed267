package tracker_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/flux"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// benchWorkers is how many objects are processed at once, like the controller's reconcile workers.
const benchWorkers = 8

// pushExported adds manifests commit number i, exported from one upstream commit a minute before it;
// it returns the commit, its time, and the samples an apply 30 s after it must produce.
func (f *fixture) pushExported(i int) (sha string, committed time.Time, want []string) {
	sec := 3600 + 600*i
	upstream := fmt.Sprintf("%040x", i+1)
	sha = f.commit(sec, map[string]string{infoPath: exporterInfo(upstream, sec-60)})
	committed, applied := at(sec), at(sec+30)
	return sha, committed, []string{
		smp(latency.StageReconcile, sha, "", committed, applied, 30*time.Second),
		smp(latency.StageExport, sha, upstream, at(sec-60), committed, 60*time.Second),
		smp(latency.StageE2E, sha, upstream, at(sec-60), applied, 90*time.Second),
	}
}

// checkRecorded fails b unless res recorded exactly the one commit sha with the samples want.
func checkRecorded(b *testing.B, name string, res tracker.Result, err error, sha string, want []string) {
	b.Helper()
	if err != nil || res.Outcome != tracker.Recorded || len(res.Commits) != 1 || res.Commits[0].SHA != sha {
		b.Fatalf("%s: Process = %q with %d commits, %v; want %s recorded", name, res.Outcome, len(res.Commits), err, sha)
	}
	if got := samples(res.Samples); !slices.Equal(got, want) {
		b.Fatalf("%s: samples %q, want %q", name, got, want)
	}
}

// BenchmarkGitHubCallsPerRevision has K objects on one repository apply one new commit, processed
// concurrently as the controller's workers would, and counts the GitHub API calls that revision cost.
func BenchmarkGitHubCallsPerRevision(b *testing.B) {
	for _, k := range []int{1, 50, 500} {
		b.Run(fmt.Sprintf("K=%d", k), func(b *testing.B) {
			f := newFixture(b, withExporterInfo())
			a, _, _ := f.pushExported(0)
			deps := make([]flux.Deployment, k)
			for j := range deps {
				deps[j] = dep(fmt.Sprintf("app-%03d", j), rev(a), at(0))
				f.mustProcess(deps[j], tracker.Baseline)
			}
			ctx := context.Background()
			results := make([]tracker.Result, k)
			errs := make([]error, k)
			calls := 0
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				sha, committed, want := f.pushExported(i + 1)
				for j := range deps {
					deps[j].Revision, deps[j].Applied = rev(sha), committed.Add(30*time.Second)
				}
				f.srv.ClearRequests()
				f.tel.Spans.Reset()
				jobs := make(chan int, k)
				for j := range k {
					jobs <- j
				}
				close(jobs)
				b.StartTimer()

				var wg sync.WaitGroup
				for range min(benchWorkers, k) {
					wg.Go(func() {
						for j := range jobs {
							results[j], errs[j] = f.trk.Process(ctx, deps[j])
						}
					})
				}
				wg.Wait()

				b.StopTimer()
				for j := range k {
					checkRecorded(b, deps[j].Name, results[j], errs[j], sha, want)
				}
				n := len(f.srv.Requests())
				if n > 2 {
					b.Errorf("revision %d cost %d GitHub calls for %d objects, want ≤ 2: %q", i+1, n, k, f.requests())
				}
				calls += n
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(float64(calls)/float64(b.N), "github-calls/revision")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*k), "ns/object")
		})
	}
}

// BenchmarkProcessWarm times Process for one object when another object already processed the same
// revision, so the provider's cache holds everything it needs.
func BenchmarkProcessWarm(b *testing.B) {
	f := newFixture(b, withExporterInfo())
	a, _, _ := f.pushExported(0)
	warm, measured := dep("warm", rev(a), at(0)), dep("measured", rev(a), at(0))
	f.mustProcess(warm, tracker.Baseline)
	f.mustProcess(measured, tracker.Baseline)
	ctx := context.Background()
	durations := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		sha, committed, want := f.pushExported(i + 1)
		warm.Revision, warm.Applied = rev(sha), committed.Add(30*time.Second)
		measured.Revision, measured.Applied = warm.Revision, warm.Applied
		res, err := f.trk.Process(ctx, warm)
		checkRecorded(b, warm.Name, res, err, sha, want)
		f.srv.ClearRequests()
		f.tel.Spans.Reset()
		b.StartTimer()

		start := time.Now()
		res, err = f.trk.Process(ctx, measured)
		durations = append(durations, time.Since(start))

		b.StopTimer()
		checkRecorded(b, measured.Name, res, err, sha, want)
		if reqs := f.requests(); len(reqs) != 0 {
			b.Fatalf("warm Process called GitHub: %q", reqs)
		}
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(durations)
	ms := func(q float64) float64 {
		return float64(durations[int(q*float64(len(durations)-1))].Nanoseconds()) / 1e6
	}
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
}

// BenchmarkForget deletes one object from a ledger of 10,000: its cost must not grow with the ledger (a
// burst of deletions runs on many workers at once).
func BenchmarkForget(b *testing.B) {
	f := newFixture(b)
	const entries = 10000
	for i := range entries {
		if err := ledger.Put(context.Background(), f.led, fmt.Sprintf("uid-%05d", i), ledger.Entry{
			Kind: flux.KindKustomization, Namespace: "apps", Name: fmt.Sprintf("app-%05d", i), Revision: rev(strings.Repeat("a", 40))}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		name := fmt.Sprintf("app-%05d", i%entries)
		if err := f.trk.Forget(context.Background(), flux.KindKustomization, "apps", name); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n := f.led.Len(); n != entries-min(b.N, entries) {
		b.Fatalf("%d entries left after %d deletions of %d, want %d", n, b.N, entries, entries-min(b.N, entries))
	}
}
