package app_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/git/gittest"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/flux"
)

// authHeaders records the Authorization headers a git server receives.
type authHeaders struct {
	mu   sync.Mutex
	seen []string
}

func (a *authHeaders) record(r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if h := r.Header.Get("Authorization"); h != "" {
		a.seen = append(a.seen, h)
	}
}

func (a *authHeaders) get() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.seen...)
}

// TestAnnotationCannotRedirectCredentials: a repository annotation that points at another host reads it
// anonymously, so whoever can annotate a Kustomization never receives its source's Secret; an annotation on
// the source's own origin still uses it.
func TestAnnotationCannotRedirectCredentials(t *testing.T) {
	s := newScenario(t)
	root := t.TempDir()
	repo := gittest.NewRepo(t, filepath.Join(root, "manifests"))
	repo.Now, repo.Step = s.t0, 10*time.Second
	// The source's own host: HTTPS, basic credentials required.
	private := gittest.NewServer(t, root, gittest.ServerOptions{TLS: true, Username: "bot", Password: canaryPassword})
	// Another host, chosen by whoever annotates: it serves the same repository to anyone and keeps what it is sent.
	other := gittest.NewHTTPServer(t, root)
	var sent authHeaders
	other.BeforeRequest(sent.record)

	s.createGitSource("private", private.URL("source-repository"),
		map[string][]byte{"username": []byte("bot"), "password": []byte(canaryPassword), "ca.crt": private.CACert()})
	c0 := repo.Commit("base", map[string]string{"app.yaml": "v0"})
	s.createKustomizationOn("redirected", "private", map[string]string{
		flux.AnnotationRepository: other.URL("manifests"), flux.AnnotationProvider: "git"}, c0)
	s.createKustomizationOn("same-origin", "private", map[string]string{
		flux.AnnotationRepository: private.URL("manifests"), flux.AnnotationProvider: "git"}, c0)
	tr := s.startTracker("--git-read-source-secrets", "--exporter-info-path=")
	for _, name := range []string{"redirected", "same-origin"} {
		eventually(t, 20*time.Second, name+" baseline", func() bool { return s.ledgerRevision(name) != "" })
	}

	c1 := repo.Commit("one", map[string]string{"app.yaml": "v1"})
	s.apply("redirected", "main@sha1:"+c1, s.at(60))
	s.apply("same-origin", "main@sha1:"+c1, s.at(70))
	eventually(t, 20*time.Second, "both Kustomizations record c1", func() bool { return len(tr.Applied()) >= 2 })
	for _, c := range tr.Applied() {
		if c.Commit != c1 {
			t.Errorf("%s recorded %s, want %s", c.Name, c.Commit, c1)
		}
	}
	// The other host was read, anonymously; the source's host got the credentials (it refuses anyone else).
	if other.UploadPacks() == 0 {
		t.Fatal("the annotation's host was never fetched from: the test proves nothing")
	}
	if got := sent.get(); len(got) != 0 {
		t.Errorf("the annotation's host received credentials: %q", got)
	}
	if private.UploadPacks() == 0 {
		t.Error("the same-origin annotation was not fetched with the source's credentials")
	}
	if !strings.Contains(tr.String(), `"level":"WARN","msg":"repository annotation points away from the source's host`) {
		t.Errorf("no warning that the credentials were withheld:\n%.3000s", tr.String())
	}
	if got := tr.Metric(errorsTotal, `reason="credentials_withheld"`); got < 1 {
		t.Errorf("credentials_withheld errors = %v, want at least 1", got)
	}
	if strings.Contains(tr.String(), canaryPassword) {
		t.Errorf("the logs hold the Secret's password")
	}
}
