package tracker

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/flux"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
)

// Provider kinds named by the provider annotation.
const (
	ProviderGitHub = "github"
	ProviderGit    = "git"
)

// GitProvider binds the plain-git provider to one clone URL.
type GitProvider interface {
	ForURL(cloneURL string) commits.Provider
}

// Providers picks the commit provider for a Deployment's repository: the GitHub API for GitHub hosts, plain git
// for the rest, or what the provider annotation asks for.
type Providers struct {
	// GitHub serves GitHubHosts (github.com and any GitHub Enterprise host); nil disables it.
	GitHub      commits.Provider
	GitHubHosts []string
	// Git serves every other repository; nil disables it.
	Git GitProvider
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
func (p Providers) For(d flux.Deployment) (Source, error) {
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
	return Source{Provider: p.Git.ForURL(raw), Repository: repo, Kind: ProviderGit}, nil
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
