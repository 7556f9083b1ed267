package git

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/git/gittest"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/redact"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/sourceauth"
)

func TestNewAccess(t *testing.T) {
	identity, _ := gittest.NewSSHKey(t, "")
	knownHosts := []byte("example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
	sshKey := sourceauth.Auth{SSHIdentity: identity, SSHKnownHosts: knownHosts}
	basic := sourceauth.Auth{Username: "u", Password: "secret-pass", CAFile: []byte("ca")}
	for _, tc := range []struct {
		url      string
		auth     sourceauth.Auth
		kind     string
		user     string // ssh user
		caBundle bool
	}{
		{url: "https://example.com/o/r", auth: sourceauth.Auth{}, kind: "anonymous"},
		{url: "https://example.com/o/r", auth: basic, kind: "basic", caBundle: true},
		{url: "http://example.com/o/r", auth: basic, kind: "basic"}, // no TLS, no CA
		{url: "https://example.com/o/r", auth: sourceauth.Auth{BearerToken: "tok-12345", Username: "u", Password: "p"}, kind: "bearer"},
		{url: "https://example.com/o/r", auth: sourceauth.Auth{CAFile: []byte("ca")}, kind: "anonymous", caBundle: true},
		{url: "https://example.com/o/r", auth: sshKey, kind: "anonymous"}, // an identity does nothing over HTTPS
		{url: "ssh://example.com/o/r", auth: sshKey, kind: "ssh", user: "git"},
		{url: "ssh://deploy@example.com:2222/o/r", auth: sshKey, kind: "ssh", user: "deploy"},
		{url: "deploy@example.com:o/r", auth: sshKey, kind: "ssh", user: "deploy"},
		{url: "git://example.com/o/r", auth: basic, kind: "anonymous"},
	} {
		t.Run(tc.url+" "+tc.kind, func(t *testing.T) {
			a, err := newAccess(tc.url, tc.auth, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if a.kind != tc.kind || (len(a.caBundle) > 0) != tc.caBundle {
				t.Fatalf("kind %s, CA bundle %t", a.kind, len(a.caBundle) > 0)
			}
			if wantKey := tc.url + "\x00" + tc.auth.Fingerprint(); tc.auth.Empty() && a.key != tc.url || !tc.auth.Empty() && a.key != wantKey {
				t.Fatalf("key %q", a.key)
			}
			if s, ok := a.method.(*sshAuth); ok && s.user != tc.user {
				t.Fatalf("ssh user %q, want %q", s.user, tc.user)
			}
			if tc.kind == "bearer" {
				if _, ok := a.method.(*githttp.TokenAuth); !ok {
					t.Fatalf("method %T", a.method)
				}
			}
			if a.method != nil && strings.Contains(a.method.String(), "secret-pass") {
				t.Fatalf("method shows the password: %s", a.method)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	identity, _ := gittest.NewSSHKey(t, "")
	auth := sourceauth.Auth{Username: "u", Password: "pw-0123456789", BearerToken: "abc", SSHIdentity: identity}
	a := &access{secrets: secretsOf(auth)}
	keyLine := strings.Split(string(identity), "\n")[1]
	base := errors.New("boom")
	err := a.redact(fmt.Errorf("server said %q and %q: %w", "pw-0123456789", keyLine, base))
	if strings.Contains(err.Error(), "pw-0123456789") || strings.Contains(err.Error(), keyLine) || !errors.Is(err, base) {
		t.Fatalf("redacted: %v", err)
	}
	// Too short to scrub without blanking ordinary words.
	if got := a.redact(errors.New("abc")).Error(); got != "abc" {
		t.Fatalf("short token scrubbed: %q", got)
	}
	if err := a.redact(base); err.Error() != "boom" || !errors.Is(err, base) {
		t.Fatalf("an error without secrets changed: %v", err)
	}
	if a.redact(nil) != nil {
		t.Fatal("redact(nil) is not nil")
	}
	// URLs with credentials that go-git or a server put in a message lose them.
	err = a.redact(fmt.Errorf("fetch https://gitlab-ci-token:canary-in-url@host/r.git?private_token=canary-in-query: %w", base))
	if got := err.Error(); strings.Contains(got, "canary") || !strings.Contains(got, "https://host/r.git") || !errors.Is(err, base) {
		t.Fatalf("URL in error: %v", err)
	}
	// Secrets are masked beyond this access's errors: any text that carries one.
	if got := redact.Text("log line with pw-0123456789"); strings.Contains(got, "pw-0123456789") {
		t.Fatalf("secret not registered: %q", got)
	}
}
