package latency

import (
	"reflect"
	"testing"
	"time"
)

func TestCompute(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

	tests := []struct {
		name    string
		applied time.Time
		commits []DeliveredCommit
		want    []Sample
	}{
		{
			name:    "no commits",
			applied: at(10),
			want:    []Sample{},
		},
		{
			name:    "one commit without upstream",
			applied: at(90),
			commits: []DeliveredCommit{{SHA: "a", Committed: at(30)}},
			want: []Sample{
				{Stage: StageReconcile, Commit: "a", Start: at(30), End: at(90), Duration: 60 * time.Second},
				{Stage: StageE2E, Commit: "a", Start: at(30), End: at(90), Duration: 60 * time.Second},
			},
		},
		{
			name:    "upstream commits counted once across manifests commits",
			applied: at(100),
			commits: []DeliveredCommit{
				{SHA: "m1", Committed: at(40), Upstream: []UpstreamCommit{{SHA: "u1", Time: at(10)}, {SHA: "u2", Time: at(20)}}},
				{SHA: "m2", Committed: at(50), Upstream: []UpstreamCommit{{SHA: "u2", Time: at(20)}, {SHA: "u3", Time: at(45)}}},
			},
			want: []Sample{
				{Stage: StageReconcile, Commit: "m1", Start: at(40), End: at(100), Duration: 60 * time.Second},
				{Stage: StageExport, Commit: "m1", Upstream: "u1", Start: at(10), End: at(40), Duration: 30 * time.Second},
				{Stage: StageE2E, Commit: "m1", Upstream: "u1", Start: at(10), End: at(100), Duration: 90 * time.Second},
				{Stage: StageExport, Commit: "m1", Upstream: "u2", Start: at(20), End: at(40), Duration: 20 * time.Second},
				{Stage: StageE2E, Commit: "m1", Upstream: "u2", Start: at(20), End: at(100), Duration: 80 * time.Second},
				{Stage: StageReconcile, Commit: "m2", Start: at(50), End: at(100), Duration: 50 * time.Second},
				{Stage: StageExport, Commit: "m2", Upstream: "u3", Start: at(45), End: at(50), Duration: 5 * time.Second},
				{Stage: StageE2E, Commit: "m2", Upstream: "u3", Start: at(45), End: at(100), Duration: 55 * time.Second},
			},
		},
		{
			name:    "skewed clocks are clamped and flagged",
			applied: at(10),
			commits: []DeliveredCommit{
				{SHA: "m", Committed: at(25), Upstream: []UpstreamCommit{{SHA: "u", Time: at(30)}}},
			},
			want: []Sample{
				{Stage: StageReconcile, Commit: "m", Start: at(25), End: at(10), Duration: 0, Skewed: true},
				{Stage: StageExport, Commit: "m", Upstream: "u", Start: at(30), End: at(25), Duration: 0, Skewed: true},
				{Stage: StageE2E, Commit: "m", Upstream: "u", Start: at(30), End: at(10), Duration: 0, Skewed: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compute(tt.applied, tt.commits)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Compute() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func FuzzComputeNeverNegative(f *testing.F) {
	f.Add(int64(0), int64(10), int64(5))
	f.Add(int64(100), int64(-50), int64(1e12))
	f.Fuzz(func(t *testing.T, applied, committed, upstream int64) {
		base := time.Unix(0, 0)
		samples := Compute(base.Add(time.Duration(applied)), []DeliveredCommit{{
			SHA: "m", Committed: base.Add(time.Duration(committed)),
			Upstream: []UpstreamCommit{{SHA: "u", Time: base.Add(time.Duration(upstream))}},
		}})
		if len(samples) != 3 {
			t.Fatalf("got %d samples, want 3", len(samples))
		}
		for _, s := range samples {
			if s.Duration < 0 {
				t.Fatalf("negative duration %v in %+v", s.Duration, s)
			}
			if s.Skewed != s.End.Before(s.Start) {
				t.Fatalf("skew flag %v disagrees with start %v end %v", s.Skewed, s.Start, s.End)
			}
		}
	})
}

func TestFetchStages(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	commits := []DeliveredCommit{{SHA: "a", Committed: at(10)}, {SHA: "b", Committed: at(50)}}
	got := FetchStages(at(40), at(70), commits)
	want := []Sample{
		{Stage: StageFetch, Commit: "a", Start: at(10), End: at(40), Duration: 30 * time.Second},
		{Stage: StageApply, Commit: "a", Start: at(40), End: at(70), Duration: 30 * time.Second},
		// b was committed after the fetch time Flux reports: a skewed clock, clamped.
		{Stage: StageFetch, Commit: "b", Start: at(50), End: at(40), Duration: 0, Skewed: true},
		{Stage: StageApply, Commit: "b", Start: at(40), End: at(70), Duration: 30 * time.Second},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FetchStages() =\n%+v\nwant\n%+v", got, want)
	}
	if got := FetchStages(time.Time{}, at(70), commits); got != nil {
		t.Errorf("unknown fetch time gave %+v, want none", got)
	}
}
