package git

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
)

// spec is one commit of a test DAG: parent indexes (first parent first) and a committer time offset in
// seconds, which may run backwards (clock skew) or repeat (ties).
type spec struct {
	parents []int
	when    int64
}

// dag stores the commits of specs in go-git memory storage and returns their hashes and a loader that
// counts loads.
func dag(t testing.TB, specs []spec) ([]plumbing.Hash, loadFunc, *int) {
	t.Helper()
	s := memory.NewStorage()
	hashes := make([]plumbing.Hash, len(specs))
	epoch := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, sp := range specs {
		c := &object.Commit{
			Author:    object.Signature{Name: "a", Email: "a@example.com", When: epoch.Add(time.Duration(sp.when) * time.Second)},
			Committer: object.Signature{Name: "c", Email: "c@example.com", When: epoch.Add(time.Duration(sp.when) * time.Second)},
			Message:   fmt.Sprintf("c%d\n", i),
			TreeHash:  plumbing.ZeroHash,
		}
		for _, p := range sp.parents {
			c.ParentHashes = append(c.ParentHashes, hashes[p])
		}
		obj := s.NewEncodedObject()
		if err := c.Encode(obj); err != nil {
			t.Fatal(err)
		}
		h, err := s.SetEncodedObject(obj)
		if err != nil {
			t.Fatal(err)
		}
		hashes[i] = h
	}
	loads := 0
	return hashes, func(h plumbing.Hash) (*node, error) {
		loads++
		c, err := object.GetCommit(s, h)
		if err != nil {
			return nil, err
		}
		return toNode(c), nil
	}, &loads
}

// reference answers a range by brute force over complete ancestor sets.
func reference(specs []spec, base, head int) (commits.RangeStatus, []int) {
	if base == head {
		return commits.Identical, nil
	}
	ancestors := func(x int) map[int]bool { // ancestors of x, x included
		seen := map[int]bool{}
		stack := []int{x}
		for len(stack) > 0 {
			c := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[c] {
				continue
			}
			seen[c] = true
			stack = append(stack, specs[c].parents...)
		}
		return seen
	}
	ofBase, ofHead := ancestors(base), ancestors(head)
	switch {
	case ofHead[base]:
	case ofBase[head]:
		return commits.Behind, nil
	default:
		return commits.Diverged, nil
	}
	var chain []int
	for c := head; !ofBase[c]; {
		chain = append(chain, c)
		if len(specs[c].parents) == 0 {
			break
		}
		c = specs[c].parents[0]
	}
	slices.Reverse(chain)
	return commits.Ahead, chain
}

func checkRange(t *testing.T, specs []spec, base, head int) {
	t.Helper()
	hashes, load, _ := dag(t, specs)
	got, err := rangeOf(context.Background(), load, hashes[base], hashes[head])
	if err != nil {
		t.Fatal(err)
	}
	status, chain := reference(specs, base, head)
	var want []string
	for _, c := range chain {
		want = append(want, hashes[c].String())
	}
	var gotSHAs []string
	for _, c := range got.Commits {
		gotSHAs = append(gotSHAs, c.SHA)
	}
	kept := max(0, len(want)-commits.MaxRangeCommits)
	if got.Status != status || !slices.Equal(gotSHAs, want[kept:]) || got.Truncated != kept {
		t.Fatalf("range %d..%d = %s %v (truncated %d), want %s %v (truncated %d)",
			base, head, got.Status, index(hashes, gotSHAs), got.Truncated, status, chain[kept:], kept)
	}
}

func index(hashes []plumbing.Hash, shas []string) []int {
	out := make([]int, len(shas))
	for i, s := range shas {
		out[i] = slices.Index(hashes, plumbing.NewHash(s))
	}
	return out
}

// linear returns n commits, each the parent of the next, one second apart.
func linear(n int) []spec {
	specs := make([]spec, n)
	for i := range specs {
		specs[i].when = int64(i)
		if i > 0 {
			specs[i].parents = []int{i - 1}
		}
	}
	return specs
}

func TestRangeOf(t *testing.T) {
	// 0 ─ 1 ─ 3(merge 1,2) ─ 4 ─ 6(merge 4,5)
	//  └─ 2 ─┘           └─ 5 ┘
	merges := []spec{
		{when: 0},
		{parents: []int{0}, when: 10},
		{parents: []int{0}, when: 20},
		{parents: []int{1, 2}, when: 30},
		{parents: []int{3}, when: 40},
		{parents: []int{3}, when: 50},
		{parents: []int{4, 5}, when: 60},
	}
	// 0 ─ 1 ─ 2 (old head, force-pushed away) and 1 ─ 3 (new head); 4 an unrelated root.
	diverged := []spec{{when: 0}, {parents: []int{0}, when: 1}, {parents: []int{1}, when: 2}, {parents: []int{1}, when: 3}, {when: 4}}
	// Every commit at the same second: the walk order cannot lean on time.
	tied := []spec{
		{when: 0}, {parents: []int{0}}, {parents: []int{0}}, {parents: []int{1, 2}}, {parents: []int{3}},
		{parents: []int{2}}, {parents: []int{4, 5}},
	}
	// Parents younger than children (skewed clocks).
	skewed := []spec{
		{when: 100}, {parents: []int{0}, when: 50}, {parents: []int{0}, when: 200}, {parents: []int{1, 2}, when: 10},
		{parents: []int{3}, when: 300}, {parents: []int{2}, when: 0}, {parents: []int{4, 5}, when: 5},
	}
	tests := []struct {
		name       string
		specs      []spec
		base, head int
	}{
		{"linear ahead", linear(5), 1, 4},
		{"linear identical", linear(3), 2, 2},
		{"linear behind", linear(5), 4, 1},
		{"from the root", linear(5), 0, 4},
		{"merges leave side branches out", merges, 0, 6},
		{"base before a merge", merges, 1, 6},
		{"base on a merged side branch", merges, 2, 6},
		{"base on the second side branch", merges, 5, 6},
		{"side branch tip is behind the merge", merges, 6, 2},
		{"sibling branches diverge", merges, 4, 5},
		{"force-push diverges", diverged, 2, 3},
		{"rollback after force-push diverges", diverged, 3, 2},
		{"unrelated histories diverge", diverged, 4, 3},
		{"tied times, side-branch base", tied, 2, 6},
		{"tied times, side-branch base 5", tied, 5, 6},
		{"tied times, behind", tied, 6, 1},
		{"skewed times, side-branch base", skewed, 2, 6},
		{"skewed times, ahead", skewed, 0, 6},
		{"skewed times, side-branch base 5", skewed, 5, 6},
		{"skewed times, behind", skewed, 6, 0},
		{"truncated", linear(commits.MaxRangeCommits + 40), 3, commits.MaxRangeCommits + 39},
		{"exactly the cap", linear(commits.MaxRangeCommits + 1), 0, commits.MaxRangeCommits},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkRange(t, tt.specs, tt.base, tt.head) })
	}
}

// TestRangeOfCostIsLocal checks that ranges near the tip of a long history read only the commits
// between the two, not the whole history, whatever their relation.
func TestRangeOfCostIsLocal(t *testing.T) {
	specs := linear(5000)
	// A force-push: 4990 ─ 5000' beside 4990 ─ … ─ 4999.
	specs = append(specs, spec{parents: []int{4990}, when: 5000})
	hashes, load, loads := dag(t, specs)
	for _, c := range []struct{ base, head int }{{4750, 4999}, {4999, 4750}, {4999, 5000}} {
		*loads = 0
		if _, err := rangeOf(context.Background(), load, hashes[c.base], hashes[c.head]); err != nil {
			t.Fatal(err)
		}
		if *loads > 600 {
			t.Errorf("range %d..%d loaded %d commits", c.base, c.head, *loads)
		}
	}
}

// TestRangeOfMissingCommits walks histories with commits missing, as past a shallow boundary: an
// answer that needs a missing commit is an error, one that does not is exact.
func TestRangeOfMissingCommits(t *testing.T) {
	// 0 ─ 1 ─ 2 ─ 3 on main, 0 ─ 4 on a side branch.
	specs := append(linear(4), spec{parents: []int{0}, when: 10})
	for _, tc := range []struct {
		name       string
		missing    []int
		base, head int
		want       commits.RangeStatus // "" wants an error
	}{
		{name: "behind, root missing below the common ancestor", missing: []int{0}, base: 3, head: 1, want: commits.Behind},
		{name: "ahead, history below base missing", missing: []int{0, 1}, base: 2, head: 3, want: commits.Ahead},
		{name: "diverged needs the missing merge base", missing: []int{0}, base: 4, head: 3},
		{name: "ahead needs a missing commit in between", missing: []int{2}, base: 1, head: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := checkRangeMissing(t, specs, tc.missing, tc.base, tc.head)
			switch {
			case tc.want == "" && !errors.Is(err, plumbing.ErrObjectNotFound):
				t.Fatalf("got %+v, %v; want an error for the missing history", got, err)
			case tc.want != "" && (err != nil || got != tc.want):
				t.Fatalf("got %s, %v; want %s", got, err, tc.want)
			}
		})
	}
}

// checkRangeMissing runs rangeOf on specs with the missing commits absent and fails unless it errs
// with plumbing.ErrObjectNotFound or answers as the reference does on the complete history.
func checkRangeMissing(t *testing.T, specs []spec, missing []int, base, head int) (commits.RangeStatus, error) {
	t.Helper()
	hashes, load, _ := dag(t, specs)
	gone := map[plumbing.Hash]bool{}
	for _, m := range missing {
		gone[hashes[m]] = true
	}
	partial := func(h plumbing.Hash) (*node, error) {
		if gone[h] {
			return nil, plumbing.ErrObjectNotFound
		}
		return load(h)
	}
	got, err := rangeOf(context.Background(), partial, hashes[base], hashes[head])
	if err != nil {
		if !errors.Is(err, plumbing.ErrObjectNotFound) {
			t.Fatalf("range %d..%d: %v", base, head, err)
		}
		return "", err
	}
	status, chain := reference(specs, base, head)
	var gotSHAs, want []string
	for _, c := range got.Commits {
		gotSHAs = append(gotSHAs, c.SHA)
	}
	for _, c := range chain {
		want = append(want, hashes[c].String())
	}
	kept := max(0, len(want)-commits.MaxRangeCommits)
	if got.Status != status || !slices.Equal(gotSHAs, want[kept:]) {
		t.Fatalf("range %d..%d with %v missing = %s %v, want %s %v: a wrong answer, not an error",
			base, head, missing, got.Status, index(hashes, gotSHAs), status, chain)
	}
	return got.Status, nil
}

// FuzzRangeOfMissingCommits removes random commits (never base or head) from random DAGs: rangeOf must
// answer exactly or fail, never answer wrongly.
func FuzzRangeOfMissingCommits(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, uint64(0b1010))
	f.Add([]byte{20, 3, 7, 200, 13, 1, 99, 0, 4, 4, 4, 4, 8, 250, 17, 33, 2, 9}, uint64(1))
	f.Add([]byte{40, 255, 255, 255, 0, 0, 0, 128, 64, 32, 16, 8, 4, 2, 1, 0, 77, 1, 2, 3, 4, 5, 6, 7, 8}, uint64(0xf0f0))
	f.Fuzz(func(t *testing.T, data []byte, mask uint64) {
		specs, base, head, ok := randomDAG(data)
		if !ok {
			return
		}
		var missing []int
		for i := range specs {
			if i != base && i != head && i < 64 && mask&(1<<i) != 0 {
				missing = append(missing, i)
			}
		}
		_, _ = checkRangeMissing(t, specs, missing, base, head) // an error is a valid answer; a wrong one fails
	})
}

// FuzzRangeOf compares rangeOf with the brute-force reference on random DAGs with random (skewed,
// tied) times, several roots and octopus merges.
func FuzzRangeOf(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{20, 3, 7, 200, 13, 1, 99, 0, 4, 4, 4, 4, 8, 250, 17, 33, 2, 9})
	f.Add([]byte{40, 255, 255, 255, 0, 0, 0, 128, 64, 32, 16, 8, 4, 2, 1, 0, 77, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, data []byte) {
		if specs, base, head, ok := randomDAG(data); ok {
			checkRange(t, specs, base, head)
		}
	})
}

// randomDAG builds a DAG of up to 41 commits from data, with a base and a head among them.
func randomDAG(data []byte) (specs []spec, base, head int, ok bool) {
	if len(data) < 4 {
		return nil, 0, 0, false
	}
	next := func() int {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return int(b)
	}
	n := 2 + next()%40
	base, head = next()%n, next()%n
	specs = make([]spec, n)
	for i := 1; i < n; i++ {
		b := next()
		nparents := []int{1, 1, 1, 2, 2, 3, 0, 1}[b%8] // mostly chains, some merges, few roots
		seen := map[int]bool{}
		for range nparents {
			p := next() % i
			if i > 1 && next()%4 != 0 {
				p = i - 1 - p%min(i, 3) // prefer recent parents: longer first-parent chains
			}
			if !seen[p] {
				seen[p] = true
				specs[i].parents = append(specs[i].parents, p)
			}
		}
		specs[i].when = int64(i*2 + (b>>3)%7 - 3) // roughly increasing, with skew and ties
	}
	return specs, base, head, true
}
