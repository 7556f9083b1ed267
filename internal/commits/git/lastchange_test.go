package git_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
)

// TestLastChange: for files, directories and the root, at several revisions and across a merge, the commit named
// is the one git log -1 --first-parent <rev> -- <path> names; a path no commit holds is commits.ErrNotFound.
func TestLastChange(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	first := f.repo.Commit("first", map[string]string{"deploy/prod/app.yaml": "1", "README.md": "a"})
	app := f.repo.Commit("raise replicas", map[string]string{"deploy/prod/app.yaml": "2"})
	f.repo.Git("checkout", "-q", "-b", "side")
	f.repo.Commit("side change", map[string]string{"deploy/staging/app.yaml": "1"})
	f.repo.Git("checkout", "-q", "main")
	docs := f.repo.Commit("docs", map[string]string{"README.md": "b"})
	merge := f.repo.Merge("side", "merge side")
	history, ok := f.p.(commits.PathHistory)
	if !ok {
		t.Fatalf("%T is not a commits.PathHistory", f.p)
	}
	for _, rev := range []string{first, app, docs, merge} {
		for _, path := range []string{"deploy", "deploy/prod", "./deploy/prod/", "deploy/prod/app.yaml", "deploy/staging", "README.md", ""} {
			args := []string{"log", "-1", "--first-parent", "--format=%H", rev}
			if p := strings.Trim(path, "./"); p != "" {
				args = append(args, "--", p)
			}
			want := strings.TrimSpace(f.repo.Git(args...))
			got, err := history.LastChange(ctx, anyRepo, rev, path)
			switch {
			case want == "":
				if !errors.Is(err, commits.ErrNotFound) {
					t.Errorf("LastChange(%.7s, %q) = %.7s, %v; want ErrNotFound", rev, path, got.SHA, err)
				}
			case err != nil || got.SHA != want:
				t.Errorf("LastChange(%.7s, %q) = %.7s, %v; want %.7s", rev, path, got.SHA, err, want)
			case got.Message == "" || got.CommitterTime.IsZero():
				t.Errorf("LastChange(%.7s, %q) = %+v, want the whole commit", rev, path, got)
			}
		}
	}
	if _, err := history.LastChange(ctx, anyRepo, strings.Repeat("0", 40), "deploy"); !errors.Is(err, commits.ErrNotFound) {
		t.Errorf("LastChange of an unknown revision: %v, want ErrNotFound", err)
	}
}
