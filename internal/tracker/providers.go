package tracker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/go-logr/logr"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/git"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/flux"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/redact"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/sourceauth"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
)

// ErrUnsafeURL is wrapped by the errors of For for a URL that is not fetched: file:// and local paths (unless
// Providers.AllowLocal), schemes other than https, http, ssh and git, and basic or bearer credentials over plain
// http. SourceErrorReason counts it as telemetry.ReasonUnsafeURL.
var ErrUnsafeURL = errors.New("unsafe repository URL")

// SourceErrorReason is the error reason to count when For fails with err.
func SourceErrorReason(err error) string {
	if errors.Is(err, ErrUnsafeURL) {
		return telemetry.ReasonUnsafeURL
	}
	return telemetry.ReasonRepositoryURL
}

// GitProvider binds the plain-git provider to one clone URL and its credentials.
type GitProvider interface {
	// ForRef serves cloneURL, fetching only the refs ref names (and commits asked for by SHA).
	ForRef(cloneURL string, auth sourceauth.Auth, ref git.Ref) commits.Provider
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
	// without it every plain-git repository is read anonymously. A Secret's credentials go only to its own
	// source's scheme, host and port (the source's spec.url): a repository annotation that points elsewhere is
	// read anonymously, and Source.CredentialsWithheld says so.
	Secrets SecretReader
	// AllowLocal accepts file:// URLs and local paths. Only tests set it: a cluster object must never make the
	// tracker read the tracker's own file system.
	AllowLocal bool
	// Logger gets a warning when credentials are withheld; nil uses the logger controller-runtime puts in the
	// context of a reconcile, or none.
	Logger *slog.Logger
}

// Source is where a Deployment's commits are looked up.
type Source struct {
	Provider   commits.Provider
	Repository commits.Repository
	// Kind is commits.ProviderGitHub or commits.ProviderGit.
	Kind string
	// CredentialsWithheld says the source's Secret was not used because the URL looked up (a repository
	// annotation's) is not at the source's own scheme, host and port: the lookup is anonymous. The tracker counts
	// it as telemetry.ReasonCredentialsWithheld.
	CredentialsWithheld bool
}

// lookupReason is the error reason counted when a lookup through the source fails.
func (s Source) lookupReason() string {
	if s.Kind == commits.ProviderGit {
		return telemetry.ReasonGit
	}
	return telemetry.ReasonGitHub
}

// For returns the provider and repository identity for d.
func (p Providers) For(ctx context.Context, d flux.Deployment) (Source, error) {
	kind, err := commits.ParseProviderAnnotation(d.Provider)
	if err != nil {
		return Source{}, fmt.Errorf("annotation %s: %w", flux.AnnotationProvider, err)
	}
	raw := d.RepositoryURL
	if d.RepositoryOverride != "" {
		if kind != commits.ProviderGit {
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
	if commits.ChooseProvider(raw, kind, p.GitHubHosts) == commits.ProviderGitHub {
		repo, err := commits.ParseRepositoryURL(raw)
		if err != nil {
			return Source{}, err
		}
		return p.github(repo)
	}
	if p.Git == nil {
		return Source{}, errors.New("plain git provider disabled: only GitHub repositories are served")
	}
	local, err := p.checkScheme(raw)
	if err != nil {
		return Source{}, err
	}
	repo, err := commits.ParseGitRepository(raw, local)
	if err != nil {
		return Source{}, err
	}
	withheld := false
	if raw != d.RepositoryURL && p.Secrets != nil && d.SourceSecretName != "" && !commits.SameOrigin(raw, d.RepositoryURL) {
		// Whoever can annotate an object must not receive the source's credentials at a host of their choosing.
		withheld = true
		p.logger(ctx).WarnContext(ctx, "repository annotation points away from the source's host: its credentials are withheld, the repository is read anonymously",
			"annotation", flux.AnnotationRepository, "repository", redact.URL(raw), "source_url", redact.URL(d.RepositoryURL),
			"source", d.SourceKind+" "+d.SourceNamespace+"/"+d.SourceName, "secret", d.SourceNamespace+"/"+d.SourceSecretName)
	}
	var auth sourceauth.Auth
	if !withheld && commits.CarriesCredentials(raw) {
		if auth, err = p.gitAuth(ctx, d); err != nil {
			return Source{}, err
		}
	}
	if (auth.Username != "" || auth.Password != "" || auth.BearerToken != "") && commits.Scheme(raw) == commits.SchemeHTTP {
		// GitRepository has no flag that marks plain http as meant: credentials are never sent in the clear.
		return Source{}, fmt.Errorf("%w: %s is plain http and secret %s/%s holds basic or bearer credentials, which are not sent unencrypted: use https",
			ErrUnsafeURL, redact.URL(raw), d.SourceNamespace, d.SourceSecretName)
	}
	// The source's ref says what its mirror follows; a repository named by annotation follows its default branch.
	var ref git.Ref
	if raw == d.RepositoryURL {
		r := d.SourceRef
		ref = git.Ref{Branch: r.Branch, Tag: r.Tag, SemVer: r.SemVer, Name: r.Name, Commit: r.Commit}
	}
	return Source{Provider: p.Git.ForRef(raw, auth, ref), Repository: repo, Kind: commits.ProviderGit, CredentialsWithheld: withheld}, nil
}

// logger is p.Logger, else the reconcile's logger in ctx, else one that discards.
func (p Providers) logger(ctx context.Context) *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	if l, err := logr.FromContext(ctx); err == nil {
		return slog.New(logr.ToSlogHandler(l))
	}
	return slog.New(slog.DiscardHandler)
}

// gitAuth reads the credentials in the source's secretRef, when reading them is enabled.
func (p Providers) gitAuth(ctx context.Context, d flux.Deployment) (sourceauth.Auth, error) {
	if p.Secrets == nil || d.SourceSecretName == "" {
		return sourceauth.Auth{}, nil
	}
	data, err := p.Secrets(ctx, d.SourceNamespace, d.SourceSecretName)
	if err != nil {
		return sourceauth.Auth{}, fmt.Errorf("read secret %s/%s of %s %s/%s: %w", d.SourceNamespace, d.SourceSecretName, d.SourceKind, d.SourceNamespace, d.SourceName, redact.Error(err))
	}
	auth, err := sourceauth.FromSecretData(data)
	if err != nil {
		return sourceauth.Auth{}, fmt.Errorf("secret %s/%s: %w", d.SourceNamespace, d.SourceSecretName, err)
	}
	return auth, nil
}

// checkScheme refuses URLs that are not fetched from a remote git host; local reports a file:// URL or local
// path that AllowLocal let through.
func (p Providers) checkScheme(raw string) (local bool, err error) {
	switch scheme := commits.Scheme(raw); scheme {
	case commits.SchemeHTTPS, commits.SchemeHTTP, commits.SchemeSSH, commits.SchemeGit:
		return false, nil
	case "file", "":
		if p.AllowLocal {
			return true, nil
		}
		return false, fmt.Errorf("%w: %s is on the tracker's own file system; only remote repositories are read", ErrUnsafeURL, redact.URL(raw))
	default:
		return false, fmt.Errorf("%w: %s: scheme %q is not fetched, want https, http, ssh or git", ErrUnsafeURL, redact.URL(raw), scheme)
	}
}

func (p Providers) github(repo commits.Repository) (Source, error) {
	if p.GitHub == nil {
		return Source{}, fmt.Errorf("no commit provider for %s: the GitHub provider is disabled", repo)
	}
	if !slices.Contains(p.GitHubHosts, repo.Host) {
		return Source{}, fmt.Errorf("no commit provider for host %s: GitHub is served for %s", repo.Host, strings.Join(p.GitHubHosts, ", "))
	}
	return Source{Provider: p.GitHub, Repository: repo, Kind: commits.ProviderGitHub}, nil
}

// RepositoryOf names d's repository as people know it, from its repository annotation or its source's URL,
// without reading credentials: the identity commit statuses and deployments are posted to.
func RepositoryOf(d flux.Deployment) (commits.Repository, error) {
	if d.RepositoryOverride != "" {
		if repo, err := commits.ParseRepositoryOverride(d.RepositoryOverride); err == nil {
			return repo, nil
		}
		return commits.ParseGitRepository(d.RepositoryOverride, false)
	}
	if d.RepositoryURL == "" {
		return commits.Repository{}, errors.New("no repository URL")
	}
	return commits.ParseGitRepository(d.RepositoryURL, false)
}
