package bytecache

import "testing"

func TestEvictsByBytes(t *testing.T) {
	c := New[string, int](100)
	c.Add("a", 1, 40)
	c.Add("b", 2, 40)
	if _, ok := c.Get("a"); !ok { // a is now the most recently used
		t.Fatal("a missing")
	}
	c.Add("c", 3, 40) // over budget: evicts b, the least recently used
	if _, ok := c.Get("b"); ok {
		t.Error("b kept past the budget")
	}
	for k, want := range map[string]int{"a": 1, "c": 3} {
		if v, ok := c.Get(k); !ok || v != want {
			t.Errorf("Get(%s) = %d, %v; want %d", k, v, ok, want)
		}
	}
	if c.Bytes() != 80 || c.Len() != 2 {
		t.Errorf("holds %d bytes in %d entries, want 80 in 2", c.Bytes(), c.Len())
	}
}

func TestOversizedNotKept(t *testing.T) {
	c := New[string, int](100)
	c.Add("small", 1, 10)
	if c.Add("huge", 2, 101) {
		t.Error("an entry over the whole budget was kept")
	}
	if _, ok := c.Get("small"); !ok {
		t.Error("an oversized entry evicted what was there")
	}
	if c.Add("neg", 3, -1) {
		t.Error("a negative size was kept")
	}
}

func TestReplaceUpdatesSize(t *testing.T) {
	c := New[string, int](100)
	c.Add("a", 1, 90)
	c.Add("a", 2, 10)
	c.Add("b", 3, 90)
	if v, ok := c.Get("a"); !ok || v != 2 {
		t.Errorf("Get(a) = %d, %v; want 2", v, ok)
	}
	if c.Bytes() != 100 {
		t.Errorf("holds %d bytes, want 100", c.Bytes())
	}
}

func TestZeroBudgetKeepsNothing(t *testing.T) {
	c := New[string, int](0)
	c.Add("a", 1, 1)
	if c.Len() != 0 {
		t.Error("a zero budget kept an entry")
	}
}
