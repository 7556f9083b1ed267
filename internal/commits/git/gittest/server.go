// Package gittest serves real git repositories over smart HTTP for tests — `git http-backend` behind
// net/http/cgi on 127.0.0.1 — and builds repositories with the git CLI at controlled commit times.
//
// The server counts what arrived (ref advertisements and upload-pack POSTs, i.e. fetches that
// transferred objects) and can fail the next requests with a status, to exercise retries.
package gittest

import (
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Server is a smart-HTTP git server for the repositories under one root directory.
type Server struct {
	srv  *httptest.Server
	root string

	requests    atomic.Int64
	infoRefs    atomic.Int64
	uploadPacks atomic.Int64

	mu         sync.Mutex
	failN      int
	failStatus int
}

// NewHTTPServer serves every repository under root (bare name.git or a work tree name/.git) at
// URL(name), anonymously, until the test ends. It skips the test when git is not installed.
func NewHTTPServer(t testing.TB, root string) *Server {
	t.Helper()
	backend := httpBackend(t)
	s := &Server{root: root}
	cgiHandler := &cgi.Handler{
		Path: backend,
		Root: "/",
		Env: []string{
			"GIT_PROJECT_ROOT=" + root,
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1",
			"GIT_CONFIG_GLOBAL=/dev/null",
		},
		InheritEnv: []string{"PATH", "HOME"},
		Stderr:     io.Discard, // "Not a git repository" and the like; the status code tells the client
	}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		switch {
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/info/refs"):
			s.infoRefs.Add(1)
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack"):
			s.uploadPacks.Add(1)
		}
		if status := s.takeFailure(); status != 0 {
			http.Error(w, http.StatusText(status), status)
			return
		}
		cgiHandler.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// httpBackend finds git-http-backend in git's exec path.
func httpBackend(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
}

// URL returns the clone URL of the repository at root/name.
func (s *Server) URL(name string) string {
	return s.srv.URL + "/" + strings.TrimPrefix(name, "/")
}

// Root returns the directory the server serves.
func (s *Server) Root() string { return s.root }

// Requests counts every request that arrived.
func (s *Server) Requests() int64 { return s.requests.Load() }

// InfoRefs counts ref advertisements (GET …/info/refs): one per fetch attempt that reached the server.
func (s *Server) InfoRefs() int64 { return s.infoRefs.Load() }

// UploadPacks counts upload-pack POSTs: fetches that asked for objects.
func (s *Server) UploadPacks() int64 { return s.uploadPacks.Load() }

// FailNext answers the next n requests with status instead of serving them.
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failStatus = n, status
}

func (s *Server) takeFailure() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failN == 0 {
		return 0
	}
	s.failN--
	return s.failStatus
}
