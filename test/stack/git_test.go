package stack

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRepo commits, clones over the smart HTTP server and force-pushes, without the rest of the stack.
func TestRepo(t *testing.T) {
	dir := t.TempDir()
	g, err := startGitServer(filepath.Join(dir, "server"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.close(); err != nil {
			t.Error(err)
		}
	})
	s := &Stack{git: g}
	if _, err := s.NewRepo("../escape"); err == nil {
		t.Error("NewRepo accepted a name with a path in it")
	}
	r, err := s.NewRepo("manifests")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.NewRepo("manifests"); err == nil {
		t.Error("NewRepo created the same repository twice")
	}
	when := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("", 2*3600))
	first, err := r.Commit("first", map[string]string{"a/cm.yaml": "a: 1\n", "b.yaml": "b\n"}, when)
	if err != nil {
		t.Fatal(err)
	}
	second, err := r.Commit("second", map[string]string{"b.yaml": ""}, when.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Commit("outside", map[string]string{"../x": "x"}, when); err == nil {
		t.Error("Commit wrote outside the work tree")
	}

	clone := filepath.Join(dir, "clone")
	if _, err := runGit("", nil, "clone", "--quiet", r.URL(), clone); err != nil {
		t.Fatal(err)
	}
	assertGit(t, clone, second, "rev-parse", "HEAD")
	assertGit(t, clone, "a/cm.yaml", "ls-files")
	// The same repository under an owner, as a forge names it.
	if out, err := runGit("", nil, "ls-remote", s.GitURLOf("acme", "manifests"), "refs/heads/main"); err != nil || !strings.HasPrefix(out, second) {
		t.Errorf("ls-remote %s = %q, %v; want main at %s", s.GitURLOf("acme", "manifests"), out, err, second)
	}
	// Committer and author times are when, to the second, in when's zone.
	assertGit(t, clone, "1772359260 +0200 1772359260 +0200", "log", "-1", "--format=%at %ad %ct %cd", "--date=format:%z")

	if err := r.ForcePush(first); err != nil {
		t.Fatal(err)
	}
	if head, err := r.Head(); err != nil || head != first {
		t.Errorf("Head() after ForcePush = %q, %v; want %q", head, err, first)
	}
	if _, err := runGit(clone, nil, "fetch", "--quiet", "origin"); err != nil {
		t.Fatal(err)
	}
	assertGit(t, clone, first, "rev-parse", "origin/main")
}

func assertGit(t *testing.T, dir, want string, args ...string) {
	t.Helper()
	got, err := runGit(dir, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("git %v = %q, want %q", args, got, want)
	}
}
