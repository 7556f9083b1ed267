package githubtest_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/github/githubtest"
)

func get(t *testing.T, srv *githubtest.Server, path string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+strings.TrimPrefix(path, "/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func decode(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return m
}

func requireKeys(t *testing.T, what string, m map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("%s: missing key %q in %v", what, k, m)
		}
	}
}

func TestCommitShapeAndHeaders(t *testing.T) {
	srv := githubtest.NewServer()
	defer srv.Close()
	repo := srv.Repo("acme", "app")
	at := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	first := repo.Commit(githubtest.CommitSpec{Message: "first", AuthorTime: at, Files: map[string]string{"a.yaml": "a: 1\n"}})
	second := repo.Commit(githubtest.CommitSpec{Message: "second\n\nbody", AuthorName: "Ann", AuthorEmail: "ann@example.com", AuthorTime: at.Add(time.Hour), CommitterTime: at.Add(2 * time.Hour), Files: map[string]string{"b.yaml": "b: 2\n"}})

	resp, body := get(t, srv, "/repos/acme/app/commits/"+second, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	for _, h := range []string{"ETag", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Used", "X-RateLimit-Reset", "X-RateLimit-Resource", "X-GitHub-Request-Id"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("missing header %s", h)
		}
	}
	if etag := resp.Header.Get("ETag"); !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) {
		t.Errorf("ETag %q is not a strong quoted tag", etag)
	}
	c := decode(t, body)
	requireKeys(t, "commit", c, "sha", "node_id", "commit", "url", "html_url", "comments_url", "author", "committer", "parents", "stats", "files")
	inner := c["commit"].(map[string]any)
	requireKeys(t, "commit.commit", inner, "author", "committer", "message", "tree", "url", "comment_count", "verification")
	if got := inner["committer"].(map[string]any)["date"]; got != "2025-03-01T12:00:00Z" {
		t.Errorf("committer date %v", got)
	}
	if got := inner["author"].(map[string]any)["name"]; got != "Ann" {
		t.Errorf("author name %v", got)
	}
	if got := inner["message"]; got != "second\n\nbody" {
		t.Errorf("message %q", got)
	}
	parents := c["parents"].([]any)
	if len(parents) != 1 || parents[0].(map[string]any)["sha"] != first {
		t.Errorf("parents %v, want [%s]", parents, first)
	}
	if files := c["files"].([]any); len(files) != 1 || files[0].(map[string]any)["filename"] != "b.yaml" {
		t.Errorf("files %v", files)
	}

	// If-None-Match with the ETag answers 304 without a body.
	resp2, body2 := get(t, srv, "/repos/acme/app/commits/"+second, http.Header{"If-None-Match": {resp.Header.Get("ETag")}})
	if resp2.StatusCode != http.StatusNotModified || len(body2) != 0 {
		t.Errorf("conditional request: status %d body %q, want 304 and no body", resp2.StatusCode, body2)
	}

	resp3, body3 := get(t, srv, "/repos/acme/app/commits/0123456789012345678901234567890123456789", nil)
	if resp3.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body3), "No commit found for SHA") {
		t.Errorf("unknown SHA: %d %s", resp3.StatusCode, body3)
	}
	if resp4, _ := get(t, srv, "/repos/acme/nope/commits/"+second, nil); resp4.StatusCode != http.StatusNotFound {
		t.Errorf("unknown repo: %d", resp4.StatusCode)
	}
	// GitHub Enterprise prefix.
	if resp5, _ := get(t, srv, "/api/v3/repos/acme/app/commits/"+second, nil); resp5.StatusCode != http.StatusOK {
		t.Errorf("enterprise path: %d", resp5.StatusCode)
	}
}

// TestSHAsMatchGit checks that the fake's commit SHAs are git's object names.
func TestSHAsMatchGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	srv := githubtest.NewServer()
	defer srv.Close()
	at := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	files := map[string]string{"deploy/app.yaml": "kind: Deployment\n", "README.md": "hi\n", "deploy-a": "x\n"}
	sha := srv.Repo("acme", "app").Commit(githubtest.CommitSpec{Message: "init", AuthorName: "Ann", AuthorEmail: "ann@example.com", AuthorTime: at, Files: files})

	dir := t.TempDir()
	for p, content := range files {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	date := strconv.FormatInt(at.Unix(), 10) + " +0000"
	env := append(os.Environ(), "GIT_AUTHOR_NAME=Ann", "GIT_AUTHOR_EMAIL=ann@example.com", "GIT_COMMITTER_NAME=Ann",
		"GIT_COMMITTER_EMAIL=ann@example.com", "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date, "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"commit", "-q", "-m", "init"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	cmd := exec.Command("git", "rev-parse", "HEAD")
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != sha {
		t.Errorf("git says %s, fake says %s", got, sha)
	}
}

func TestCompare(t *testing.T) {
	srv := githubtest.NewServer()
	defer srv.Close()
	repo := srv.Repo("acme", "app")
	base := repo.Commit(githubtest.CommitSpec{Files: map[string]string{"a": "1"}})
	side := repo.Commit(githubtest.CommitSpec{Branch: "feature", Parents: []string{base}, Files: map[string]string{"f": "1"}})
	main1 := repo.Commit(githubtest.CommitSpec{Files: map[string]string{"a": "2"}})
	merge := repo.Commit(githubtest.CommitSpec{Parents: []string{main1, side}, Files: map[string]string{"f": "1"}})
	rewritten := repo.Commit(githubtest.CommitSpec{Branch: "rewrite", Parents: []string{base}, Message: "rewritten"})

	tests := []struct {
		name                     string
		base, head               string
		status                   string
		aheadBy, behindBy, total int
		commits                  []string
	}{
		{"ahead through a merge", base, merge, "ahead", 3, 0, 3, []string{side, main1, merge}},
		{"identical", merge, merge, "identical", 0, 0, 0, nil},
		{"behind", merge, base, "behind", 0, 3, 0, nil},
		{"diverged", merge, rewritten, "diverged", 1, 3, 1, []string{rewritten}},
		{"branch names", base, "main", "ahead", 3, 0, 3, []string{side, main1, merge}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, srv, "/repos/acme/app/compare/"+tt.base+"..."+tt.head, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			c := decode(t, body)
			requireKeys(t, "compare", c, "url", "html_url", "permalink_url", "diff_url", "patch_url", "base_commit", "merge_base_commit", "status", "ahead_by", "behind_by", "total_commits", "commits", "files")
			if c["status"] != tt.status || int(c["ahead_by"].(float64)) != tt.aheadBy || int(c["behind_by"].(float64)) != tt.behindBy || int(c["total_commits"].(float64)) != tt.total {
				t.Errorf("got status %v ahead %v behind %v total %v", c["status"], c["ahead_by"], c["behind_by"], c["total_commits"])
			}
			var got []string
			for _, x := range c["commits"].([]any) {
				got = append(got, x.(map[string]any)["sha"].(string))
			}
			if strings.Join(got, ",") != strings.Join(tt.commits, ",") {
				t.Errorf("commits %v, want %v", got, tt.commits)
			}
		})
	}
}

func TestComparePagination(t *testing.T) {
	srv := githubtest.NewServer()
	defer srv.Close()
	repo := srv.Repo("acme", "app")
	base := repo.Commit(githubtest.CommitSpec{})
	var all []string
	for range 260 {
		all = append(all, repo.Commit(githubtest.CommitSpec{}))
	}
	head := all[len(all)-1]
	shas := func(body []byte) []string {
		var out []string
		for _, x := range decode(t, body)["commits"].([]any) {
			out = append(out, x.(map[string]any)["sha"].(string))
		}
		return out
	}

	// Without paging parameters: the newest 250, no Link.
	resp, body := get(t, srv, "/repos/acme/app/compare/"+base+"..."+head, nil)
	if got := shas(body); len(got) != 250 || got[0] != all[10] || got[249] != head || resp.Header.Get("Link") != "" {
		t.Errorf("unpaged: %d commits, first %s, Link %q", len(got), got[0], resp.Header.Get("Link"))
	}
	// Paged: oldest first, Link with next and last, files only on page 1.
	resp, body = get(t, srv, "/repos/acme/app/compare/"+base+"..."+head+"?page=1&per_page=100", nil)
	link := resp.Header.Get("Link")
	if got := shas(body); len(got) != 100 || got[0] != all[0] || !strings.Contains(link, `page=2&per_page=100>; rel="next"`) || !strings.Contains(link, `page=3&per_page=100>; rel="last"`) {
		t.Errorf("page 1: %d commits, Link %q", len(got), link)
	}
	resp, body = get(t, srv, "/repos/acme/app/compare/"+base+"..."+head+"?page=3&per_page=100", nil)
	if got := shas(body); len(got) != 60 || got[59] != head || !strings.Contains(resp.Header.Get("Link"), `rel="prev"`) || strings.Contains(resp.Header.Get("Link"), `rel="next"`) {
		t.Errorf("page 3: %d commits, Link %q", len(got), resp.Header.Get("Link"))
	}
}

func TestContents(t *testing.T) {
	srv := githubtest.NewServer()
	defer srv.Close()
	repo := srv.Repo("acme", "app")
	sha := repo.Commit(githubtest.CommitSpec{Files: map[string]string{"dir/info.json": `{"a":1}`, "top.txt": "x"}})
	later := repo.Commit(githubtest.CommitSpec{Files: map[string]string{"dir/info.json": ""}})

	resp, body := get(t, srv, "/repos/acme/app/contents/dir/info.json?ref="+sha, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	c := decode(t, body)
	requireKeys(t, "contents", c, "type", "encoding", "size", "name", "path", "content", "sha", "url", "git_url", "html_url", "download_url", "_links")
	raw, err := base64.StdEncoding.DecodeString(c["content"].(string))
	if err != nil || string(raw) != `{"a":1}` || c["encoding"] != "base64" || int(c["size"].(float64)) != 7 {
		t.Errorf("content %q (%v), encoding %v, size %v", raw, err, c["encoding"], c["size"])
	}
	if resp, _ := get(t, srv, "/repos/acme/app/contents/dir/info.json?ref="+later, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("deleted file: %d", resp.StatusCode)
	}
	if _, body := get(t, srv, "/repos/acme/app/contents/dir?ref="+sha, nil); !strings.HasPrefix(string(body), "[") {
		t.Errorf("directory: %s", body)
	}
	if _, body := get(t, srv, "/repos/acme/app/contents/top.txt?ref="+sha, http.Header{"Accept": {"application/vnd.github.raw"}}); string(body) != "x" {
		t.Errorf("raw: %q", body)
	}
}

func TestFaults(t *testing.T) {
	setup := func(t *testing.T) (*githubtest.Server, string) {
		srv := githubtest.NewServer()
		t.Cleanup(srv.Close)
		sha := srv.Repo("acme", "app").Commit(githubtest.CommitSpec{})
		return srv, "/repos/acme/app/commits/" + sha
	}
	t.Run("FailNext", func(t *testing.T) {
		srv, path := setup(t)
		srv.FailNext(2, http.StatusBadGateway)
		for i, want := range []int{502, 502, 200} {
			if resp, _ := get(t, srv, path, nil); resp.StatusCode != want {
				t.Errorf("request %d: %d, want %d", i, resp.StatusCode, want)
			}
		}
	})
	t.Run("RateLimitNext", func(t *testing.T) {
		srv, path := setup(t)
		srv.RateLimitNext(http.StatusTooManyRequests, 1500*time.Millisecond)
		resp, body := get(t, srv, path, nil)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" || resp.Header.Get("X-RateLimit-Remaining") == "0" ||
			!strings.Contains(string(body), githubtest.SecondaryRateLimitMessage) {
			t.Errorf("first: %d retry-after %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		if resp, _ := get(t, srv, path, nil); resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("inside the retry-after window: %d", resp.StatusCode)
		}
	})
	t.Run("PrimaryRateLimitNext", func(t *testing.T) {
		srv, path := setup(t)
		srv.PrimaryRateLimitNext(http.StatusForbidden, time.Second)
		resp, _ := get(t, srv, path, nil)
		reset, _ := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64)
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-RateLimit-Remaining") != "0" || time.Until(time.Unix(reset, 0)) > 2*time.Second {
			t.Errorf("limited: %d remaining %q reset %d", resp.StatusCode, resp.Header.Get("X-RateLimit-Remaining"), reset)
		}
		time.Sleep(time.Until(time.Unix(reset, 0)))
		if resp, _ := get(t, srv, path, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("after reset: %d", resp.StatusCode)
		}
	})
	t.Run("RequireToken", func(t *testing.T) {
		srv, path := setup(t)
		srv.RequireToken("s3cret")
		for _, tc := range []struct {
			auth string
			want int
		}{{"Bearer s3cret", 200}, {"token s3cret", 200}, {"token wrong", 401}, {"", 401}} {
			h := http.Header{}
			if tc.auth != "" {
				h.Set("Authorization", tc.auth)
			}
			if resp, _ := get(t, srv, path, h); resp.StatusCode != tc.want {
				t.Errorf("Authorization %q: %d, want %d", tc.auth, resp.StatusCode, tc.want)
			}
		}
		if got := srv.Requests(); len(got) != 4 || got[3].Status != 401 || got[0].Path != path {
			t.Errorf("requests %+v", got)
		}
	})
	t.Run("RespondNext", func(t *testing.T) {
		srv, path := setup(t)
		srv.RespondNext(http.StatusOK, "null")
		if resp, body := get(t, srv, path, nil); resp.StatusCode != 200 || string(body) != "null" || resp.Header.Get("X-Github-Request-Id") == "" {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
	})
	t.Run("RewriteNext", func(t *testing.T) {
		srv, path := setup(t)
		srv.RewriteNext(func(b []byte) []byte { return append([]byte("x"), b...) })
		if _, body := get(t, srv, path, nil); !strings.HasPrefix(string(body), `x{"sha":`) {
			t.Errorf("got %.20s", body)
		}
	})
	t.Run("CutNext", func(t *testing.T) {
		srv, path := setup(t)
		srv.CutNext()
		resp, err := srv.Client().Get(srv.URL + strings.TrimPrefix(path, "/"))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		if _, err := io.ReadAll(resp.Body); err == nil {
			t.Error("the cut body read whole")
		}
	})
	t.Run("HangNext", func(t *testing.T) {
		srv, path := setup(t)
		srv.HangNext(1)
		client := srv.Client()
		client.Timeout = 100 * time.Millisecond
		if _, err := client.Get(srv.URL + strings.TrimPrefix(path, "/")); err == nil {
			t.Error("a held request was answered")
		}
		if resp, _ := get(t, srv, path, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("after the hang: %d", resp.StatusCode)
		}
		if got := srv.Requests(); len(got) != 2 || got[0].Status != 0 {
			t.Errorf("requests %+v", got)
		}
	})
	t.Run("RedirectNext", func(t *testing.T) {
		srv, path := setup(t)
		srv.RedirectNext(http.StatusFound, "https://elsewhere.example/x")
		client := srv.Client()
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := client.Get(srv.URL + strings.TrimPrefix(path, "/"))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://elsewhere.example/x" {
			t.Errorf("got %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}

// TestCommitSHAMediaType: with the sha media type, commits/{ref} answers the bare SHA of a branch, a tag or a unique
// prefix, its ETag the quoted SHA; an ambiguous prefix is refused like an unknown ref.
func TestCommitSHAMediaType(t *testing.T) {
	srv := githubtest.NewServer()
	defer srv.Close()
	repo := srv.Repo("acme", "app")
	first := repo.Commit(githubtest.CommitSpec{})
	second := repo.Commit(githubtest.CommitSpec{})
	repo.Tag("v1", first)
	sha := http.Header{"Accept": {"application/vnd.github.sha"}}
	for ref, want := range map[string]string{"main": second, "heads/main": second, "v1": first, "refs/tags/v1": first, first[:7]: first, second: second} {
		resp, body := get(t, srv, "/repos/acme/app/commits/"+ref, sha)
		if resp.StatusCode != http.StatusOK || string(body) != want || resp.Header.Get("Content-Type") != "application/vnd.github.sha; charset=utf-8" ||
			resp.Header.Get("ETag") != `"`+want+`"` {
			t.Errorf("%s: %d %q (%s, ETag %s), want 200 %s", ref, resp.StatusCode, body, resp.Header.Get("Content-Type"), resp.Header.Get("ETag"), want)
		}
	}
	if resp, body := get(t, srv, "/repos/acme/app/commits/main", http.Header{"Accept": sha["Accept"], "If-None-Match": {`"` + second + `"`}}); resp.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Errorf("If-None-Match the SHA: %d %q, want 304 and no body", resp.StatusCode, body)
	}
	if resp, _ := get(t, srv, "/repos/acme/app/commits/main", http.Header{"Accept": sha["Accept"], "If-None-Match": {`"` + first + `"`}}); resp.StatusCode != http.StatusOK {
		t.Errorf("If-None-Match another SHA: %d, want 200", resp.StatusCode)
	}
	if resp, body := get(t, srv, "/repos/acme/app/commits/v2", sha); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), "No commit found for SHA: v2") {
		t.Errorf("unknown tag: %d %s", resp.StatusCode, body)
	}

	// Commits until two share a 7-digit prefix: the prefix is refused, one digit more is not.
	seen := map[string]string{}
	var a, b string
	for i := 0; a == "" && i < 1<<20; i++ {
		s := repo.Commit(githubtest.CommitSpec{Branch: "many", Parents: []string{first}, Message: strconv.Itoa(i)})
		if other, ok := seen[s[:7]]; ok {
			a, b = other, s
		}
		seen[s[:7]] = s
	}
	if a == "" {
		t.Fatal("no two commits share a 7-digit prefix")
	}
	n := 7
	for a[n] == b[n] {
		n++
	}
	if resp, body := get(t, srv, "/repos/acme/app/commits/"+a[:n], sha); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), "No commit found for SHA") {
		t.Errorf("ambiguous prefix %s: %d %s, want 422", a[:n], resp.StatusCode, body)
	}
	if resp, body := get(t, srv, "/repos/acme/app/commits/"+b[:n+1], sha); resp.StatusCode != http.StatusOK || string(body) != b {
		t.Errorf("prefix %s: %d %s, want %s", b[:n+1], resp.StatusCode, body, b)
	}
}
