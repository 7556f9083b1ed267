package telemetry

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// BenchmarkCollect10kObjects times one collection of 10,000 objects' series (four histograms and a counter
// each) at each aggregation level: by the Store alone, and by a whole Prometheus gather through it.
func BenchmarkCollect10kObjects(b *testing.B) {
	const objects = 10000
	for _, level := range Aggregations {
		mp, err := NewMeterProvider(MetricsConfig{Aggregation: level}, nil)
		if err != nil {
			b.Fatal(err)
		}
		m, err := NewMetrics(mp)
		if err != nil {
			b.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		prom, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithTranslationStrategy(promStrategy),
			otelprom.WithoutScopeInfo(), otelprom.WithProducer(mp.Store))
		if err != nil {
			b.Fatal(err)
		}
		export := sdkmetric.NewMeterProvider(sdkmetric.WithReader(prom))
		ctx := context.Background()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range objects {
			a := object(fmt.Sprintf("team-%d", i%200), fmt.Sprintf("app-%d", i))
			m.ObserveE2E(ctx, time.Duration(i%3600)*time.Second, a)
			m.ObserveReconcile(ctx, time.Duration(i%600)*time.Second, a)
			m.ObserveFetch(ctx, time.Duration(i%60)*time.Second, a)
			m.ObserveApply(ctx, time.Duration(i%540)*time.Second, a)
			m.AddCommitsRecorded(ctx, 1, a)
		}
		if _, err := mp.Store.Produce(ctx); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap := float64(after.HeapAlloc-before.HeapAlloc) / objects
		b.Run(string(level)+"/store", func(b *testing.B) {
			for b.Loop() {
				if _, err := mp.Store.Produce(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(heap, "heap-B/object")
		})
		b.Run(string(level)+"/prometheus", func(b *testing.B) {
			var series, size int
			for b.Loop() {
				fams, err := reg.Gather()
				if err != nil {
					b.Fatal(err)
				}
				var body countingWriter
				enc := expfmt.NewEncoder(&body, expfmt.NewFormat(expfmt.TypeTextPlain))
				series = 0
				for _, f := range fams {
					if err := enc.Encode(f); err != nil {
						b.Fatal(err)
					}
					for _, s := range f.GetMetric() {
						if h := s.GetHistogram(); h != nil {
							series += len(h.GetBucket()) + 3 // the buckets, +Inf, _sum and _count
						} else {
							series++
						}
					}
				}
				size = int(body)
			}
			b.ReportMetric(float64(series), "series")
			b.ReportMetric(float64(size)/(1<<20), "MiB/scrape")
		})
		_ = export.Shutdown(ctx)
		_ = mp.Shutdown(ctx)
	}
}

// countingWriter counts the bytes written to it.
type countingWriter int

func (w *countingWriter) Write(p []byte) (int, error) {
	*w += countingWriter(len(p))
	return len(p), nil
}
