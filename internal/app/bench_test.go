package app_test

import (
	"fmt"
	"sort"
	"testing"
	"time"
)

// BenchmarkStatusToSample measures the time from a Flux status change (the status write returning) to the
// commit's sample being recorded, through the real controller on a real apiserver. "cold" objects are the first
// to see a revision (one compare call to the local fake GitHub API); "warm" objects see a revision another
// object already resolved (answered from the tracker's cache).
func BenchmarkStatusToSample(b *testing.B) {
	s := newScenario(b)
	c0 := s.commit(0, nil)
	s.createKustomization("cold", c0, 5)
	s.createKustomization("warm", c0, 5)
	tr := s.startTracker("--log-level", "info")
	eventually(b, 10*time.Second, "baselines", func() bool { return s.ledgerRevision("cold") != "" && s.ledgerRevision("warm") != "" })

	wait := func() time.Duration {
		start := time.Now()
		select {
		case <-tr.Recorded:
			return time.Since(start)
		case <-time.After(10 * time.Second):
			b.Fatal("no sample recorded within 10s")
			return 0
		}
	}
	var cold, warm []time.Duration
	b.ResetTimer()
	for i := range b.N {
		sha := s.commit(10+i, map[string]string{"a": fmt.Sprint(i)})
		s.apply("cold", "main@sha1:"+sha, s.at(20+i))
		cold = append(cold, wait())
		s.apply("warm", "main@sha1:"+sha, s.at(20+i))
		warm = append(warm, wait())
	}
	b.StopTimer()
	if got := len(tr.Applied()); got != 2*b.N {
		b.Fatalf("recorded %d commits, want %d", got, 2*b.N)
	}
	report(b, "cold", cold)
	report(b, "warm", warm)
}

func report(b *testing.B, name string, d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	pct := func(p float64) float64 {
		return float64(d[min(int(p*float64(len(d))), len(d)-1)].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), name+"-p50-ms")
	b.ReportMetric(pct(0.99), name+"-p99-ms")
}
