package github

import (
	"fmt"
	"slices"
	"testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
)

// dag is a generated history: commit i's parents are earlier commits, so index order is chronological.
type dag struct {
	commits []commits.Commit
	idx     map[string]int
	head    int
}

func sha(i int) string { return fmt.Sprintf("%040x", i+1) }

// genDAG turns ops into a history: 0 and 1 commit on main, 2 commits on a side branch forked from main,
// 3 merges the side branch into main.
func genDAG(ops []byte) dag {
	d := dag{idx: map[string]int{}}
	add := func(parents ...int) int {
		c := commits.Commit{SHA: sha(len(d.commits))}
		d.idx[c.SHA] = len(d.commits)
		for _, p := range parents {
			c.Parents = append(c.Parents, sha(p))
		}
		d.commits = append(d.commits, c)
		return len(d.commits) - 1
	}
	mainTip, sideTip := add(), -1
	for _, op := range ops {
		switch op % 4 {
		case 0, 1:
			mainTip = add(mainTip)
		case 2:
			if sideTip < 0 {
				sideTip = add(mainTip)
			} else {
				sideTip = add(sideTip)
			}
		case 3:
			if sideTip >= 0 {
				mainTip, sideTip = add(mainTip, sideTip), -1
			}
		}
	}
	d.head = mainTip
	return d
}

func (d dag) index(s string) int { return d.idx[s] }

func (d dag) ancestors(i int) map[int]bool {
	seen := map[int]bool{}
	stack := []int{i}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[c] {
			continue
		}
		seen[c] = true
		for _, p := range d.commits[c].Parents {
			stack = append(stack, d.index(p))
		}
	}
	return seen
}

// FuzzWalkPages checks the range assembled from compare pages against a direct first-parent walk.
func FuzzWalkPages(f *testing.F) {
	f.Add([]byte{0, 1, 2, 2, 3, 0}, uint8(0), uint8(2))
	f.Add(slices.Repeat([]byte{0}, 300), uint8(0), uint8(100))
	f.Add(slices.Repeat([]byte{2, 3}, 400), uint8(3), uint8(100))
	f.Add(slices.Repeat([]byte{1, 2, 2, 3}, 200), uint8(7), uint8(30))
	f.Fuzz(walkPagesProperty)
}

func walkPagesProperty(t *testing.T, ops []byte, baseSeed, pageSeed uint8) {
	if len(ops) > 800 {
		return
	}
	d := genDAG(ops)
	base := int(baseSeed) % len(d.commits)
	ancHead, ancBase := d.ancestors(d.head), d.ancestors(base)
	if !ancHead[base] || base == d.head {
		return // not an ahead range
	}
	// GitHub lists the range oldest first; index order is chronological here.
	var listed []commits.Commit
	for i, c := range d.commits {
		if ancHead[i] && !ancBase[i] {
			listed = append(listed, c)
		}
	}
	perPage := 1 + int(pageSeed)%100
	lastPage := (len(listed) + perPage - 1) / perPage
	pageOf := func(n int) []commits.Commit {
		return listed[min((n-1)*perPage, len(listed)):min(n*perPage, len(listed))]
	}
	got, err := walkPages(sha(base), sha(d.head), len(listed), lastPage, pageOf(1), func(n int) ([]commits.Commit, error) {
		if n < 2 || n > lastPage {
			t.Fatalf("asked for page %d of %d", n, lastPage)
		}
		return pageOf(n), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The reference: first parents from head while inside the range, newest first.
	var want []string
	for i := d.head; ancHead[i] && !ancBase[i]; {
		want = append(want, sha(i))
		if len(d.commits[i].Parents) == 0 {
			break
		}
		i = d.index(d.commits[i].Parents[0])
	}
	kept := min(len(want), commits.MaxRangeCommits)
	slices.Reverse(want)
	if g := shas(got.Commits); !slices.Equal(g, want[len(want)-kept:]) {
		t.Fatalf("commits %v\nwant %v", g, want[len(want)-kept:])
	}
	if got.Status != commits.Ahead || got.Truncated < len(want)-kept || got.Truncated > len(listed)-kept {
		t.Fatalf("status %s truncated %d, want between %d and %d", got.Status, got.Truncated, len(want)-kept, len(listed)-kept)
	}
}

func shas(cs []commits.Commit) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.SHA
	}
	return out
}

func TestAssemble(t *testing.T) {
	c := func(i int, parents ...int) commits.Commit {
		out := commits.Commit{SHA: sha(i)}
		for _, p := range parents {
			out.Parents = append(out.Parents, sha(p))
		}
		return out
	}
	fetched := func(cs ...commits.Commit) map[string]commits.Commit {
		m := map[string]commits.Commit{}
		for _, x := range cs {
			m[x.SHA] = x
		}
		return m
	}
	tests := []struct {
		name       string
		fetched    map[string]commits.Commit
		base, head int
		total      int
		all        bool
		want       []string
		truncated  int
		more       bool
	}{
		{"linear", fetched(c(1, 0), c(2, 1)), 0, 2, 2, true, []string{sha(1), sha(2)}, 0, false},
		{"merge: side commits excluded", fetched(c(1, 0), c(2, 0), c(3, 1, 2)), 0, 3, 3, true, []string{sha(1), sha(3)}, 0, false},
		{"head on an unfetched page", fetched(c(1, 0)), 0, 2, 150, false, nil, 0, true},
		{"chain leaves the fetched pages", fetched(c(101, 100), c(102, 101)), 0, 102, 102, false, nil, 0, true},
		{"chain leaves the range once all pages are in", fetched(c(2, 1), c(3, 2)), 0, 3, 2, true, []string{sha(2), sha(3)}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, more := assemble(tt.fetched, sha(tt.base), sha(tt.head), tt.total, tt.all)
			if more != tt.more || !slices.Equal(shas(got.Commits), tt.want) || got.Truncated != tt.truncated {
				t.Errorf("got %v truncated %d more %v; want %v truncated %d more %v", shas(got.Commits), got.Truncated, more, tt.want, tt.truncated, tt.more)
			}
		})
	}
}
