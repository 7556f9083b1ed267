// Package latency turns the times of one Flux apply and the commits it delivered into per-commit stage durations.
// It is pure: no clocks, no I/O; negative durations (skewed clocks) are clamped to zero and flagged.
package latency

import "time"

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
	// Start and End are the stage's true endpoints; Duration is End-Start, clamped at zero.
	Start, End time.Time
	Duration   time.Duration
	// Skewed reports that End was before Start and Duration was clamped to zero.
	Skewed bool
}

// Compute returns the samples for one apply at time applied that delivered commits, in commit order.
// Each manifests commit yields one reconcile sample; each upstream commit yields one export and one e2e
// sample, listed once even when several manifests commits name it; a manifests commit with no upstream
// commits yields one e2e sample measured from its own commit time.
func Compute(applied time.Time, commits []DeliveredCommit) []Sample {
	samples := make([]Sample, 0, 2*len(commits))
	seenUpstream := make(map[string]bool)
	for _, c := range commits {
		samples = append(samples, newSample(StageReconcile, c.SHA, "", c.Committed, applied))
		if len(c.Upstream) == 0 {
			samples = append(samples, newSample(StageE2E, c.SHA, "", c.Committed, applied))
			continue
		}
		for _, u := range c.Upstream {
			if seenUpstream[u.SHA] {
				continue
			}
			seenUpstream[u.SHA] = true
			samples = append(samples,
				newSample(StageExport, c.SHA, u.SHA, u.Time, c.Committed),
				newSample(StageE2E, c.SHA, u.SHA, u.Time, applied))
		}
	}
	return samples
}

// FetchStages returns, per delivered commit, its fetch sample (committed → fetched) and apply sample
// (fetched → applied); none when the fetch time is unknown.
func FetchStages(fetched, applied time.Time, commits []DeliveredCommit) []Sample {
	if fetched.IsZero() {
		return nil
	}
	samples := make([]Sample, 0, 2*len(commits))
	for _, c := range commits {
		samples = append(samples,
			newSample(StageFetch, c.SHA, "", c.Committed, fetched),
			newSample(StageApply, c.SHA, "", fetched, applied))
	}
	return samples
}

func newSample(stage Stage, commit, upstream string, start, end time.Time) Sample {
	s := Sample{Stage: stage, Commit: commit, Upstream: upstream, Start: start, End: end, Duration: end.Sub(start)}
	if s.Duration < 0 {
		s.Duration, s.Skewed = 0, true
	}
	return s
}
