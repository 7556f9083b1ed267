package tracker_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/flux"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/sourceauth"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// namedProvider is a provider that only says which it is.
type namedProvider struct {
	commits.Provider
	name string
}

type gitProviders struct{}

func (gitProviders) ForURLWithAuth(url string, auth sourceauth.Auth) commits.Provider {
	name := "git " + url
	if !auth.Empty() {
		name += " as " + auth.Username
	}
	return namedProvider{name: name}
}

func TestProvidersFor(t *testing.T) {
	p := tracker.Providers{GitHub: namedProvider{name: "github"}, GitHubHosts: []string{"github.com", "ghe.example.com"}, Git: gitProviders{}}
	tests := []struct {
		name     string
		d        flux.Deployment
		provider string
		repo     string
		err      string
	}{
		{name: "github.com", d: flux.Deployment{RepositoryURL: "ssh://git@github.com/acme/app.git"}, provider: "github", repo: "https://github.com/acme/app"},
		{name: "enterprise", d: flux.Deployment{RepositoryURL: "https://ghe.example.com/acme/app"}, provider: "github", repo: "https://ghe.example.com/acme/app"},
		{name: "other host is plain git", d: flux.Deployment{RepositoryURL: "https://git.example.com/team/app.git"}, provider: "git https://git.example.com/team/app.git", repo: "https://git.example.com/team/app"},
		{name: "one path segment", d: flux.Deployment{RepositoryURL: "http://127.0.0.1:8080/manifests.git"}, provider: "git http://127.0.0.1:8080/manifests.git", repo: "http://127.0.0.1:8080/manifests.git"},
		{name: "credentials dropped from the identity", d: flux.Deployment{RepositoryURL: "https://user:s3cret@git.example.com/a/b/c.git"}, provider: "git https://user:s3cret@git.example.com/a/b/c.git", repo: "https://git.example.com/a/b/c.git"},
		{name: "override owner/name", d: flux.Deployment{RepositoryURL: "https://mirror.example.com/x.git", RepositoryOverride: "acme/app"}, provider: "github", repo: "https://github.com/acme/app"},
		{name: "provider annotation forces git on github.com", d: flux.Deployment{RepositoryURL: "https://github.com/acme/app.git", Provider: "git"}, provider: "git https://github.com/acme/app.git", repo: "https://github.com/acme/app"},
		{name: "git with override URL", d: flux.Deployment{RepositoryURL: "https://x/y.git", RepositoryOverride: "https://git.example.com/a/b.git", Provider: "Git"}, provider: "git https://git.example.com/a/b.git", repo: "https://git.example.com/a/b"},
		{name: "github forced on unknown host", d: flux.Deployment{RepositoryURL: "https://git.example.com/a/b.git", Provider: "github"}, err: "no commit provider for host git.example.com"},
		{name: "unknown provider", d: flux.Deployment{RepositoryURL: "https://github.com/a/b", Provider: "svn"}, err: `unknown provider "svn"`},
		{name: "no URL", d: flux.Deployment{Kind: "Kustomization", Namespace: "n", Name: "k", SourceKind: "GitRepository", SourceNamespace: "n", SourceName: "s"}, err: "source GitRepository n/s not found or has no URL"},
		{name: "bad override", d: flux.Deployment{RepositoryURL: "https://github.com/a/b", RepositoryOverride: "nope"}, err: "annotation flux-commit-tracker.io/repository"},
		{name: "unusable URL", d: flux.Deployment{RepositoryURL: "file:///srv/repo"}, err: "file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := p.For(t.Context(), tt.d)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want one containing %q", err, tt.err)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error leaks credentials: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := src.Provider.(namedProvider).name; got != tt.provider {
				t.Errorf("provider = %q, want %q", got, tt.provider)
			}
			if src.Repository.String() != tt.repo {
				t.Errorf("repository = %q, want %q", src.Repository.String(), tt.repo)
			}
			if wantKind := strings.Fields(tt.provider)[0]; src.Kind != wantKind {
				t.Errorf("kind = %q, want %q", src.Kind, wantKind)
			}
		})
	}
	if _, err := (tracker.Providers{GitHubHosts: []string{"github.com"}}).For(t.Context(), flux.Deployment{RepositoryURL: "https://git.example.com/a/b"}); err == nil {
		t.Error("plain git served with the git provider disabled")
	}
}

func TestProvidersReadSourceSecrets(t *testing.T) {
	d := flux.Deployment{RepositoryURL: "https://git.example.com/team/app.git", SourceKind: "GitRepository", SourceNamespace: "flux-system", SourceName: "app", SourceSecretName: "app-auth"}
	secrets := map[string]map[string][]byte{"flux-system/app-auth": {"username": []byte("bot"), "password": []byte("s3cret")}}
	read := func(_ context.Context, ns, name string) (map[string][]byte, error) {
		data, ok := secrets[ns+"/"+name]
		if !ok {
			return nil, errors.New("secret " + name + " not found")
		}
		return data, nil
	}
	with := tracker.Providers{GitHubHosts: []string{"github.com"}, Git: gitProviders{}, Secrets: read}
	src, err := with.For(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	if got := src.Provider.(namedProvider).name; got != "git https://git.example.com/team/app.git as bot" {
		t.Errorf("provider = %q, want one with the secret's credentials", got)
	}
	// Without --git-read-source-secrets the secret is not read.
	src, err = tracker.Providers{GitHubHosts: []string{"github.com"}, Git: gitProviders{}}.For(t.Context(), d)
	if err != nil || src.Provider.(namedProvider).name != "git https://git.example.com/team/app.git" {
		t.Errorf("anonymous provider = %v, %v", src.Provider, err)
	}
	// A missing or invalid secret is a clear error that does not leak its content.
	d.SourceSecretName = "missing"
	if _, err := with.For(t.Context(), d); err == nil || !strings.Contains(err.Error(), "flux-system/missing") {
		t.Errorf("missing secret: %v", err)
	}
	secrets["flux-system/bad"] = map[string][]byte{"password": []byte("s3cret")}
	d.SourceSecretName = "bad"
	if _, err := with.For(t.Context(), d); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("invalid secret: %v", err)
	}
}
