// Package gittest serves real git repositories for tests — over smart HTTP(S) with `git http-backend`
// behind net/http/cgi, optionally behind basic or bearer authentication, and over SSH with
// `git upload-pack` behind golang.org/x/crypto/ssh, all on 127.0.0.1 — and builds repositories with the
// git CLI at controlled commit times.
//
// The HTTP server counts what arrived (ref advertisements and upload-pack POSTs, i.e. fetches that
// transferred objects) and can fail the next requests with a status, to exercise retries.
package gittest

import (
	"crypto/subtle"
	"encoding/pem"
	"io"
	"log"
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
	before     func(*http.Request)
}

// ServerOptions configures NewServer.
type ServerOptions struct {
	// Username and Password, when Username is set, make every request need them as HTTP basic auth.
	Username, Password string
	// BearerToken, when set, makes every request need "Authorization: Bearer <token>".
	BearerToken string
	// TLS serves HTTPS with httptest's self-signed certificate for 127.0.0.1; see CACert.
	TLS bool
}

// NewHTTPServer serves every repository under root (bare name.git or a work tree name/.git) at
// URL(name), anonymously, until the test ends. It skips the test when git is not installed.
func NewHTTPServer(t testing.TB, root string) *Server {
	t.Helper()
	return NewServer(t, root, ServerOptions{})
}

// NewHTTPServerAuth is NewHTTPServer requiring HTTP basic auth with username and password.
func NewHTTPServerAuth(t testing.TB, root, username, password string) *Server {
	t.Helper()
	return NewServer(t, root, ServerOptions{Username: username, Password: password})
}

// NewHTTPServerBearer is NewHTTPServer requiring a bearer token.
func NewHTTPServerBearer(t testing.TB, root, token string) *Server {
	t.Helper()
	return NewServer(t, root, ServerOptions{BearerToken: token})
}

// NewServer serves the repositories under root as opts says. Requests without the credentials it
// wants, or with others, get 401 and a WWW-Authenticate challenge, as git hosts answer; they are
// counted like every other request.
func NewServer(t testing.TB, root string, opts ServerOptions) *Server {
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
	handler := requireAuth(opts, cgiHandler)
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		switch {
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/info/refs"):
			s.infoRefs.Add(1)
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack"):
			s.uploadPacks.Add(1)
		}
		if before := s.beforeHook(); before != nil {
			before(r)
		}
		if status := s.takeFailure(); status != 0 {
			http.Error(w, http.StatusText(status), status)
			return
		}
		handler.ServeHTTP(w, r)
	}))
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS handshakes clients refuse, on purpose
	if opts.TLS {
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	t.Cleanup(s.srv.Close)
	return s
}

// requireAuth puts the credentials opts asks for in front of next.
func requireAuth(opts ServerOptions, next http.Handler) http.Handler {
	switch {
	case opts.BearerToken != "":
		want := "Bearer " + opts.BearerToken
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(want)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="gittest"`)
				http.Error(w, "Unauthorized", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	case opts.Username != "":
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user, pass, ok := r.BasicAuth()
			if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(opts.Username)) != 1 ||
				subtle.ConstantTimeCompare([]byte(pass), []byte(opts.Password)) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="gittest"`)
				http.Error(w, "Unauthorized", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	return next
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

// CACert returns an HTTPS server's self-signed certificate as PEM (nil for plain HTTP): what a
// client needs in its CA bundle.
func (s *Server) CACert() []byte {
	if s.srv.Certificate() == nil || s.srv.TLS == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// BeforeRequest calls f with every request, in its handler goroutine, before it is served; f may
// block to hold the request. nil removes it.
func (s *Server) BeforeRequest(f func(*http.Request)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.before = f
}

func (s *Server) beforeHook() func(*http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.before
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
