// Package commits looks up commit metadata, first-parent commit ranges and files at a commit
// from a source repository, behind one small Provider interface.
package commits

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// MaxRangeCommits caps how many commits one range lookup returns; the rest are counted as truncated.
const MaxRangeCommits = 250

// ErrNotFound reports that a commit, range end or file does not exist in the repository.
var ErrNotFound = errors.New("not found")

// ErrTooLarge reports a file over the caller's byte limit.
var ErrTooLarge = errors.New("file too large")

// ErrAmbiguous reports a SHA prefix that begins more than one commit.
var ErrAmbiguous = errors.New("ambiguous")

// MinSHAPrefix is the fewest hex digits a SHA prefix may have.
const MinSHAPrefix = 7

// TimeSource selects which git timestamp is a commit's time.
type TimeSource string

const (
	// CommitterTime is when the commit was created on its branch (merge, rebase, squash).
	CommitterTime TimeSource = "committer"
	// AuthorTime is when the change was first written.
	AuthorTime TimeSource = "author"
)

// Commit is the metadata the tracker needs about one commit.
type Commit struct {
	SHA           string
	Message       string
	AuthorName    string
	AuthorEmail   string
	AuthorTime    time.Time
	CommitterTime time.Time
	// Parents lists parent SHAs, first parent first.
	Parents []string
}

// Time returns the commit's time as chosen by source; committer time is the default.
func (c Commit) Time(source TimeSource) time.Time {
	if source == AuthorTime {
		return c.AuthorTime
	}
	return c.CommitterTime
}

// RangeStatus says how the head of a range relates to its base.
type RangeStatus string

const (
	// Ahead means head descends from base: the range holds the delivered commits.
	Ahead RangeStatus = "ahead"
	// Identical means base and head are the same commit.
	Identical RangeStatus = "identical"
	// Behind means head is an ancestor of base (a rollback).
	Behind RangeStatus = "behind"
	// Diverged means head and base share history but neither contains the other (a force-push).
	Diverged RangeStatus = "diverged"
)

// Range is the first-parent history (base, head], oldest first.
type Range struct {
	Status RangeStatus
	// Commits is empty unless Status is Ahead.
	Commits []Commit
	// Truncated counts the commits left out because the range exceeded MaxRangeCommits; the newest are kept.
	Truncated int
}

// Provider answers commit questions for one kind of repository host.
type Provider interface {
	// Commit returns one commit by SHA.
	Commit(ctx context.Context, repo Repository, sha string) (Commit, error)
	// Range returns the first-parent commits in (base, head].
	Range(ctx context.Context, repo Repository, base, head string) (Range, error)
	// File returns the content of path at commit sha; ErrNotFound when absent; an error when over maxBytes.
	File(ctx context.Context, repo Repository, sha, path string, maxBytes int64) ([]byte, error)
}

// RefResolver is a Provider that can name the commit a branch, tag or SHA prefix points to now.
type RefResolver interface {
	// Resolve returns the full SHA of ref: a branch name, a tag name, a full SHA or a SHA prefix (at least 7 hex
	// digits); ErrNotFound when nothing matches, an error naming the ambiguity when a prefix matches several.
	Resolve(ctx context.Context, repo Repository, ref string) (string, error)
}

// PathHistory is a Provider that can name the commit that last changed a path.
type PathHistory interface {
	// LastChange returns the newest commit at or before rev (a full SHA) that changed path (a file or a
	// directory, relative to the repository root); ErrNotFound when rev is unknown or no commit changed path.
	LastChange(ctx context.Context, repo Repository, rev, path string) (Commit, error)
}

// IsSHAPrefix reports whether s, in either case, can abbreviate an object name: MinSHAPrefix to 64 hex digits.
func IsSHAPrefix(s string) bool {
	if len(s) < MinSHAPrefix || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// CallOutcome classifies one provider lookup for the calls counter.
type CallOutcome string

const (
	// CallCacheHit is a lookup answered from memory without an HTTP call.
	CallCacheHit CallOutcome = "cache_hit"
	// CallNotModified is an HTTP call answered 304 Not Modified.
	CallNotModified CallOutcome = "not_modified"
	// CallSuccess is an HTTP call that got a definitive answer.
	CallSuccess CallOutcome = "success"
	// CallError is an HTTP call that failed: a transport error, a server error, a rate limit or an auth failure.
	CallError CallOutcome = "error"
)

// RetryPolicy bounds the retries of one provider request.
type RetryPolicy struct {
	// MaxRetries is the number of retries after the first attempt; negative disables retries.
	MaxRetries int
	// WaitMin and WaitMax bound the exponential backoff between attempts.
	WaitMin, WaitMax time.Duration
}

// WithDefaults fills the unset fields of p from def and turns a negative MaxRetries into none.
func (p RetryPolicy) WithDefaults(def RetryPolicy) RetryPolicy {
	switch {
	case p.MaxRetries == 0:
		p.MaxRetries = def.MaxRetries
	case p.MaxRetries < 0:
		p.MaxRetries = 0
	}
	if p.WaitMin <= 0 {
		p.WaitMin = def.WaitMin
	}
	if p.WaitMax <= 0 {
		p.WaitMax = def.WaitMax
	}
	return p
}

// ErrBadResponse reports an answer that could not be used: empty, null, truncated, or missing or wrongly typed
// fields. It is counted, never trusted, and retried later.
var ErrBadResponse = errors.New("bad response")

// RateLimitError reports that a provider may not be called before Until; the caller requeues instead of waiting.
type RateLimitError struct {
	// Until is the earliest time the next request may leave.
	Until time.Time
	// Cause says which limit answered (primary, secondary, Retry-After).
	Cause string
	// Busy marks the tracker's own bound on lookups in flight, not an answer of the provider.
	Busy bool
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("rate limited (%s) until %s", e.Cause, e.Until.UTC().Format(time.RFC3339))
}

// RetryAfter returns how long from now the caller must wait before retrying err, and whether err is a rate limit.
func RetryAfter(err error, now time.Time) (time.Duration, bool) {
	var rl *RateLimitError
	if !errors.As(err, &rl) {
		return 0, false
	}
	return max(rl.Until.Sub(now), 0), true
}
