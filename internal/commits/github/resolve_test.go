package github_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/github/githubtest"
)

// TestResolve: branches, tags, full SHAs and unique prefixes resolve with one SHA-only request each; unknown refs
// and refs that are no ref names are commits.ErrNotFound.
func TestResolve(t *testing.T) {
	f := newFixture(t, nil)
	root := f.commit(map[string]string{"a.txt": "1"})
	tip := f.commit(map[string]string{"a.txt": "2"})
	side := f.repo.Commit(githubtest.CommitSpec{Branch: "feature/x", Parents: []string{root}})
	f.repo.Tag("v1", root)

	tests := []struct {
		ref     string
		want    string
		wantErr error
	}{
		{ref: "main", want: tip},
		{ref: "feature/x", want: side},
		{ref: "refs/heads/feature/x", want: side},
		{ref: "v1", want: root},
		{ref: "refs/tags/v1", want: root},
		{ref: tip, want: tip},
		{ref: side[:7], want: side},
		{ref: "no-such-branch", wantErr: commits.ErrNotFound},
		{ref: absentPrefix(t, root, tip, side), wantErr: commits.ErrNotFound},
		{ref: strings.Repeat("0", 40), wantErr: commits.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			f.srv.ClearRequests()
			got, err := f.p.Resolve(context.Background(), repo, tt.ref)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || got != "" {
					t.Fatalf("Resolve(%q) = %q, %v; want %v", tt.ref, got, err, tt.wantErr)
				}
				// GitHub refuses a prefix of several commits as it refuses an unknown one: the error says so.
				short := commits.IsSHAPrefix(tt.ref) && len(tt.ref) < 40
				if ambiguous := strings.Contains(err.Error(), "more than one"); ambiguous != short {
					t.Fatalf("Resolve(%q): %v; a possible ambiguity named: %t, want %t", tt.ref, err, ambiguous, short)
				}
			} else if err != nil || got != tt.want {
				t.Fatalf("Resolve(%q) = %q, %v; want %s", tt.ref, got, err, tt.want)
			}
			reqs := f.srv.Requests()
			if len(reqs) != 1 || reqs[0].Path != "/repos/acme/manifests/commits/"+tt.ref || reqs[0].Header.Get("Accept") != "application/vnd.github.sha" {
				t.Fatalf("%d requests, want one GET commits/%s for the SHA alone", len(reqs), tt.ref)
			}
		})
	}

	// Refs that are no ref names, and would reach other API paths, are refused without a request.
	f.srv.ClearRequests()
	for _, ref := range []string{"", "../../../rate_limit", "/main"} {
		if got, err := f.p.Resolve(context.Background(), repo, ref); !errors.Is(err, commits.ErrNotFound) {
			t.Errorf("Resolve(%q) = %q, %v; want commits.ErrNotFound", ref, got, err)
		}
	}
	if reqs := f.srv.Requests(); len(reqs) != 0 {
		t.Errorf("%d requests, want none", len(reqs))
	}
}

// TestResolveBranchMoves: a branch is asked again every time, conditionally, so an unmoved branch costs a 304 and a
// moved one answers its new SHA; a full SHA is asked once.
func TestResolveBranchMoves(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	first := f.commit(map[string]string{"a.txt": "1"})
	// resolve checks the answer and the one request sent, answered status; status 0 wants none.
	resolve := func(ref, want string, status int) {
		t.Helper()
		f.srv.ClearRequests()
		if got, err := f.p.Resolve(ctx, repo, ref); err != nil || got != want {
			t.Fatalf("Resolve(%s) = %q, %v; want %s", ref, got, err, want)
		}
		var sent []string
		for _, r := range f.srv.Requests() {
			sent = append(sent, fmt.Sprintf("%s %d", r.Path, r.Status))
		}
		var wantSent []string
		if status != 0 {
			wantSent = []string{fmt.Sprintf("/repos/acme/manifests/commits/%s %d", ref, status)}
		}
		if !slices.Equal(sent, wantSent) {
			t.Fatalf("Resolve(%s) sent %q, want %q", ref, sent, wantSent)
		}
	}

	resolve("main", first, http.StatusOK)
	resolve("main", first, http.StatusNotModified)
	if got := f.srv.Requests()[0].Header.Get("If-None-Match"); got != `"`+first+`"` {
		t.Fatalf("If-None-Match %q, want the last answer quoted", got)
	}
	if n := f.calls.count(commits.CallNotModified); n != 1 {
		t.Fatalf("%d not-modified calls counted, want 1", n)
	}

	second := f.commit(map[string]string{"a.txt": "2"})
	resolve("main", second, http.StatusOK)
	f.repo.ForceBranch("main", first)
	resolve("main", first, http.StatusOK)

	// A prefix may become ambiguous, so it is asked again too; a full SHA never changes.
	resolve(second[:7], second, http.StatusOK)
	resolve(second[:7], second, http.StatusNotModified)
	resolve(second, second, http.StatusOK)
	resolve(second, second, 0)
}

// TestResolveBadAnswers: an answer that is no full SHA, or not the SHA asked for, is commits.ErrBadResponse.
func TestResolveBadAnswers(t *testing.T) {
	f := newFixture(t, nil)
	sha := f.commit(nil)
	for _, body := range []string{"", "not a sha", sha[:39], strings.Repeat("a", 40)} {
		f.srv.RespondNext(http.StatusOK, body)
		if got, err := f.p.Resolve(context.Background(), repo, sha); !errors.Is(err, commits.ErrBadResponse) {
			t.Errorf("answer %q: Resolve = %q, %v; want commits.ErrBadResponse", body, got, err)
		}
	}
}

// absentPrefix returns a 7-digit prefix that begins none of shas.
func absentPrefix(t *testing.T, shas ...string) string {
	t.Helper()
	for d := range 16 {
		p := strings.Repeat(fmt.Sprintf("%x", d), 7)
		if !strings.Contains(" "+strings.Join(shas, " "), " "+p) {
			return p
		}
	}
	t.Fatal("every candidate prefix is taken")
	return ""
}

// TestLastChange: the newest commit at or before a revision that changed a path, a file or a directory, in one
// request; a path no commit changed and an unknown revision are commits.ErrNotFound; a full SHA's answer is kept.
func TestLastChange(t *testing.T) {
	f := newFixture(t, nil)
	first := f.commit(map[string]string{"deploy/app.yaml": "1", "README.md": "a"})
	app := f.commit(map[string]string{"deploy/app.yaml": "2"})
	docs := f.commit(map[string]string{"README.md": "b"})
	for _, tt := range []struct {
		rev, path, want string
	}{
		{docs, "deploy", app},
		{docs, "deploy/", app},
		{docs, "deploy/app.yaml", app},
		{docs, "README.md", docs},
		{app, "README.md", first},
		{docs, "", docs},
	} {
		got, err := f.p.LastChange(context.Background(), repo, tt.rev, tt.path)
		if err != nil || got.SHA != tt.want {
			t.Errorf("LastChange(%s, %q) = %s, %v; want %s", tt.rev[:7], tt.path, got.SHA, err, tt.want[:7])
		}
		if err == nil && (got.CommitterTime.IsZero() || got.Message == "") {
			t.Errorf("LastChange(%s, %q) = %+v, want the whole commit", tt.rev[:7], tt.path, got)
		}
	}
	f.srv.ClearRequests()
	if _, err := f.p.LastChange(context.Background(), repo, docs, "deploy"); err != nil {
		t.Fatal(err)
	}
	if reqs := f.srv.Requests(); len(reqs) != 0 {
		t.Errorf("asked again for a full SHA's last change: %d requests", len(reqs))
	}
	for _, tt := range []struct{ rev, path string }{{docs, "charts"}, {strings.Repeat("0", 40), "deploy"}} {
		if got, err := f.p.LastChange(context.Background(), repo, tt.rev, tt.path); !errors.Is(err, commits.ErrNotFound) {
			t.Errorf("LastChange(%s, %q) = %s, %v; want ErrNotFound", tt.rev[:7], tt.path, got.SHA, err)
		}
	}
}
