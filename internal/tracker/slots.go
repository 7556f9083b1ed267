package tracker

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
)

// busyRetry is about how soon an apply turned away by a full provider is tried again: applies that share a
// source wait on one lookup, so a slot frees within milliseconds once it answers.
const busyRetry = 200 * time.Millisecond

// providerSlots bounds the applies in flight per provider kind. A few applies may wait for a slot of their kind;
// past those, a full kind turns the apply away with a short requeue, so a slow provider holds only its own
// waiters and the other workers serve objects of other kinds.
type providerSlots struct {
	size, waiters int
	clock         clock.PassiveClock
	mu            sync.Mutex
	kinds         map[string]*kindSlots
}

// kindSlots is one provider kind's slots (a semaphore) and how many applies wait for one.
type kindSlots struct {
	sem     chan struct{}
	waiting int
}

func newProviderSlots(size, waiters int, c clock.PassiveClock) *providerSlots {
	return &providerSlots{size: size, waiters: waiters, clock: c, kinds: map[string]*kindSlots{}}
}

// acquire takes a slot of kind, waiting for one while fewer than waiters do, or returns a busy RateLimitError
// asking to retry shortly.
func (s *providerSlots) acquire(ctx context.Context, kind string) (release func(), err error) {
	if s.size <= 0 {
		return func() {}, nil
	}
	s.mu.Lock()
	k := s.kinds[kind]
	if k == nil {
		k = &kindSlots{sem: make(chan struct{}, s.size)}
		s.kinds[kind] = k
	}
	s.mu.Unlock()
	var once sync.Once
	release = func() { once.Do(func() { <-k.sem }) }
	select {
	case k.sem <- struct{}{}:
		return release, nil
	default:
	}
	s.mu.Lock()
	if k.waiting >= s.waiters {
		s.mu.Unlock()
		return nil, s.busy(kind)
	}
	k.waiting++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		k.waiting--
		s.mu.Unlock()
	}()
	select {
	case k.sem <- struct{}{}:
		return release, nil
	case <-ctx.Done():
		return nil, s.busy(kind)
	}
}

// busy is the requeue of an apply turned away, jittered so that a burst turned away together does not come back
// together.
func (s *providerSlots) busy(kind string) error {
	wait := busyRetry + rand.N(busyRetry)
	return &commits.RateLimitError{Until: s.clock.Now().Add(wait), Cause: kind + " provider busy", Busy: true}
}
