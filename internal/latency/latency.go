// Package latency turns the times of one Flux apply and the commits it delivered into per-commit stage durations.
// It is pure: no clocks, no I/O. Times outside plausible bounds are rejected, never turned into samples;
// negative durations (skewed clocks) are clamped to zero and flagged, and durations are capped at MaxDuration.
package latency

import (
	"errors"
	"fmt"
	"time"
)

// Stage names one measured duration.
type Stage string

const (
	// StageE2E is upstream commit (or manifests commit when there is none) → applied.
	StageE2E Stage = "e2e"
	// StageExport is upstream commit → manifests commit.
	StageExport Stage = "export"
	// StageReconcile is manifests commit → applied.
	StageReconcile Stage = "reconcile"
	// StageFetch is manifests commit → fetched by the Flux source.
	StageFetch Stage = "fetch"
	// StageApply is fetched by the Flux source → applied.
	StageApply Stage = "apply"
)

// Stages are every Stage, in the order a commit passes them.
var Stages = []Stage{StageExport, StageFetch, StageApply, StageReconcile, StageE2E}

// Plausibility bounds.
var (
	// Earliest is the earliest plausible commit, fetch or apply time; git itself is from 2005.
	Earliest = time.Date(2005, 1, 1, 0, 0, 0, 0, time.UTC)
	// ErrImplausibleTime is what Plausible wraps for a time outside the bounds.
	ErrImplausibleTime = errors.New("implausible time")
)

const (
	// DefaultClockSkewTolerance is how far past the reference time a time may be when Bounds sets none.
	DefaultClockSkewTolerance = 5 * time.Minute
	// MaxDuration caps one sample; a longer one is recorded as MaxDuration and flagged Capped.
	MaxDuration = 366 * 24 * time.Hour
)

// Plausible returns nil when t is on or after Earliest and no later than now plus tolerance (a negative
// tolerance counts as none), else an error wrapping ErrImplausibleTime that says which bound t broke.
func Plausible(t, now time.Time, tolerance time.Duration) error {
	tolerance = max(tolerance, 0)
	switch {
	case t.Before(Earliest):
		return fmt.Errorf("%w: %s is before %s", ErrImplausibleTime, formatTime(t), Earliest.Format(time.RFC3339))
	case t.After(now.Add(tolerance)):
		return fmt.Errorf("%w: %s is more than %s after %s", ErrImplausibleTime, formatTime(t), tolerance, formatTime(now))
	}
	return nil
}

// formatTime formats t for an error message; years outside 0..9999 still read as a year.
func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

// Bounds are the plausibility bounds of one apply's times.
type Bounds struct {
	// Now is when the tracker observed the apply; no time may be later than Now plus Tolerance. Zero means the
	// apply time.
	Now time.Time
	// Tolerance is the clock skew allowed between the tracker, Flux and the commit hosts; zero means
	// DefaultClockSkewTolerance.
	Tolerance time.Duration
}

// check returns Plausible(t, ...) against b, with now standing in for a zero b.Now.
func (b Bounds) check(t, now time.Time) error {
	if !b.Now.IsZero() {
		now = b.Now
	}
	tol := b.Tolerance
	if tol == 0 {
		tol = DefaultClockSkewTolerance
	}
	return Plausible(t, now, tol)
}

// Field names which time of an apply was rejected.
type Field string

const (
	// FieldApplied is the apply time.
	FieldApplied Field = "applied"
	// FieldCommitted is a manifests commit's time.
	FieldCommitted Field = "committed"
	// FieldUpstream is an upstream commit's time.
	FieldUpstream Field = "upstream"
	// FieldFetched is the source's fetch time.
	FieldFetched Field = "fetched"
)

// Rejection is one implausible time that was dropped instead of turned into samples.
type Rejection struct {
	Field Field
	// Commit and Upstream name the commit whose time it is; empty for the apply and fetch times.
	Commit, Upstream string
	Time             time.Time
	// Err wraps ErrImplausibleTime and says which bound was broken.
	Err error
}

// UpstreamCommit is a commit in an upstream repository that an exporter rendered into a manifests commit.
type UpstreamCommit struct {
	SHA  string
	Time time.Time
}

// DeliveredCommit is one manifests commit an apply delivered, with the upstream commits it exported.
type DeliveredCommit struct {
	SHA       string
	Committed time.Time
	Upstream  []UpstreamCommit
}

// Sample is one duration to record.
type Sample struct {
	Stage Stage
	// Commit is the manifests commit the sample belongs to.
	Commit string
	// Upstream is the upstream commit for export and e2e samples that have one.
	Upstream string
	// Start and End are the stage's true endpoints; Duration is End-Start, clamped to [0, MaxDuration].
	Start, End time.Time
	Duration   time.Duration
	// Skewed reports that End was before Start and Duration was clamped to zero.
	Skewed bool
	// Capped reports that End-Start exceeded MaxDuration and Duration was capped to it.
	Capped bool
}

// Compute returns the samples for one apply at time applied that delivered commits, in commit order, and the
// implausible times it dropped. Each manifests commit yields one reconcile sample; each upstream commit yields
// one export and one e2e sample, listed once even when several manifests commits name it; a manifests commit
// with no upstream commits yields one e2e sample measured from its own commit time. A sample whose start or end
// is implausible (see Bounds) is not produced; each implausible time is reported once.
func Compute(applied time.Time, commits []DeliveredCommit, b Bounds) ([]Sample, []Rejection) {
	if err := b.check(applied, applied); err != nil {
		return []Sample{}, []Rejection{{Field: FieldApplied, Time: applied, Err: err}}
	}
	samples := make([]Sample, 0, 2*len(commits))
	var rejected []Rejection
	seenUpstream := make(map[string]bool)
	for _, c := range commits {
		committedOK := true
		if err := b.check(c.Committed, applied); err != nil {
			committedOK = false
			rejected = append(rejected, Rejection{Field: FieldCommitted, Commit: c.SHA, Time: c.Committed, Err: err})
		}
		if committedOK {
			samples = append(samples, newSample(StageReconcile, c.SHA, "", c.Committed, applied))
		}
		if len(c.Upstream) == 0 {
			if committedOK {
				samples = append(samples, newSample(StageE2E, c.SHA, "", c.Committed, applied))
			}
			continue
		}
		for _, u := range c.Upstream {
			if seenUpstream[u.SHA] {
				continue
			}
			seenUpstream[u.SHA] = true
			if err := b.check(u.Time, applied); err != nil {
				rejected = append(rejected, Rejection{Field: FieldUpstream, Commit: c.SHA, Upstream: u.SHA, Time: u.Time, Err: err})
				continue
			}
			if committedOK {
				samples = append(samples, newSample(StageExport, c.SHA, u.SHA, u.Time, c.Committed))
			}
			samples = append(samples, newSample(StageE2E, c.SHA, u.SHA, u.Time, applied))
		}
	}
	return samples, rejected
}

// FetchStages returns, per delivered commit, its fetch sample (committed → fetched) and apply sample
// (fetched → applied); no samples when the fetch time is unknown, or implausible, which it then reports. A
// commit whose time is implausible gets no fetch sample; Compute reports that time, and an implausible apply
// time (then no samples at all), so FetchStages does not report them again.
func FetchStages(fetched, applied time.Time, commits []DeliveredCommit, b Bounds) ([]Sample, []Rejection) {
	if fetched.IsZero() || b.check(applied, applied) != nil {
		return nil, nil
	}
	if err := b.check(fetched, applied); err != nil {
		return nil, []Rejection{{Field: FieldFetched, Time: fetched, Err: err}}
	}
	samples := make([]Sample, 0, 2*len(commits))
	for _, c := range commits {
		if b.check(c.Committed, applied) == nil {
			samples = append(samples, newSample(StageFetch, c.SHA, "", c.Committed, fetched))
		}
		samples = append(samples, newSample(StageApply, c.SHA, "", fetched, applied))
	}
	return samples, nil
}

func newSample(stage Stage, commit, upstream string, start, end time.Time) Sample {
	s := Sample{Stage: stage, Commit: commit, Upstream: upstream, Start: start, End: end, Duration: end.Sub(start)}
	switch {
	case end.Before(start):
		s.Duration, s.Skewed = 0, true
	case s.Duration > MaxDuration: // time.Time.Sub saturates rather than overflows, so this holds for any pair
		s.Duration, s.Capped = MaxDuration, true
	}
	return s
}

// Human renders a latency for people, to the second: 1m30s.
func Human(d time.Duration) string { return d.Round(time.Second).String() }
