package commits_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
)

func TestChooseProvider(t *testing.T) {
	hosts := []string{"github.com", "ghe.example.com"}
	for _, tt := range []struct{ raw, annotation, want string }{
		{"https://github.com/acme/app", "", commits.ProviderGitHub},
		{"ssh://git@ghe.example.com/acme/app.git", "", commits.ProviderGitHub},
		{"https://gitlab.com/acme/app.git", "", commits.ProviderGit},
		{"https://github.com/acme/app", "Git", commits.ProviderGit},
		{"https://gitlab.com/acme/app.git", "github", commits.ProviderGitHub},
		{"/srv/git/app", "", commits.ProviderGit},
	} {
		kind, err := commits.ParseProviderAnnotation(tt.annotation)
		if err != nil {
			t.Fatalf("annotation %q: %v", tt.annotation, err)
		}
		if got := commits.ChooseProvider(tt.raw, kind, hosts); got != tt.want {
			t.Errorf("ChooseProvider(%q, %q) = %q, want %q", tt.raw, tt.annotation, got, tt.want)
		}
	}
	if _, err := commits.ParseProviderAnnotation("gitlab"); err == nil || !strings.Contains(err.Error(), `"gitlab"`) {
		t.Errorf("annotation gitlab: %v; want an error naming it", err)
	}
}

func TestSchemeAndOrigin(t *testing.T) {
	for raw, want := range map[string]string{
		"HTTPS://github.com/a/b": "https", "git@github.com:a/b.git": "ssh", "ext::sh -c x": "ext::",
		"/srv/git/app": "", "file:///srv/git/app": "file", "git://host/a": "git",
	} {
		if got := commits.Scheme(raw); got != want {
			t.Errorf("Scheme(%q) = %q, want %q", raw, got, want)
		}
	}
	for _, tt := range []struct {
		a, b string
		same bool
	}{
		{"https://github.com/a/b", "https://GITHUB.com:443/c/d", true},
		{"git@github.com:a/b.git", "ssh://git@github.com:22/a/b.git", true},
		{"https://github.com/a/b", "http://github.com/a/b", false},
		{"https://github.com/a/b", "https://github.com.evil.example/a/b", false},
		{"https://github.com/a/b", "/srv/git/b", false},
	} {
		if got := commits.SameOrigin(tt.a, tt.b); got != tt.same {
			t.Errorf("SameOrigin(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.same)
		}
	}
}

// The URL decisions never panic; origins compare alike both ways; a repository's identity never carries the
// credentials of its URL.
func FuzzSameOrigin(f *testing.F) {
	for _, s := range []string{"https://github.com/a/b", "git@host:a/b", "ssh://u@h:2222/x", "file:///x", "::", "a:b@c:d", "http://[::1]:80/x", "https://bot:s3cret@git.example.com/a/b.git"} {
		f.Add(s, "https://github.com/a/b")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		_ = commits.CarriesCredentials(a)
		if commits.SameOrigin(a, b) != commits.SameOrigin(b, a) {
			t.Errorf("SameOrigin(%q, %q) differs from SameOrigin(%q, %q)", a, b, b, a)
		}
		repo, err := commits.ParseGitRepository(a, false)
		if err != nil {
			return
		}
		if commits.Scheme(a) == "" {
			t.Errorf("ParseGitRepository(%q, false) accepted a local path", a)
		}
		if u, perr := url.Parse(repo.URL); perr == nil && u.User != nil {
			t.Errorf("ParseGitRepository(%q) = URL %q with credentials", a, repo.URL)
		}
	})
}
