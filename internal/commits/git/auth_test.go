package git_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/git"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/git/gittest"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/sourceauth"
)

const (
	user       = "tracker-bot"
	password   = "s3cret-password-0451"
	token      = "ghp_bearer-token-9f8e7d6c5b4a"
	passphrase = "identity-passphrase-77"
)

// noSecrets fails when msg holds any of the material in auths.
func noSecrets(t *testing.T, msg string, auths ...sourceauth.Auth) {
	t.Helper()
	for _, a := range auths {
		secrets := []string{a.Password, a.BearerToken}
		for line := range strings.Lines(string(a.SSHIdentity)) {
			if line = strings.TrimSpace(line); !strings.HasPrefix(line, "-----") {
				secrets = append(secrets, line)
			}
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(msg, s) {
				t.Fatalf("error shows a secret: %s", msg)
			}
		}
	}
}

// authFixture is one repository served behind credentials, and a provider with its own call counts.
type authFixture struct {
	repo  *gittest.Repo
	git   *git.Provider
	calls *calls
	cache string
}

func newAuthFixture(t *testing.T, root string) *authFixture {
	t.Helper()
	f := &authFixture{repo: gittest.NewRepo(t, filepath.Join(root, "private")), calls: &calls{n: map[commits.CallOutcome]int{}}, cache: t.TempDir()}
	f.git = newProvider(t, f.cache, f.calls)
	return f
}

// wantAuthError checks that err is a clear, permanent credentials error counted once as a failed call.
func (f *authFixture) wantAuthError(t *testing.T, err error, wantErrors int, auths ...sourceauth.Auth) {
	t.Helper()
	if !errors.Is(err, git.ErrAuthFailed) || errors.Is(err, commits.ErrNotFound) || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("got %v, want git.ErrAuthFailed and not commits.ErrNotFound", err)
	}
	noSecrets(t, err.Error(), auths...)
	if got := f.calls.get(commits.CallError); got != wantErrors {
		t.Fatalf("%d failed calls counted, want %d (auth failures are not retried)", got, wantErrors)
	}
}

func TestHTTPBasicAuth(t *testing.T) {
	root := t.TempDir()
	srv := gittest.NewHTTPServerAuth(t, root, user, password)
	f := newAuthFixture(t, root)
	c1 := f.repo.Commit("c1", map[string]string{"exporter-info.json": "{}"})
	c2 := f.repo.Commit("c2", nil)
	ctx := context.Background()
	right := sourceauth.Auth{Username: user, Password: password}
	wrong := sourceauth.Auth{Username: user, Password: "wrong-password-1234"}

	_, err := f.git.ForURL(srv.URL("private")).Commit(ctx, anyRepo, c1)
	f.wantAuthError(t, err, 1)
	if !errors.Is(err, transport.ErrAuthenticationRequired) || !strings.Contains(err.Error(), "anonymous") {
		t.Fatalf("anonymous: %v, want it to say access was anonymous", err)
	}

	_, err = f.git.ForURLWithAuth(srv.URL("private"), wrong).Range(ctx, anyRepo, c1, c2)
	f.wantAuthError(t, err, 2, wrong, right)
	if !strings.Contains(err.Error(), "refused the basic credentials") {
		t.Fatalf("wrong password: %v", err)
	}
	if got := srv.InfoRefs(); got != 2 {
		t.Fatalf("%d ref advertisements, want 2: failed credentials are not retried", got)
	}

	p := f.git.ForURLWithAuth(srv.URL("private"), right)
	r, err := p.Range(ctx, anyRepo, c1, c2)
	if err != nil || r.Status != commits.Ahead || !slices.Equal(shas(r.Commits), []string{c2}) {
		t.Fatalf("Range: %+v, %v", r, err)
	}
	if c, err := p.Commit(ctx, anyRepo, c1); err != nil || c.Message != "c1" {
		t.Fatalf("Commit: %+v, %v", c, err)
	}
	if data, err := p.File(ctx, anyRepo, c1, "exporter-info.json", 100); err != nil || string(data) != "{}" {
		t.Fatalf("File: %q, %v", data, err)
	}
	if s := f.calls.get(commits.CallSuccess); s != 1 {
		t.Fatalf("%d successful fetches, want 1", s)
	}

	// Credentials in the URL are dropped, as before; the secret's are used. One mirror serves the URL.
	withURLCreds := strings.Replace(srv.URL("private"), "http://", "http://"+user+":"+password+"@", 1)
	c3 := f.repo.Commit("c3", nil)
	_, err = f.git.ForURL(withURLCreds).Commit(ctx, anyRepo, c3)
	f.wantAuthError(t, err, 3, right)
	if _, err := f.git.ForURLWithAuth(withURLCreds, right).Commit(ctx, anyRepo, c3); err != nil {
		t.Fatal(err)
	}
	if entries, err := os.ReadDir(f.cache); err != nil || len(entries) != 1 {
		t.Fatalf("cache directory holds %v (%v), want one mirror", entries, err)
	}
}

func TestHTTPBearerAuth(t *testing.T) {
	root := t.TempDir()
	srv := gittest.NewHTTPServerBearer(t, root, token)
	f := newAuthFixture(t, root)
	c1 := f.repo.Commit("c1", nil)
	ctx := context.Background()
	right := sourceauth.Auth{BearerToken: token}

	for i, wrong := range []sourceauth.Auth{
		{BearerToken: "not-the-token-5555"},
		{Username: user, Password: token}, // the token as a basic password is not a bearer token
	} {
		_, err := f.git.ForURLWithAuth(srv.URL("private"), wrong).Commit(ctx, anyRepo, c1)
		f.wantAuthError(t, err, i+1, wrong, right)
	}
	// A bearer token wins over basic credentials in the same secret, as in Flux.
	both := sourceauth.Auth{BearerToken: token, Username: user, Password: password}
	if c, err := f.git.ForURLWithAuth(srv.URL("private"), both).Commit(ctx, anyRepo, c1); err != nil || c.SHA != c1 {
		t.Fatalf("Commit: %+v, %v", c, err)
	}
}

func TestHTTPSWithCustomCA(t *testing.T) {
	root := t.TempDir()
	srv := gittest.NewServer(t, root, gittest.ServerOptions{TLS: true, Username: user, Password: password})
	f := newAuthFixture(t, root)
	c1 := f.repo.Commit("c1", nil)
	ctx := context.Background()

	noCA := sourceauth.Auth{Username: user, Password: password}
	_, err := f.git.ForURLWithAuth(srv.URL("private"), noCA).Commit(ctx, anyRepo, c1)
	if !errors.Is(err, git.ErrUntrustedCertificate) || errors.Is(err, commits.ErrNotFound) {
		t.Fatalf("without the CA: %v, want git.ErrUntrustedCertificate", err)
	}
	noSecrets(t, err.Error(), noCA)
	if got := f.calls.get(commits.CallError); got != 1 {
		t.Fatalf("%d failed calls, want 1: an untrusted certificate is not retried", got)
	}

	withCA := sourceauth.Auth{Username: user, Password: password, CAFile: srv.CACert()}
	if c, err := f.git.ForURLWithAuth(srv.URL("private"), withCA).Commit(ctx, anyRepo, c1); err != nil || c.SHA != c1 {
		t.Fatalf("with the CA: %+v, %v", c, err)
	}
}

// sshFixture is a repository served over SSH to one authorized key.
type sshFixture struct {
	*authFixture
	srv  *gittest.SSHServer
	auth sourceauth.Auth
}

func newSSHFixture(t *testing.T, keyPassphrase string) *sshFixture {
	t.Helper()
	root := t.TempDir()
	identity, public := gittest.NewSSHKey(t, keyPassphrase)
	srv := gittest.NewSSHServer(t, root, public)
	return &sshFixture{
		authFixture: newAuthFixture(t, root),
		srv:         srv,
		auth:        sourceauth.Auth{SSHIdentity: identity, SSHKnownHosts: srv.KnownHosts(), Password: keyPassphrase},
	}
}

func TestSSH(t *testing.T) {
	f := newSSHFixture(t, "")
	ctx := context.Background()
	c1 := f.repo.Commit("c1", map[string]string{"exporter-info.json": `{"a":1}`})
	f.repo.Git("checkout", "-q", "-b", "side")
	s1 := f.repo.Commit("s1", nil)
	f.repo.Git("checkout", "-q", "main")
	c2 := f.repo.Commit("c2", nil)
	merge := f.repo.Merge("side", "merge side")

	p := f.git.ForURLWithAuth(f.srv.URL("private"), f.auth)
	r, err := p.Range(ctx, anyRepo, c1, merge)
	if err != nil || r.Status != commits.Ahead || !slices.Equal(shas(r.Commits), []string{c2, merge}) {
		t.Fatalf("Range: %+v, %v", r, err)
	}
	if c, err := p.Commit(ctx, anyRepo, merge); err != nil || !slices.Equal(c.Parents, []string{c2, s1}) {
		t.Fatalf("Commit: %+v, %v", c, err)
	}
	if data, err := p.File(ctx, anyRepo, c1, "exporter-info.json", 100); err != nil || string(data) != `{"a":1}` {
		t.Fatalf("File: %q, %v", data, err)
	}
	if f.srv.UploadPacks() != 1 || f.calls.get(commits.CallSuccess) != 1 {
		t.Fatalf("%d upload-packs, %d fetches; want 1 and 1", f.srv.UploadPacks(), f.calls.get(commits.CallSuccess))
	}

	// A new commit is fetched over SSH again.
	c3 := f.repo.Commit("c3", nil)
	if c, err := p.Commit(ctx, anyRepo, c3); err != nil || c.SHA != c3 {
		t.Fatalf("Commit after push: %+v, %v", c, err)
	}
	if f.srv.UploadPacks() != 2 {
		t.Fatalf("%d upload-packs, want 2", f.srv.UploadPacks())
	}
}

func TestSSHEncryptedIdentity(t *testing.T) {
	f := newSSHFixture(t, passphrase)
	c1 := f.repo.Commit("c1", nil)
	if c, err := f.git.ForURLWithAuth(f.srv.URL("private"), f.auth).Commit(context.Background(), anyRepo, c1); err != nil || c.SHA != c1 {
		t.Fatalf("Commit: %+v, %v", c, err)
	}
}

func TestSSHHostKeyNotTrusted(t *testing.T) {
	f := newSSHFixture(t, "")
	ctx := context.Background()
	c1 := f.repo.Commit("c1", nil)
	other := gittest.NewSSHServer(t, t.TempDir())

	for i, tc := range []struct {
		name       string
		knownHosts []byte
		want       string
	}{
		// Another key for this address: a changed host key, or someone in between.
		{"mismatch", []byte(strings.Replace(string(other.KnownHosts()), port(t, other.Addr()), port(t, f.srv.Addr()), 1)), "key mismatch"},
		// Keys for another address only: an unknown host.
		{"unknown host", other.KnownHosts(), "key is unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth := f.auth
			auth.SSHKnownHosts = tc.knownHosts
			_, err := f.git.ForURLWithAuth(f.srv.URL("private"), auth).Commit(ctx, anyRepo, c1)
			if !errors.Is(err, git.ErrHostKey) || errors.Is(err, git.ErrAuthFailed) || errors.Is(err, commits.ErrNotFound) ||
				!strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), f.srv.Addr()) {
				t.Fatalf("got %v, want git.ErrHostKey saying %q", err, tc.want)
			}
			noSecrets(t, err.Error(), f.auth)
			if got := f.calls.get(commits.CallError); got != i+1 {
				t.Fatalf("%d failed calls, want %d: a host key error is not retried", got, i+1)
			}
		})
	}
	if f.srv.Handshakes() != 0 || f.srv.UploadPacks() != 0 {
		t.Fatalf("%d handshakes, %d upload-packs with an untrusted host", f.srv.Handshakes(), f.srv.UploadPacks())
	}
}

func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return "]:" + p
}

func TestSSHKeyNotAuthorized(t *testing.T) {
	f := newSSHFixture(t, "")
	c1 := f.repo.Commit("c1", nil)
	stranger, _ := gittest.NewSSHKey(t, "")
	auth := sourceauth.Auth{SSHIdentity: stranger, SSHKnownHosts: f.srv.KnownHosts()}
	_, err := f.git.ForURLWithAuth(f.srv.URL("private"), auth).Commit(context.Background(), anyRepo, c1)
	f.wantAuthError(t, err, 1, auth, f.auth)
	if !strings.Contains(err.Error(), "refused the identity") {
		t.Fatalf("got %v", err)
	}
}

func TestUnusableCredentials(t *testing.T) {
	f := newSSHFixture(t, "")
	ctx := context.Background()
	c1 := f.repo.Commit("c1", nil)
	garbled := f.auth
	garbled.SSHIdentity = []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nZ2FyYmxlZCBrZXkgbWF0ZXJpYWwgaGVyZQ==\n-----END OPENSSH PRIVATE KEY-----\n")
	for name, auth := range map[string]sourceauth.Auth{
		"basic credentials over ssh":      {Username: user, Password: password},
		"identity without known_hosts":    {SSHIdentity: f.auth.SSHIdentity},
		"identity that does not parse":    garbled,
		"known_hosts that does not parse": {SSHIdentity: f.auth.SSHIdentity, SSHKnownHosts: []byte("nonsense " + password)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := f.git.ForURLWithAuth(f.srv.URL("private"), auth).Commit(ctx, anyRepo, c1)
			if !errors.Is(err, sourceauth.ErrInvalid) || errors.Is(err, commits.ErrNotFound) {
				t.Fatalf("got %v, want sourceauth.ErrInvalid", err)
			}
			noSecrets(t, err.Error(), auth, garbled)
		})
	}
	if f.srv.Handshakes()+f.srv.AuthFailures() != 0 || f.calls.get(commits.CallError) != 0 {
		t.Fatal("unusable credentials reached the server")
	}
	// Credentials that do not apply to the scheme are ignored: git:// and file:// take none.
	if c, err := f.git.ForURLWithAuth("file://"+f.repo.Dir, sourceauth.Auth{Username: user, Password: password}).Commit(ctx, anyRepo, c1); err != nil || c.SHA != c1 {
		t.Fatalf("file:// with credentials: %+v, %v", c, err)
	}
}

// TestCredentialsDoNotShareFetches holds a fetch with wrong credentials at the server while lookups
// with the right credentials and without any start: each gets the answer its own credentials earn.
func TestCredentialsDoNotShareFetches(t *testing.T) {
	root := t.TempDir()
	srv := gittest.NewHTTPServerAuth(t, root, user, password)
	f := newAuthFixture(t, root)
	c1 := f.repo.Commit("c1", nil)
	ctx := context.Background()
	right := sourceauth.Auth{Username: user, Password: password}
	wrong := sourceauth.Auth{Username: user, Password: "wrong-password-1234"}

	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	srv.BeforeRequest(func(r *http.Request) {
		if _, pass, _ := r.BasicAuth(); pass == wrong.Password {
			once.Do(func() { close(held) })
			<-release
		}
	})
	type result struct {
		name string
		err  error
	}
	results := make(chan result, 3)
	lookup := func(name string, auth sourceauth.Auth) {
		_, err := f.git.ForURLWithAuth(srv.URL("private"), auth).Commit(ctx, anyRepo, c1)
		results <- result{name, err}
	}
	go lookup("wrong", wrong)
	<-held
	go lookup("right", right)
	go lookup("anonymous", sourceauth.Auth{})
	time.Sleep(200 * time.Millisecond) // time enough to join the held fetch, were it shared
	close(release)

	got := map[string]error{}
	for range 3 {
		r := <-results
		got[r.name] = r.err
	}
	if got["right"] != nil {
		t.Fatalf("right credentials: %v", got["right"])
	}
	if !errors.Is(got["wrong"], git.ErrAuthFailed) {
		t.Fatalf("wrong credentials: %v", got["wrong"])
	}
	// The anonymous lookup ran after one of the others: refused if it fetched, answered from the
	// mirror if the right credentials had fetched c1 first. It never shares the wrong fetch's flight.
	if err := got["anonymous"]; err != nil && !strings.Contains(err.Error(), "access was anonymous") {
		t.Fatalf("anonymous: %v", err)
	}
	for _, err := range got {
		if err != nil {
			noSecrets(t, err.Error(), right, wrong)
		}
	}

	// A later lookup with the wrong credentials fails again on its own; one with the right ones does not
	// need the server.
	c2 := f.repo.Commit("c2", nil)
	srv.BeforeRequest(nil)
	if _, err := f.git.ForURLWithAuth(srv.URL("private"), wrong).Commit(ctx, anyRepo, c2); !errors.Is(err, git.ErrAuthFailed) {
		t.Fatalf("wrong credentials again: %v", err)
	}
	if _, err := f.git.ForURLWithAuth(srv.URL("private"), right).Commit(ctx, anyRepo, c2); err != nil {
		t.Fatalf("right credentials after a failed fetch: %v", err)
	}
}
