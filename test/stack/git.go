package stack

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Branch is the branch every Repo commits to and Flux objects created through the Stack follow.
const Branch = "main"

// gitServer serves the bare repositories under root over smart HTTP (read-only) with `git http-backend`.
type gitServer struct {
	root    string // bare repositories, <name>.git
	work    string // work trees, <name>
	url     string // http://127.0.0.1:P
	srv     *http.Server
	done    chan struct{}
	logFile *os.File
}

func startGitServer(dir string) (*gitServer, error) {
	gitBin, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("git server: %w", err)
	}
	g := &gitServer{root: filepath.Join(dir, "repos"), work: filepath.Join(dir, "work"), done: make(chan struct{})}
	for _, d := range []string{g.root, g.work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if g.logFile, err = os.Create(filepath.Join(dir, "http-backend.log")); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = g.logFile.Close()
		return nil, err
	}
	g.url = "http://" + ln.Addr().String()
	backend := &cgi.Handler{
		Path: gitBin,
		Args: []string{"http-backend"},
		Root: "/",
		Env: append(isolatedGitEnv(),
			"GIT_PROJECT_ROOT="+g.root,
			"GIT_HTTP_EXPORT_ALL=1",
		),
		Stderr: g.logFile,
	}
	g.srv = &http.Server{Handler: ownerless(backend), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(g.done)
		_ = g.srv.Serve(ln)
	}()
	return g, nil
}

// ownerless serves /<owner>/<name>.git/… as /<name>.git/…, so that a repository's URL can name an owner as a
// forge's does.
func ownerless(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if owner, rest, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/"); ok && !strings.HasSuffix(owner, ".git") {
			if name, _, _ := strings.Cut(rest, "/"); strings.HasSuffix(name, ".git") {
				r = r.Clone(r.Context())
				r.URL.Path, r.URL.RawPath = "/"+rest, ""
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (g *gitServer) close() error {
	err := g.srv.Close()
	<-g.done
	return errors.Join(err, g.logFile.Close())
}

// isolatedGitEnv keeps the user's and the system's git config out of the stack's git commands.
func isolatedGitEnv() []string {
	return []string{"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=" + os.DevNull, "GIT_TERMINAL_PROMPT=0"}
}

var repoName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// GitURL is the clone URL of the repository named repo: http://127.0.0.1:P/<repo>.git.
func (s *Stack) GitURL(repo string) string { return s.git.url + "/" + repo + ".git" }

// GitURLOf is the clone URL of repo under owner, as a forge names it: http://127.0.0.1:P/<owner>/<repo>.git,
// served from the same repository as GitURL(repo).
func (s *Stack) GitURLOf(owner, repo string) string {
	return s.git.url + "/" + owner + "/" + repo + ".git"
}

// Repo is a bare repository served by the stack's git server, with a work tree that commits and pushes to it
// (through the file system: the HTTP side is read-only). Its methods are safe for concurrent use.
type Repo struct {
	name string
	url  string
	bare string
	work string
	mu   sync.Mutex
}

// NewRepo creates an empty repository named name (letters, digits, '.', '_', '-'), served at GitURL(name).
// Flux can fetch it after the first Commit creates the main branch.
func (s *Stack) NewRepo(name string) (*Repo, error) {
	if !repoName.MatchString(name) || strings.Contains(name, "..") {
		return nil, fmt.Errorf("repository name %q: use letters, digits, '.', '_' and '-'", name)
	}
	r := &Repo{name: name, url: s.GitURL(name), bare: filepath.Join(s.git.root, name+".git"), work: filepath.Join(s.git.work, name)}
	if _, err := os.Stat(r.bare); err == nil {
		return nil, fmt.Errorf("repository %q exists", name)
	}
	if _, err := runGit("", nil, "init", "--quiet", "--bare", "--initial-branch="+Branch, r.bare); err != nil {
		return nil, err
	}
	if _, err := runGit("", nil, "init", "--quiet", "--initial-branch="+Branch, r.work); err != nil {
		return nil, err
	}
	if _, err := runGit(r.work, nil, "remote", "add", "origin", r.bare); err != nil {
		return nil, err
	}
	return r, nil
}

// Name is the repository's name.
func (r *Repo) Name() string { return r.name }

// URL is the repository's clone URL on the stack's git server.
func (r *Repo) URL() string { return r.url }

// Commit writes files (path relative to the repository root → content; an empty content deletes the file),
// commits everything with author and committer time when (now if zero) and pushes main. It returns the commit
// SHA. A commit that changes nothing is still made.
func (r *Repo) Commit(msg string, files map[string]string, when time.Time) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for rel, content := range files {
		path := filepath.Join(r.work, filepath.FromSlash(rel))
		if !strings.HasPrefix(path, r.work+string(filepath.Separator)) {
			return "", fmt.Errorf("file %q is outside the repository", rel)
		}
		if content == "" {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return "", err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	if when.IsZero() {
		when = time.Now()
	}
	date := when.Format(time.RFC3339)
	env := []string{"GIT_AUTHOR_DATE=" + date, "GIT_COMMITTER_DATE=" + date}
	if _, err := runGit(r.work, nil, "add", "--all"); err != nil {
		return "", err
	}
	if _, err := runGit(r.work, env, "commit", "--quiet", "--allow-empty", "--no-verify", "-m", msg); err != nil {
		return "", err
	}
	sha, err := runGit(r.work, nil, "rev-parse", "HEAD")
	if err != nil {
		return "", err
	}
	if _, err := runGit(r.work, nil, "push", "--quiet", "origin", "HEAD:refs/heads/"+Branch); err != nil {
		return "", err
	}
	return sha, nil
}

// ForcePush resets main to sha (an earlier commit: a rollback) and force-pushes it.
func (r *Repo) ForcePush(sha string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := runGit(r.work, nil, "reset", "--quiet", "--hard", sha); err != nil {
		return err
	}
	_, err := runGit(r.work, nil, "push", "--quiet", "--force", "origin", "HEAD:refs/heads/"+Branch)
	return err
}

// Head is the SHA main points to in the served repository.
func (r *Repo) Head() (string, error) {
	return runGit(r.bare, nil, "rev-parse", "refs/heads/"+Branch)
}

// runGit runs git in dir with the stack's isolated config and a fixed identity, returning trimmed stdout.
func runGit(dir string, env []string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), isolatedGitEnv()...)
	cmd.Env = append(cmd.Env,
		"GIT_AUTHOR_NAME=Stack Author", "GIT_AUTHOR_EMAIL=author@stack.invalid",
		"GIT_COMMITTER_NAME=Stack Committer", "GIT_COMMITTER_EMAIL=committer@stack.invalid")
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}
