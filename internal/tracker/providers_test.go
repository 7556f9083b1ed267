package tracker_test

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/git"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/flux"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/sourceauth"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// namedProvider is a provider that only says which it is.
type namedProvider struct {
	commits.Provider
	name string
}

type gitProviders struct{}

func (gitProviders) ForRef(url string, auth sourceauth.Auth, _ git.Ref) commits.Provider {
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

// countingSecrets serves one Secret and counts the reads.
type countingSecrets struct {
	data  map[string][]byte
	reads int
}

func (c *countingSecrets) read(_ context.Context, ns, name string) (map[string][]byte, error) {
	c.reads++
	if ns+"/"+name != "flux-system/app-auth" {
		return nil, errors.New("secret " + name + " not found")
	}
	return c.data, nil
}

func TestProvidersWithholdCredentialsFromOtherHosts(t *testing.T) {
	source := flux.Deployment{RepositoryURL: "https://git.example.com/team/app.git", Provider: "git",
		SourceKind: "GitRepository", SourceNamespace: "flux-system", SourceName: "app", SourceSecretName: "app-auth"}
	tests := []struct {
		name, override string
		withheld       bool
	}{
		{"another host", "https://attacker.example.net/team/app.git", true},
		{"another host with the source's host as user name", "https://git.example.com@attacker.example.net/app.git", true},
		{"another port", "https://git.example.com:8443/team/app.git", true},
		{"another scheme", "ssh://git@git.example.com/team/app.git", true},
		{"scp-like on the same host is ssh", "git@git.example.com:team/app.git", true},
		{"same origin, other repository", "https://GIT.example.com:443/team/other.git", false},
		{"no override", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secrets := &countingSecrets{data: map[string][]byte{"username": []byte("bot"), "password": []byte("s3cret-password")}}
			var logs strings.Builder
			p := tracker.Providers{GitHubHosts: []string{"github.com"}, Git: gitProviders{}, Secrets: secrets.read,
				Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
			d := source
			d.RepositoryOverride = tt.override
			src, err := p.For(t.Context(), d)
			if err != nil {
				t.Fatal(err)
			}
			url := cmp.Or(tt.override, source.RepositoryURL)
			want := "git " + url + " as bot"
			if tt.withheld {
				want = "git " + url
			}
			if got := src.Provider.(namedProvider).name; got != want {
				t.Errorf("provider = %q, want %q", got, want)
			}
			if src.CredentialsWithheld != tt.withheld {
				t.Errorf("CredentialsWithheld = %v, want %v", src.CredentialsWithheld, tt.withheld)
			}
			if wantReads := map[bool]int{true: 0, false: 1}[tt.withheld]; secrets.reads != wantReads {
				t.Errorf("secret read %d times, want %d", secrets.reads, wantReads)
			}
			warned := strings.Contains(logs.String(), `"level":"WARN"`) && strings.Contains(logs.String(), "credentials are withheld")
			if warned != tt.withheld {
				t.Errorf("warning logged = %v, want %v: %s", warned, tt.withheld, logs.String())
			}
			if strings.Contains(logs.String(), "s3cret") {
				t.Errorf("log holds the secret: %s", logs.String())
			}
		})
	}
}

func TestProvidersLogWithheldOverrideRedacted(t *testing.T) {
	secrets := &countingSecrets{data: map[string][]byte{"bearerToken": []byte("token-in-secret")}}
	var logs strings.Builder
	p := tracker.Providers{Git: gitProviders{}, Secrets: secrets.read, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	d := flux.Deployment{RepositoryURL: "https://u:canary-source@git.example.com/a.git?token=canary-source-query", Provider: "git",
		RepositoryOverride: "https://u:canary-override@other.example.com/a.git", SourceNamespace: "flux-system", SourceSecretName: "app-auth"}
	src, err := p.For(t.Context(), d)
	if err != nil || !src.CredentialsWithheld {
		t.Fatalf("For = %+v, %v; want credentials withheld", src, err)
	}
	for _, canary := range []string{"canary-source", "canary-override"} {
		if strings.Contains(logs.String(), canary) {
			t.Errorf("log holds %s: %s", canary, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "other.example.com") {
		t.Errorf("log does not name the host: %s", logs.String())
	}
}

func TestProvidersRefuseUnsafeURLs(t *testing.T) {
	basic := map[string][]byte{"username": []byte("bot"), "password": []byte("s3cret-password")}
	bearer := map[string][]byte{"bearerToken": []byte("s3cret-token")}
	tests := []struct {
		name   string
		url    string
		secret map[string][]byte
		local  bool
		// want is the provider's name, or "" for a refusal.
		want string
	}{
		{name: "file URL", url: "file:///srv/repo"},
		{name: "absolute path", url: "/srv/repo"},
		{name: "relative path", url: "./repo"},
		{name: "path with a colon after a slash", url: "./a:b"},
		{name: "unknown scheme", url: "ftp://git.example.com/a/b.git"},
		{name: "ext remote helper", url: "ext::sh"},
		{name: "fd remote helper", url: "fd::0"},
		{name: "basic credentials over http", url: "http://git.example.com/a/b.git", secret: basic},
		{name: "bearer token over http", url: "http://git.example.com/a/b.git", secret: bearer},
		{name: "http without credentials", url: "http://git.example.com/a/b.git", want: "git http://git.example.com/a/b.git"},
		{name: "basic credentials over https", url: "https://git.example.com/a/b.git", secret: basic, want: "git https://git.example.com/a/b.git as bot"},
		{name: "git protocol is anonymous", url: "git://git.example.com/a/b.git", secret: basic, want: "git git://git.example.com/a/b.git"},
		{name: "file URL allowed in tests", url: "file:///srv/repo.git", local: true, want: "git file:///srv/repo.git"},
		{name: "local path allowed in tests", url: "/srv/repo", local: true, want: "git /srv/repo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secrets := &countingSecrets{data: tt.secret}
			p := tracker.Providers{Git: gitProviders{}, AllowLocal: tt.local}
			d := flux.Deployment{RepositoryURL: tt.url, Provider: "git"}
			if tt.secret != nil {
				p.Secrets, d.SourceNamespace, d.SourceSecretName = secrets.read, "flux-system", "app-auth"
			}
			src, err := p.For(t.Context(), d)
			if tt.want == "" {
				if !errors.Is(err, tracker.ErrUnsafeURL) {
					t.Fatalf("For = %+v, %v; want ErrUnsafeURL", src, err)
				}
				if got := tracker.SourceErrorReason(err); got != telemetry.ReasonUnsafeURL {
					t.Errorf("reason = %q, want %q", got, telemetry.ReasonUnsafeURL)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error holds the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := src.Provider.(namedProvider).name; got != tt.want {
				t.Errorf("provider = %q, want %q", got, tt.want)
			}
			if tt.name == "git protocol is anonymous" && secrets.reads != 0 {
				t.Errorf("secret read %d times for git://, which carries no credentials", secrets.reads)
			}
		})
	}
	if got := tracker.SourceErrorReason(errors.New("bad URL")); got != telemetry.ReasonRepositoryURL {
		t.Errorf("reason of another error = %q, want %q", got, telemetry.ReasonRepositoryURL)
	}
}
