package tracker

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/flux"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/sourceauth"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
)

// Provider kinds named by the provider annotation.
const (
	ProviderGitHub = "github"
	ProviderGit    = "git"
)

// GitProvider binds the plain-git provider to one clone URL and its credentials.
type GitProvider interface {
	ForURLWithAuth(cloneURL string, auth sourceauth.Auth) commits.Provider
}

// SecretReader returns the data of the Secret namespace/name.
type SecretReader func(ctx context.Context, namespace, name string) (map[string][]byte, error)

// Providers picks the commit provider for a Deployment's repository: the GitHub API for GitHub hosts, plain git
// for the rest, or what the provider annotation asks for.
type Providers struct {
	// GitHub serves GitHubHosts (github.com and any GitHub Enterprise host); nil disables it.
	GitHub      commits.Provider
	GitHubHosts []string
	// Git serves every other repository; nil disables it.
	Git GitProvider
	// Secrets, when set, reads a source's secretRef for plain-git credentials (--git-read-source-secrets);
	// without it every plain-git repository is read anonymously.
	Secrets SecretReader
}

// Source is where a Deployment's commits are looked up.
type Source struct {
	Provider   commits.Provider
	Repository commits.Repository
	// Kind is ProviderGitHub or ProviderGit.
	Kind string
}

// lookupReason is the error reason counted when a lookup through the source fails.
func (s Source) lookupReason() string {
	if s.Kind == ProviderGit {
		return telemetry.ReasonGit
	}
	return telemetry.ReasonGitHub
}

// For returns the provider and repository identity for d.
func (p Providers) For(ctx context.Context, d flux.Deployment) (Source, error) {
	kind := strings.ToLower(d.Provider)
	if kind != "" && kind != ProviderGitHub && kind != ProviderGit {
		return Source{}, fmt.Errorf("annotation %s: unknown provider %q (want %s or %s)", flux.AnnotationProvider, d.Provider, ProviderGitHub, ProviderGit)
	}
	raw := d.RepositoryURL
	if d.RepositoryOverride != "" {
		if kind != ProviderGit {
			repo, err := commits.ParseRepositoryOverride(d.RepositoryOverride)
			if err != nil {
				return Source{}, fmt.Errorf("annotation %s: %w", flux.AnnotationRepository, err)
			}
			return p.github(repo)
		}
		raw = d.RepositoryOverride
	}
	if raw == "" {
		return Source{}, fmt.Errorf("%s %s/%s: source %s %s/%s not found or has no URL",
			d.Kind, d.Namespace, d.Name, d.SourceKind, d.SourceNamespace, d.SourceName)
	}
	if kind == "" {
		if repo, err := commits.ParseRepositoryURL(raw); err == nil && slices.Contains(p.GitHubHosts, repo.Host) {
			kind = ProviderGitHub
		} else {
			kind = ProviderGit
		}
	}
	if kind == ProviderGitHub {
		repo, err := commits.ParseRepositoryURL(raw)
		if err != nil {
			return Source{}, err
		}
		return p.github(repo)
	}
	if p.Git == nil {
		return Source{}, errors.New("plain git provider disabled: only GitHub repositories are served")
	}
	repo, err := gitRepository(raw)
	if err != nil {
		return Source{}, err
	}
	auth, err := p.gitAuth(ctx, d)
	if err != nil {
		return Source{}, err
	}
	return Source{Provider: p.Git.ForURLWithAuth(raw, auth), Repository: repo, Kind: ProviderGit}, nil
}

// gitAuth reads the credentials in the source's secretRef, when reading them is enabled.
func (p Providers) gitAuth(ctx context.Context, d flux.Deployment) (sourceauth.Auth, error) {
	if p.Secrets == nil || d.SourceSecretName == "" {
		return sourceauth.Auth{}, nil
	}
	data, err := p.Secrets(ctx, d.SourceNamespace, d.SourceSecretName)
	if err != nil {
		return sourceauth.Auth{}, fmt.Errorf("read secret %s/%s of %s %s/%s: %w", d.SourceNamespace, d.SourceSecretName, d.SourceKind, d.SourceNamespace, d.SourceName, err)
	}
	auth, err := sourceauth.FromSecretData(data)
	if err != nil {
		return sourceauth.Auth{}, fmt.Errorf("secret %s/%s: %w", d.SourceNamespace, d.SourceSecretName, err)
	}
	return auth, nil
}

func (p Providers) github(repo commits.Repository) (Source, error) {
	if p.GitHub == nil {
		return Source{}, fmt.Errorf("no commit provider for %s: the GitHub provider is disabled", repo)
	}
	if !slices.Contains(p.GitHubHosts, repo.Host) {
		return Source{}, fmt.Errorf("no commit provider for host %s: GitHub is served for %s", repo.Host, strings.Join(p.GitHubHosts, ", "))
	}
	return Source{Provider: p.GitHub, Repository: repo, Kind: ProviderGitHub}, nil
}

// gitRepository names a plain-git repository by its URL without credentials.
func gitRepository(raw string) (commits.Repository, error) {
	repo, err := commits.ParseRepositoryURL(raw)
	if err == nil {
		return repo, nil
	}
	u, perr := url.Parse(raw)
	if perr != nil || u.Host == "" || strings.Trim(u.Path, "/") == "" {
		return commits.Repository{}, err
	}
	switch u.Scheme {
	case "http", "https", "ssh", "git":
	default:
		return commits.Repository{}, err
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	path := strings.TrimSuffix(strings.Trim(u.Path, "/"), ".git")
	return commits.Repository{Host: strings.ToLower(u.Hostname()), Name: path[strings.LastIndex(path, "/")+1:], URL: u.String()}, nil
}
