package telemetry

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
)

var obj = ObjectAttributes{
	Cluster: "prod-eu", Namespace: "flux-system", Kind: "Kustomization", Name: "apps",
	Repository: "https://github.com/acme/kube-manifests",
}

func objKVs(extra ...attribute.KeyValue) attribute.Set {
	return attribute.NewSet(append([]attribute.KeyValue{
		attribute.String("k8s.cluster.name", "prod-eu"),
		attribute.String("k8s.namespace.name", "flux-system"),
		attribute.String("flux.kind", "Kustomization"),
		attribute.String("flux.name", "apps"),
		attribute.String("vcs.repository.url.full", "https://github.com/acme/kube-manifests"),
	}, extra...)...)
}

func newManual(t *testing.T) (*Metrics, *sdkmetric.ManualReader) {
	t.Helper()
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m, err := NewMetrics(mp)
	if err != nil {
		t.Fatal(err)
	}
	return m, r
}

func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != ScopeName {
			t.Errorf("scope = %q, want %q", sm.Scope.Name, ScopeName)
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

func TestMetricsHistograms(t *testing.T) {
	m, r := newManual(t)
	ctx := context.Background()
	m.ObserveE2E(ctx, 90*time.Second, obj)
	m.ObserveE2E(ctx, 1500*time.Millisecond, obj)
	m.ObserveExport(ctx, 30*time.Second, obj)
	m.ObserveReconcile(ctx, 0, obj)
	// Negative durations are a caller bug and are dropped.
	m.ObserveE2E(ctx, -time.Second, obj)
	m.ObserveExport(ctx, -time.Second, obj)
	m.ObserveReconcile(ctx, -time.Second, obj)

	got := collect(t, r)
	for _, tc := range []struct {
		name   string
		desc   string
		count  uint64
		sum    float64
		bucket int // index of the bucket holding the first sample
	}{
		{MetricE2E, "Upstream commit (or the manifests commit when there is none) to applied by Flux; one sample per upstream commit.", 2, 91.5, 7},
		{MetricExport, "Upstream commit to the manifests commit that exported it; one sample per upstream commit.", 1, 30, 5},
		{MetricReconcile, "Manifests commit to applied by Flux; one sample per manifests commit.", 1, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			md, ok := got[tc.name]
			if !ok {
				t.Fatalf("metric %s not collected", tc.name)
			}
			if md.Unit != "s" || md.Description != tc.desc {
				t.Errorf("unit, description = %q, %q", md.Unit, md.Description)
			}
			h, ok := md.Data.(metricdata.Histogram[float64])
			if !ok {
				t.Fatalf("data = %T, want Histogram[float64]", md.Data)
			}
			if len(h.DataPoints) != 1 {
				t.Fatalf("%d data points, want 1", len(h.DataPoints))
			}
			dp := h.DataPoints[0]
			if dp.Count != tc.count || dp.Sum != tc.sum {
				t.Errorf("count, sum = %d, %v; want %d, %v", dp.Count, dp.Sum, tc.count, tc.sum)
			}
			if !slices.Equal(dp.Bounds, LatencyBuckets) {
				t.Errorf("bounds = %v, want %v", dp.Bounds, LatencyBuckets)
			}
			if dp.BucketCounts[tc.bucket] == 0 {
				t.Errorf("bucket %d (le %v) empty: %v", tc.bucket, dp.Bounds[tc.bucket], dp.BucketCounts)
			}
			if want := objKVs(); !dp.Attributes.Equals(&want) {
				t.Errorf("attributes = %v, want %v", dp.Attributes.ToSlice(), want.ToSlice())
			}
			if mn, _ := dp.Min.Value(); mn < 0 {
				t.Errorf("negative sample recorded: min %v", mn)
			}
		})
	}
}

func TestMetricsCounters(t *testing.T) {
	m, r := newManual(t)
	ctx := context.Background()
	m.AddCommitsRecorded(ctx, 3, obj)
	m.AddCommitsRecorded(ctx, 0, obj)  // ignored
	m.AddCommitsRecorded(ctx, -2, obj) // ignored
	m.AddError(ctx, ReasonGitHub, obj)
	m.AddError(ctx, ReasonGitHub, obj)
	m.AddError(ctx, "made-up", obj) // → other
	m.AddClockSkew(ctx, latency.StageFetch, obj)
	m.AddTruncated(ctx, 17, obj)
	m.AddTruncated(ctx, 0, obj) // ignored
	m.AddNotRecorded(ctx, commits.Diverged, obj)
	m.AddNotRecorded(ctx, commits.Behind, obj)
	m.AddGitHubCall(ctx, commits.CallCacheHit)
	m.AddGitHubCall(ctx, commits.CallNotModified)
	m.AddGitHubCall(ctx, commits.CallNotModified)
	m.AddGitCall(ctx, commits.CallSuccess)
	m.AddGitCall(ctx, commits.CallNotModified) // not a git outcome → other

	type point struct {
		attrs attribute.Set
		value int64
	}
	want := map[string]struct {
		unit   string
		points []point
	}{
		MetricCommitsRecorded: {"{commit}", []point{{objKVs(), 3}}},
		MetricErrors: {"{error}", []point{
			{objKVs(attribute.String("reason", "github")), 2},
			{objKVs(attribute.String("reason", "other")), 1},
		}},
		MetricClockSkew: {"{sample}", []point{{objKVs(attribute.String("stage", "fetch")), 1}}},
		MetricTruncated: {"{commit}", []point{{objKVs(), 17}}},
		MetricNotRecorded: {"{revision}", []point{
			{objKVs(attribute.String("status", "diverged")), 1},
			{objKVs(attribute.String("status", "behind")), 1},
		}},
		MetricGitHubCalls: {"{call}", []point{
			{attribute.NewSet(attribute.String("outcome", "cache_hit")), 1},
			{attribute.NewSet(attribute.String("outcome", "not_modified")), 2},
		}},
		MetricGitCalls: {"{call}", []point{
			{attribute.NewSet(attribute.String("outcome", "success")), 1},
			{attribute.NewSet(attribute.String("outcome", "other")), 1},
		}},
	}

	got := collect(t, r)
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			md, ok := got[name]
			if !ok {
				t.Fatalf("metric %s not collected", name)
			}
			if md.Unit != w.unit {
				t.Errorf("unit = %q, want %q", md.Unit, w.unit)
			}
			sum, ok := md.Data.(metricdata.Sum[int64])
			if !ok || !sum.IsMonotonic || sum.Temporality != metricdata.CumulativeTemporality {
				t.Fatalf("data = %#v, want cumulative monotonic Sum[int64]", md.Data)
			}
			if len(sum.DataPoints) != len(w.points) {
				t.Fatalf("%d data points, want %d: %v", len(sum.DataPoints), len(w.points), sum.DataPoints)
			}
			for _, wp := range w.points {
				found := false
				for _, dp := range sum.DataPoints {
					if dp.Attributes.Equals(&wp.attrs) {
						found = true
						if dp.Value != wp.value {
							t.Errorf("%v = %d, want %d", wp.attrs.ToSlice(), dp.Value, wp.value)
						}
					}
				}
				if !found {
					t.Errorf("no data point with %v", wp.attrs.ToSlice())
				}
			}
		})
	}
	if len(got) != len(want) {
		t.Errorf("collected %d metrics, want %d (histograms without samples are not exported)", len(got), len(want))
	}
}

func TestMetricsNilAndNoop(t *testing.T) {
	var m *Metrics
	m.ObserveE2E(context.Background(), time.Second, obj) // must not panic
	m.AddGitHubCall(context.Background(), commits.CallSuccess)

	if _, err := NewMetrics(nil); err == nil {
		t.Error("NewMetrics(nil) succeeded")
	}
	nm, err := NewMetrics(noop.NewMeterProvider())
	if err != nil {
		t.Fatal(err)
	}
	nm.AddError(context.Background(), ReasonLedger, obj)
}

// TestDefinitions checks the table is self-consistent.
func TestDefinitions(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range Definitions {
		if seen[d.Name] {
			t.Errorf("%s defined twice", d.Name)
		}
		seen[d.Name] = true
		if d.Unit == "" || d.Description == "" {
			t.Errorf("%s: unit and description are required", d.Name)
		}
		if (d.Kind == Histogram) != (len(d.Buckets) > 0) || !slices.IsSorted(d.Buckets) {
			t.Errorf("%s: histograms, and only they, need sorted buckets", d.Name)
		}
		for k, vs := range d.Values {
			if !slices.Contains(d.Attributes, k) {
				t.Errorf("%s: values for %s, which is not an attribute", d.Name, k)
			}
			if !slices.Contains(vs, Other) {
				t.Errorf("%s: %s values lack %q", d.Name, k, Other)
			}
		}
		for _, k := range d.Attributes {
			if k == "sha" || k == "revision" || k == "commit" {
				t.Errorf("%s: commit identifiers must not be attributes", d.Name)
			}
		}
	}
}
