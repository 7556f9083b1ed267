package gittest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Identity of every commit Repo makes.
const (
	AuthorName  = "Test Author"
	AuthorEmail = "author@example.com"
)

// DefaultStart is the clock of a new Repo.
var DefaultStart = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Repo is a git work tree (branch main) whose commits get the times of its clock: every Commit is
// stamped with the clock and advances it by Step. Serve it by creating it under a Server's root.
type Repo struct {
	t   testing.TB
	Dir string
	// Now is the author and committer time of the next commit.
	Now time.Time
	// Step is how far each commit advances Now; default one minute.
	Step time.Duration
}

// NewRepo initializes a repository in dir (created if needed) on branch main.
func NewRepo(t testing.TB, dir string) *Repo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := &Repo{t: t, Dir: dir, Now: DefaultStart, Step: time.Minute}
	r.Git("init", "-q", "-b", "main")
	return r
}

// env is the environment of every git command: no user or system config, a fixed identity, and the
// clock as both dates (an explicit --date still wins for the author date).
func (r *Repo) env() []string {
	date := fmt.Sprintf("@%d +0000", r.Now.Unix())
	return append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME="+AuthorName,
		"GIT_AUTHOR_EMAIL="+AuthorEmail,
		"GIT_COMMITTER_NAME="+AuthorName,
		"GIT_COMMITTER_EMAIL="+AuthorEmail,
		"GIT_AUTHOR_DATE="+date,
		"GIT_COMMITTER_DATE="+date,
	)
}

// Git runs git in the repository and returns its trimmed standard output; failure ends the test.
func (r *Repo) Git(args ...string) string {
	r.t.Helper()
	return r.gitInput(nil, args...)
}

// TryGit runs git like Git but returns its failure, with standard error, instead of ending the test.
func (r *Repo) TryGit(args ...string) (string, error) {
	return r.run(nil, args...)
}

func (r *Repo) gitInput(stdin []byte, args ...string) string {
	r.t.Helper()
	out, err := r.run(stdin, args...)
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

func (r *Repo) run(stdin []byte, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-C", r.Dir}, args...)...)
	cmd.Env = r.env()
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(stdout.String()), nil
}

// Commit writes files (path → content, relative to the work tree), stages everything and commits at
// the clock, which then advances. It returns the new commit's SHA.
func (r *Repo) Commit(message string, files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		path := filepath.Join(r.Dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.Git("add", "-A")
	r.Git("commit", "-q", "--allow-empty", "-m", message)
	r.Now = r.Now.Add(r.Step)
	return r.Head()
}

// Merge merges branch into the current branch with a merge commit (--no-ff) at the clock, which then
// advances. It returns the merge commit's SHA.
func (r *Repo) Merge(branch, message string) string {
	r.t.Helper()
	r.Git("merge", "-q", "--no-ff", "-m", message, branch)
	r.Now = r.Now.Add(r.Step)
	return r.Head()
}

// Head returns the SHA of HEAD.
func (r *Repo) Head() string {
	r.t.Helper()
	return r.Git("rev-parse", "HEAD")
}

// RevList returns git rev-list args (one SHA a line) as a slice.
func (r *Repo) RevList(args ...string) []string {
	r.t.Helper()
	out := r.Git(append([]string{"rev-list"}, args...)...)
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// FastImport appends n commits to the current branch quickly with git fast-import, each changing one
// file, one Step apart on the clock, and updates the work tree. It returns their SHAs, oldest first.
func (r *Repo) FastImport(n int) []string {
	r.t.Helper()
	branch := r.Git("symbolic-ref", "HEAD")
	parent := ""
	if head, err := r.TryGit("rev-parse", "--verify", "-q", "HEAD^{commit}"); err == nil {
		parent = head
	}
	var stream bytes.Buffer
	for i := range n {
		msg := fmt.Sprintf("generated commit %d", i+1)
		content := fmt.Sprintf("%d\n", r.Now.UnixNano())
		fmt.Fprintf(&stream, "commit %s\nmark :%d\n", branch, i+1)
		fmt.Fprintf(&stream, "author %s <%s> %d +0000\n", AuthorName, AuthorEmail, r.Now.Unix())
		fmt.Fprintf(&stream, "committer %s <%s> %d +0000\n", AuthorName, AuthorEmail, r.Now.Unix())
		fmt.Fprintf(&stream, "data %d\n%s\n", len(msg), msg)
		if i == 0 && parent != "" {
			fmt.Fprintf(&stream, "from %s\n", parent)
		}
		fmt.Fprintf(&stream, "M 644 inline generated.txt\ndata %d\n%s\n", len(content), content)
		r.Now = r.Now.Add(r.Step)
	}
	r.gitInput(stream.Bytes(), "fast-import", "--quiet")
	r.Git("reset", "-q", "--hard")
	shas := r.RevList("--reverse", "--first-parent", fmt.Sprintf("-n%d", n), "HEAD")
	if len(shas) != n {
		r.t.Fatalf("fast-import made %d commits, want %d", len(shas), n)
	}
	return shas
}
