package gittest_test

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/git/gittest"
)

func TestServerServesWorkTreeOverSmartHTTP(t *testing.T) {
	root := t.TempDir()
	srv := gittest.NewHTTPServer(t, root)
	repo := gittest.NewRepo(t, filepath.Join(root, "manifests"))
	first := repo.Commit("first", map[string]string{"a/b.txt": "hello"})
	second := repo.Commit("second", nil)

	clone := gittest.NewRepo(t, filepath.Join(t.TempDir(), "clone"))
	// Protocol v0, as go-git speaks it: one ref advertisement, one upload-pack POST per fetch.
	clone.Git("-c", "protocol.version=0", "fetch", "-q", srv.URL("manifests"), "main")
	if got := clone.Git("rev-parse", "FETCH_HEAD"); got != second {
		t.Fatalf("fetched %s, want %s", got, second)
	}
	if got := clone.Git("show", first+":a/b.txt"); got != "hello" {
		t.Fatalf("a/b.txt = %q", got)
	}
	if srv.InfoRefs() != 1 || srv.UploadPacks() != 1 {
		t.Fatalf("info/refs %d, upload-pack %d; want 1 and 1", srv.InfoRefs(), srv.UploadPacks())
	}

	// Commit times follow the clock, one Step apart.
	if got := repo.Git("log", "-1", "--format=%ct", first); got != "1704067200" {
		t.Fatalf("first commit time %s", got)
	}
	if got := repo.Git("log", "-1", "--format=%ct", second); got != "1704067260" {
		t.Fatalf("second commit time %s", got)
	}
}

func TestServerFailNext(t *testing.T) {
	root := t.TempDir()
	srv := gittest.NewHTTPServer(t, root)
	gittest.NewRepo(t, filepath.Join(root, "r")).Commit("c", nil)

	srv.FailNext(1, http.StatusServiceUnavailable)
	cmd := exec.Command("git", "ls-remote", srv.URL("r"))
	cmd.Env = append(cmd.Environ(), "GIT_TERMINAL_PROMPT=0")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "503") {
		t.Fatalf("want a 503 failure, got err %v: %s", err, out)
	}
	if out, err := exec.Command("git", "ls-remote", srv.URL("r")).CombinedOutput(); err != nil {
		t.Fatalf("second request should pass: %v: %s", err, out)
	}
}

func TestFastImport(t *testing.T) {
	repo := gittest.NewRepo(t, t.TempDir())
	base := repo.Commit("base", map[string]string{"keep.txt": "x"})
	start := repo.Now
	shas := repo.FastImport(300)
	if len(shas) != 300 || repo.Head() != shas[299] {
		t.Fatalf("got %d commits, head %s", len(shas), repo.Head())
	}
	if got := repo.Git("rev-parse", shas[0]+"^"); got != base {
		t.Fatalf("first generated commit's parent %s, want %s", got, base)
	}
	if got := repo.Git("log", "-1", "--format=%ct", shas[0]); got != "1704067260" || !repo.Now.Equal(start.Add(300*time.Minute)) {
		t.Fatalf("first generated commit time %s, clock %s", got, repo.Now)
	}
	// The work tree follows, so later commits build on the generated history.
	next := repo.Commit("after", nil)
	if got := repo.Git("rev-parse", next+"^"); got != shas[299] {
		t.Fatalf("parent %s", got)
	}
	if got := repo.Git("show", next+":keep.txt"); got != "x" {
		t.Fatalf("keep.txt = %q", got)
	}
}
