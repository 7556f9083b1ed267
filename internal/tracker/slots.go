package tracker

import (
	"math/rand/v2"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
)

// busyRetry is about how soon an apply turned away by a full provider is tried again: applies that share a
// source wait on one lookup, so a slot frees within milliseconds once it answers.
const busyRetry = 200 * time.Millisecond

// providerSlots bounds the applies in flight per provider kind without ever making a worker wait: a full kind
// turns the apply away with a short requeue, and the worker serves objects of other kinds.
type providerSlots struct {
	size  int
	clock clock.PassiveClock
	mu    sync.Mutex
	used  map[string]int
}

func newProviderSlots(size int, c clock.PassiveClock) *providerSlots {
	return &providerSlots{size: size, clock: c, used: map[string]int{}}
}

// acquire takes a slot of kind, or returns a RateLimitError asking to retry shortly.
func (s *providerSlots) acquire(kind string) (release func(), err error) {
	if s.size <= 0 {
		return func() {}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used[kind] >= s.size {
		// Jittered, so a burst turned away together does not come back together.
		wait := busyRetry + rand.N(busyRetry)
		return nil, &commits.RateLimitError{Until: s.clock.Now().Add(wait), Cause: kind + " provider busy"}
	}
	s.used[kind]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.used[kind]--
			s.mu.Unlock()
		})
	}, nil
}
