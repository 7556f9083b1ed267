// Package bytecache is a least-recently-used cache bounded by the estimated bytes of its entries rather
// than by their count, so a few large answers cannot hold more memory than many small ones would.
package bytecache

import (
	"container/list"
	"sync"
)

// Cache holds values up to a byte budget, evicting the least recently used first. An entry larger than
// the whole budget is not kept. It is safe for concurrent use.
type Cache[K comparable, V any] struct {
	mu      sync.Mutex
	max     int64
	used    int64
	order   *list.List // front: most recently used
	entries map[K]*list.Element
}

type item[K comparable, V any] struct {
	key   K
	value V
	size  int64
}

// New returns a cache holding at most maxBytes; maxBytes <= 0 keeps nothing.
func New[K comparable, V any](maxBytes int64) *Cache[K, V] {
	return &Cache[K, V]{max: maxBytes, order: list.New(), entries: map[K]*list.Element{}}
}

// Get returns the value under key and marks it used.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*item[K, V]).value, true
}

// Add stores value under key as size bytes, evicting least recently used entries to stay in budget.
// It reports whether the value was kept (false when size alone is over the budget).
func (c *Cache[K, V]) Add(key K, value V, size int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.remove(el)
	}
	if size < 0 || size > c.max {
		return false
	}
	for c.used+size > c.max {
		c.remove(c.order.Back())
	}
	c.entries[key] = c.order.PushFront(&item[K, V]{key: key, value: value, size: size})
	c.used += size
	return true
}

func (c *Cache[K, V]) remove(el *list.Element) {
	it := el.Value.(*item[K, V])
	c.order.Remove(el)
	delete(c.entries, it.key)
	c.used -= it.size
}

// Len returns the number of entries held.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Bytes returns the estimated bytes held.
func (c *Cache[K, V]) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}
