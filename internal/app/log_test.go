package app_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/app"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/locate"
)

// The matrix of log across both clusters and the unreachable one, per context and per object; its JSON; the
// row limit, another branch, and the exits of a missing source and of bad flags.
func TestLogMatrix(t *testing.T) {
	f := newFleet(t, "log")
	f.setUp()
	contexts := []string{"--context", "one", "--context", "two", "--context", "down"}
	var table strings.Builder
	for _, args := range [][]string{
		{"log", "--source", f.ns + "/manifests"},
		{"log", "--source", f.ns + "/manifests", "--objects"},
	} {
		code, out, stderr := f.run(append(args, contexts...)...)
		if code != 0 {
			t.Fatalf("%s = exit %d: %s", strings.Join(args, " "), code, stderr)
		}
		if !strings.Contains(stderr, "context down: list Kustomizations") {
			t.Errorf("%s stderr %q, want the unreachable context's error", strings.Join(args, " "), stderr)
		}
		table.WriteString("$ " + strings.Join(args, " ") + " " + strings.Join(contexts, " ") + "\n" + out + "\n")
	}
	wantGolden(t, "log.golden", table.String())

	// JSON, field by field; --repository selects the same objects as their source.
	code, out, stderr := f.run("log", "--repository", "https://github.com/acme/manifests.git", "--context", "one", "--context", "two", "-o", "json")
	if code != 0 {
		t.Fatalf("log -o json = exit %d: %s", code, stderr)
	}
	var l app.Log
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("log -o json: %v\n%s", err, out)
	}
	if l.Repository != "https://github.com/acme/manifests" || l.Branch != "main" || len(l.Commits) != 3 {
		t.Fatalf("log %s on %s with %d commits, want main of acme/manifests with 3\n%s", l.Branch, l.Repository, len(l.Commits), out)
	}
	for i, sha := range []string{f.c[2], f.c[1], f.c[0]} {
		if c := l.Commits[i]; c.SHA != sha || c.Author != "Ada" || !c.Committed.Equal(f.at(100*(2-i))) || len(c.Cells) != 2 {
			t.Errorf("commit %d = %+v, want %s by Ada at +%ds in 2 cells", i, c, sha[:7], 100*(2-i))
		}
	}
	if s := l.Commits[1].Subject; s != "add web" {
		t.Errorf("subject %q, want the first line only", s)
	}
	type cellWant struct {
		state   locate.State
		latency float64 // 0: none
		atLeast bool
	}
	for _, tt := range []struct {
		commit, cell int
		want         cellWant
	}{
		{0, 0, cellWant{state: locate.Failing}},                             // one: api fails on c2
		{0, 1, cellWant{state: locate.NotFetched}},                          // two fetched c1 only
		{1, 0, cellWant{state: locate.Applied, latency: 60, atLeast: true}}, // web exact, db and api not
		{1, 1, cellWant{state: locate.Pending}},
		{2, 0, cellWant{state: locate.Applied}}, // c0 is older than the ledger's history reaches
		{2, 1, cellWant{state: locate.Applied}},
	} {
		c := l.Commits[tt.commit].Cells[tt.cell]
		var lat float64
		if c.LatencySeconds != nil {
			lat = *c.LatencySeconds
		}
		if wantCtx := []string{"one", "two"}[tt.cell]; c.Context != wantCtx || c.Object != "" || c.State != tt.want.state ||
			lat != tt.want.latency || c.LatencyAtLeast != tt.want.atLeast || c.Error != "" {
			t.Errorf("commit %d cell %d = %+v (latency %v), want %s %+v", tt.commit, tt.cell, c, lat, wantCtx, tt.want)
		}
	}

	// --objects: one cell per object, the exact latency of each.
	code, out, _ = f.run("log", "--source", f.ns+"/manifests", "--context", "one", "--objects", "-o", "json")
	if err := json.Unmarshal([]byte(out), &l); code != 0 || err != nil {
		t.Fatalf("log --objects -o json = exit %d, %v", code, err)
	}
	web := l.Commits[0].Cells[2]
	if web.Object != "Kustomization/"+f.ns+"/web" || web.State != locate.Applied || web.LatencySeconds == nil || *web.LatencySeconds != 50 || web.LatencyAtLeast {
		t.Errorf("web's cell of c2 = %+v, want applied 50 s after its commit", web)
	}

	// --max-count limits the rows; --branch walks another branch, whose own commit no object follows.
	code, out, stderr = f.run("log", "--source", f.ns+"/manifests", "--context", "one", "--max-count", "2")
	if rows := strings.Count(out, "\n") - 3; code != 0 || rows != 2 || !strings.Contains(out, f.c[1][:7]) || strings.Contains(out, f.c[0][:7]) {
		t.Errorf("log --max-count 2 = exit %d, %d rows, want c2 and c1:\n%s%s", code, rows, out, stderr)
	}
	code, out, _ = f.run("log", "--source", f.ns+"/manifests", "--context", "one", "--branch", "feature", "-o", "json")
	if err := json.Unmarshal([]byte(out), &l); code != 0 || err != nil || len(l.Commits) != 3 || l.Commits[0].SHA != f.c[3] ||
		l.Commits[0].Cells[0].State != locate.NotOnBranch || l.Commits[1].SHA != f.c[1] {
		t.Errorf("log --branch feature = exit %d (%v): %s; want c3 (not on main), c1, c0", code, err, out)
	}

	if code, _, stderr := f.run("log", "--source", f.ns+"/nope", "--context", "one", "--context", "two"); code != 3 ||
		!strings.Contains(stderr, "no selected Flux object uses GitRepository "+f.ns+"/nope") {
		t.Errorf("log of a missing source = exit %d, %q; want 3", code, stderr)
	}
	if code, _, stderr := f.run("log", "--source", f.ns+"/manifests", "--context", "down"); code != 1 || !strings.Contains(stderr, "context down") {
		t.Errorf("log with no context read = exit %d, %q; want 1", code, stderr)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"log"}, "exactly one of --source and --repository"},
		{[]string{"log", "--source", "a/b", "--repository", "https://github.com/acme/manifests"}, "exactly one of"},
		{[]string{"log", "--source", "manifests"}, "want namespace/name"},
		{[]string{"log", "--source", f.ns + "/manifests", "--max-count", "0"}, "invalid --max-count 0"},
		{[]string{"log", "--source", f.ns + "/manifests", "--max-count", "x"}, "invalid argument"},
		{[]string{"log", "--repository", "not a url"}, "invalid --repository"},
		{[]string{"log", "--source", f.ns + "/manifests", "extra"}, "unknown command"},
		{[]string{"log", "--source", f.ns + "/manifests", "-o", "wide"}, "invalid --output"},
	} {
		if code, _, stderr := f.run(tt.args...); code != app.ExitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%s = exit %d, %q; want %d and %q", strings.Join(tt.args, " "), code, stderr, app.ExitUsage, tt.want)
		}
	}
}
