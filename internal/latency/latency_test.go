package latency

import (
	"errors"
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
			got, rejected := Compute(tt.applied, tt.commits, Bounds{})
			if len(rejected) != 0 {
				t.Errorf("rejected %+v, want none", rejected)
			}
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
		base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
		b := Bounds{Now: base.Add(time.Duration(applied))}
		samples, rejected := Compute(base.Add(time.Duration(applied)), []DeliveredCommit{{
			SHA: "m", Committed: base.Add(time.Duration(committed)),
			Upstream: []UpstreamCommit{{SHA: "u", Time: base.Add(time.Duration(upstream))}},
		}}, b)
		// Each rejected time removes the samples that start or end at it.
		keep := map[Stage]bool{StageReconcile: true, StageExport: true, StageE2E: true}
		for _, r := range rejected {
			if !errors.Is(r.Err, ErrImplausibleTime) {
				t.Fatalf("rejection %+v does not wrap ErrImplausibleTime", r)
			}
			switch r.Field {
			case FieldApplied:
				keep = map[Stage]bool{}
			case FieldCommitted:
				keep[StageReconcile], keep[StageExport] = false, false
			case FieldUpstream:
				keep[StageExport], keep[StageE2E] = false, false
			}
		}
		wantSamples := 0
		for _, ok := range keep {
			if ok {
				wantSamples++
			}
		}
		if len(samples) != wantSamples {
			t.Fatalf("got %d samples with rejections %+v, want %d", len(samples), rejected, wantSamples)
		}
		for _, s := range samples {
			if s.Duration < 0 || s.Duration > MaxDuration {
				t.Fatalf("duration %v out of [0, %v] in %+v", s.Duration, MaxDuration, s)
			}
			if Plausible(s.Start, b.Now, DefaultClockSkewTolerance) != nil || Plausible(s.End, b.Now, DefaultClockSkewTolerance) != nil {
				t.Fatalf("sample %+v has an implausible endpoint", s)
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
	got, rejected := FetchStages(at(40), at(70), commits, Bounds{})
	if len(rejected) != 0 {
		t.Errorf("rejected %+v, want none", rejected)
	}
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
	if got, rejected := FetchStages(time.Time{}, at(70), commits, Bounds{}); got != nil || rejected != nil {
		t.Errorf("unknown fetch time gave %+v, want none", got)
	}
}

func TestPlausible(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		t    time.Time
		tol  time.Duration
		ok   bool
	}{
		{"now", now, 5 * time.Minute, true},
		{"an hour ago", now.Add(-time.Hour), 5 * time.Minute, true},
		{"earliest", Earliest, 5 * time.Minute, true},
		{"just before earliest", Earliest.Add(-time.Second), 5 * time.Minute, false},
		{"year one", time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC), 5 * time.Minute, false},
		{"zero", time.Time{}, 5 * time.Minute, false},
		{"unix epoch", time.Unix(0, 0), 5 * time.Minute, false},
		{"within tolerance", now.Add(5 * time.Minute), 5 * time.Minute, true},
		{"past tolerance", now.Add(5*time.Minute + time.Second), 5 * time.Minute, false},
		{"far future", time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), 5 * time.Minute, false},
		{"negative tolerance is none", now.Add(time.Second), -time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Plausible(tt.t, now, tt.tol)
			if (err == nil) != tt.ok {
				t.Fatalf("Plausible(%s) = %v, want ok %v", tt.t, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrImplausibleTime) {
				t.Errorf("error %v does not wrap ErrImplausibleTime", err)
			}
		})
	}
}

// TestComputeRejectsImplausibleTimes: an upstream time of 0001-01-01T00:00:01Z once gave a 9,223,372,037 s e2e
// sample; such times are now rejected and reported, and the samples that do not need them are kept.
func TestComputeRejectsImplausibleTimes(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	yearOne := time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC)
	future := at(100 + 3600) // an hour past the observation time
	b := Bounds{Now: at(100), Tolerance: 5 * time.Minute}

	got, rejected := Compute(at(90), []DeliveredCommit{
		{SHA: "m1", Committed: at(40), Upstream: []UpstreamCommit{{SHA: "old", Time: yearOne}, {SHA: "u", Time: at(10)}}},
		{SHA: "m2", Committed: future, Upstream: []UpstreamCommit{{SHA: "u2", Time: at(20)}}},
		{SHA: "m3", Committed: future},
	}, b)
	want := []Sample{
		{Stage: StageReconcile, Commit: "m1", Start: at(40), End: at(90), Duration: 50 * time.Second},
		{Stage: StageExport, Commit: "m1", Upstream: "u", Start: at(10), End: at(40), Duration: 30 * time.Second},
		{Stage: StageE2E, Commit: "m1", Upstream: "u", Start: at(10), End: at(90), Duration: 80 * time.Second},
		// m2's own time is implausible: no reconcile or export sample, but its upstream commit's e2e stands.
		{Stage: StageE2E, Commit: "m2", Upstream: "u2", Start: at(20), End: at(90), Duration: 70 * time.Second},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Compute() =\n%+v\nwant\n%+v", got, want)
	}
	var fields []string
	for _, r := range rejected {
		if !errors.Is(r.Err, ErrImplausibleTime) {
			t.Errorf("rejection %+v does not wrap ErrImplausibleTime", r)
		}
		fields = append(fields, string(r.Field)+":"+r.Commit+"/"+r.Upstream+"@"+r.Time.Format(time.RFC3339))
	}
	wantFields := []string{
		"upstream:m1/old@0001-01-01T00:00:01Z",
		"committed:m2/@" + future.Format(time.RFC3339),
		"committed:m3/@" + future.Format(time.RFC3339),
	}
	if !reflect.DeepEqual(fields, wantFields) {
		t.Errorf("rejected %v, want %v", fields, wantFields)
	}
	for _, s := range got {
		if s.Duration > time.Hour {
			t.Errorf("sample %+v longer than an hour", s)
		}
	}
}

func TestComputeRejectsImplausibleApplyTime(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	applied := now.Add(48 * time.Hour) // Flux's Ready time from a cluster clock two days ahead
	got, rejected := Compute(applied, []DeliveredCommit{{SHA: "m", Committed: now.Add(-time.Minute)}}, Bounds{Now: now})
	if len(got) != 0 {
		t.Errorf("samples %+v, want none", got)
	}
	if len(rejected) != 1 || rejected[0].Field != FieldApplied || !rejected[0].Time.Equal(applied) {
		t.Errorf("rejected %+v, want the apply time", rejected)
	}
	if fs, fr := FetchStages(now, applied, []DeliveredCommit{{SHA: "m", Committed: now.Add(-time.Minute)}}, Bounds{Now: now}); fs != nil || fr != nil {
		t.Errorf("FetchStages = %+v, %+v; want nothing (Compute reports the apply time)", fs, fr)
	}
}

func TestFetchStagesRejectsImplausibleTimes(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	b := Bounds{Now: at(100)}

	got, rejected := FetchStages(time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), at(90), []DeliveredCommit{{SHA: "a", Committed: at(10)}}, b)
	if got != nil || len(rejected) != 1 || rejected[0].Field != FieldFetched {
		t.Errorf("implausible fetch time: samples %+v, rejected %+v; want none and the fetch time", got, rejected)
	}

	got, rejected = FetchStages(at(40), at(90), []DeliveredCommit{{SHA: "a", Committed: time.Time{}}, {SHA: "b", Committed: at(20)}}, b)
	want := []Sample{
		{Stage: StageApply, Commit: "a", Start: at(40), End: at(90), Duration: 50 * time.Second},
		{Stage: StageFetch, Commit: "b", Start: at(20), End: at(40), Duration: 20 * time.Second},
		{Stage: StageApply, Commit: "b", Start: at(40), End: at(90), Duration: 50 * time.Second},
	}
	if !reflect.DeepEqual(got, want) || rejected != nil {
		t.Errorf("FetchStages() =\n%+v, %+v\nwant\n%+v, none", got, rejected, want)
	}
}

func TestDurationCapped(t *testing.T) {
	applied := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	committed := Earliest // plausible, but over twenty years before the apply
	got, rejected := Compute(applied, []DeliveredCommit{{SHA: "m", Committed: committed}}, Bounds{})
	if len(rejected) != 0 || len(got) != 2 {
		t.Fatalf("got %+v, rejected %+v", got, rejected)
	}
	for _, s := range got {
		if s.Duration != MaxDuration || !s.Capped || s.Skewed {
			t.Errorf("sample %+v: want capped at %v", s, MaxDuration)
		}
	}
}
