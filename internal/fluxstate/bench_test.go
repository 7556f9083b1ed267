package fluxstate

import (
	"fmt"
	"io"
	"runtime"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// benchObjects are n Flux objects spread over the kinds, each with every field its labels read.
func benchObjects(b *testing.B, n int) []*unstructured.Unstructured {
	templates := loadObjects(b, "")
	var full []*unstructured.Unstructured
	for _, u := range templates {
		if u.GetName() == "full" || u.GetName() == "from-chart" {
			full = append(full, u)
		}
	}
	out := make([]*unstructured.Unstructured, 0, n)
	for i := range n {
		u := full[i%len(full)].DeepCopy()
		u.SetNamespace(fmt.Sprintf("team-%03d", i%100))
		u.SetName(fmt.Sprintf("object-%05d", i))
		out = append(out, u)
	}
	return out
}

// BenchmarkScrape gathers and encodes the series of 10,000 cached objects, as one scrape of /metrics does.
func BenchmarkScrape(b *testing.B) {
	objs := benchObjects(b, 10_000)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c := staticCollector(b, objs)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(objs)
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		b.Fatal(err)
	}
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		mfs, err := reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		enc := expfmt.NewEncoder(io.Discard, format)
		series := 0
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				b.Fatal(err)
			}
			series += len(mf.Metric)
		}
		if series != len(objs) {
			b.Fatalf("%d series, want %d", series, len(objs))
		}
	}
	b.ReportMetric(float64(after.HeapAlloc-min(before.HeapAlloc, after.HeapAlloc))/float64(len(objs)), "cache-B/object")
}
