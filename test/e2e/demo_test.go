package e2e

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/test/demo"
)

// TestDemo runs the demo as `make demo DEMO_COMMITS=4` does, faster: it must print a row per commit, each
// recorded on every object, and say the commit status posted on each, success on every object last.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, progress bytes.Buffer
	err := demo.Run(ctx, demo.Options{Commits: 4, Interval: 2 * time.Second, Every: 3 * time.Second, Out: &out, Progress: &progress})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, progress.String())
	}
	table, queries, _ := strings.Cut(out.String(), "\n$ flux-commit-tracker where ")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "COMMIT") {
		t.Fatalf("table = %q, want a header and 4 rows; progress:\n%s", out.String(), progress.String())
	}
	for _, l := range lines[1:] {
		if !strings.Contains(l, "3/3") {
			t.Errorf("row %q: not recorded on every object", l)
		}
		sha := strings.Fields(l)[0]
		said := "commit status  " + sha + "  " + demo.StatusContext + "  success  applied on 3/3 in "
		if !strings.Contains(progress.String(), said) {
			t.Errorf("commit %s: no %q said:\n%s", sha, said, progress.String())
		}
	}
	// The CLI's answers at the end: the last commit applied on every object, and the branch's log.
	last := strings.Fields(lines[4])[0]
	where, log, _ := strings.Cut(queries, "\n$ flux-commit-tracker log ")
	if !strings.HasPrefix(where, last) || strings.Count(where, " applied ") != 3 {
		t.Errorf("where %s: %q, want it applied on the 3 objects", last, where)
	}
	if !strings.Contains(log, last+" ") || !strings.Contains(log, "applied") {
		t.Errorf("log: %q, want the last commit applied", log)
	}
	if !strings.Contains(progress.String(), "/metrics") || !strings.Contains(progress.String(), "4 commits recorded on every object; done") {
		t.Errorf("progress lacks the metrics address or the end:\n%s", progress.String())
	}
}
