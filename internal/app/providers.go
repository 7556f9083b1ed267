package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/trace"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/git"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/github"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/oci"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// ProviderOptions say how commits are looked up (the GitHub API, plain git, OCI registries): the controller and
// every subcommand bind the same flags and build their providers with BuildProviders.
type ProviderOptions struct {
	GitHubAPIURL string
	GitCacheDir  string
	// GitReadSourceSecrets lets plain-git lookups use the credentials in a source's secretRef.
	GitReadSourceSecrets bool
	// OCIInsecure allows plain-HTTP OCI registries.
	OCIInsecure bool
	// CallTimeout bounds every outbound call: GitHub, git, OCI registries, Secrets.
	CallTimeout time.Duration
	// GitFetchTimeout bounds one git fetch, which may have a whole repository to bring the first time.
	GitFetchTimeout time.Duration

	// GitHub credentials come from the environment only, so they never show in --help or process lists.
	GitHubToken             string
	GitHubAppID             int64
	GitHubAppPrivateKey     []byte
	GitHubAppInstallationID int64
}

// providerEnvNames maps each provider flag to the environment variable that sets it when the flag is not given.
var providerEnvNames = map[string]string{
	"github-api-url":          "GITHUB_API_URL",
	"git-cache-dir":           "GIT_CACHE_DIR",
	"git-read-source-secrets": "GIT_READ_SOURCE_SECRETS",
	"oci-insecure":            "OCI_INSECURE",
	"call-timeout":            "CALL_TIMEOUT",
	"git-fetch-timeout":       "GIT_FETCH_TIMEOUT",
}

// DefaultProviderOptions returns the defaults shown in --help.
func DefaultProviderOptions() ProviderOptions {
	return ProviderOptions{
		GitHubAPIURL:    "https://api.github.com",
		GitCacheDir:     git.DefaultCacheDir(),
		CallTimeout:     30 * time.Second,
		GitFetchTimeout: 5 * time.Minute,
	}
}

// BindFlags registers the provider flags.
func (o *ProviderOptions) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.GitHubAPIURL, "github-api-url", o.GitHubAPIURL, "GitHub API base URL; for GitHub Enterprise use https://HOST/api/v3")
	fs.StringVar(&o.GitCacheDir, "git-cache-dir", o.GitCacheDir, "Folder for the bare mirrors of repositories not on GitHub, read with plain git (an emptyDir in a cluster)")
	fs.BoolVar(&o.GitReadSourceSecrets, "git-read-source-secrets", o.GitReadSourceSecrets, "Read plain-git credentials from each GitRepository's spec.secretRef (needs get on those Secrets); off: anonymous")
	fs.BoolVar(&o.OCIInsecure, "oci-insecure", o.OCIInsecure, "Allow plain-HTTP OCI registries when reading OCIRepository artifacts")
	fs.DurationVar(&o.CallTimeout, "call-timeout", o.CallTimeout, "Deadline of every outbound call (GitHub, OCI registry, Secret read, ledger read or write); a call past it is counted and retried later")
	fs.DurationVar(&o.GitFetchTimeout, "git-fetch-timeout", o.GitFetchTimeout, "Deadline of one git fetch into a mirror (the first one brings the whole history)")
}

// applyCredentials reads the GitHub credentials from the environment.
func (o *ProviderOptions) applyCredentials(getenv func(string) string) []error {
	var errs []error
	o.GitHubToken = getenv("GITHUB_TOKEN")
	o.GitHubAppPrivateKey = []byte(getenv("GITHUB_APP_PRIVATE_KEY"))
	for _, v := range []struct {
		env string
		dst *int64
	}{{"GITHUB_APP_ID", &o.GitHubAppID}, {"GITHUB_APP_INSTALLATION_ID", &o.GitHubAppInstallationID}} {
		s := getenv(v.env)
		if s == "" {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("invalid %s: must be a positive integer", v.env))
			continue
		}
		*v.dst = n
	}
	return errs
}

// validate checks the provider values; errors name the flag.
func (o *ProviderOptions) validate() []error {
	var errs []error
	if u, err := url.Parse(o.GitHubAPIURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("invalid --github-api-url %q: must be an http(s) URL", o.GitHubAPIURL))
	}
	if o.GitCacheDir == "" {
		errs = append(errs, errors.New("invalid --git-cache-dir: must not be empty"))
	}
	if o.CallTimeout <= 0 {
		errs = append(errs, fmt.Errorf("invalid --call-timeout %s: must be positive", o.CallTimeout))
	}
	if o.GitFetchTimeout <= 0 {
		errs = append(errs, fmt.Errorf("invalid --git-fetch-timeout %s: must be positive", o.GitFetchTimeout))
	}
	return errs
}

// ProviderHooks are what the providers report to: call counts, spans and logs. Nil Metrics count nothing.
type ProviderHooks struct {
	Metrics        *telemetry.Metrics
	TracerProvider trace.TracerProvider
	Logger         *slog.Logger
}

// Providers are the commit providers built from ProviderOptions.
type Providers struct {
	GitHub *github.Provider
	Git    *git.Provider
	OCI    *oci.Client
	// GitHubAuth is how GitHub calls authenticate: token, app or anonymous.
	GitHubAuth string
	// Sources picks each Flux object's provider and repository; set its Secrets to read source credentials.
	Sources tracker.Providers
}

// BuildProviders builds the GitHub, plain-git and OCI providers of o; Close releases them.
func BuildProviders(ctx context.Context, o ProviderOptions, h ProviderHooks) (*Providers, error) {
	ghOpts := github.Options{
		BaseURL:           o.GitHubAPIURL,
		Token:             o.GitHubToken,
		AppID:             o.GitHubAppID,
		AppPrivateKey:     o.GitHubAppPrivateKey,
		AppInstallationID: o.GitHubAppInstallationID,
		Timeout:           o.CallTimeout,
		OnCall:            h.Metrics.AddGitHubCall, // a nil Metrics counts nothing
		TracerProvider:    h.TracerProvider,
		Logger:            h.Logger.With("component", "github"),
	}
	gh, err := github.New(ghOpts)
	if err != nil {
		return nil, usageError{err}
	}
	if ghOpts.AuthMode() == "anonymous" {
		h.Logger.WarnContext(ctx, "no GitHub credentials: calling the GitHub API unauthenticated (60 requests an hour); set GITHUB_TOKEN or the GITHUB_APP_* variables")
	}
	gitProvider, err := git.New(git.Options{
		CacheDir:       o.GitCacheDir,
		Timeout:        o.GitFetchTimeout,
		Logger:         h.Logger.With("component", "git"),
		OnCall:         h.Metrics.AddGitCall,
		TracerProvider: h.TracerProvider,
	})
	if err != nil {
		return nil, usageError{fmt.Errorf("--git-cache-dir: %w", err)}
	}
	artifacts, err := oci.New(oci.Options{
		Insecure:       o.OCIInsecure,
		Timeout:        o.CallTimeout,
		TracerProvider: h.TracerProvider,
		Logger:         h.Logger.With("component", "oci"),
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("OCI client: %w", err), gitProvider.Close())
	}
	return &Providers{GitHub: gh, Git: gitProvider, OCI: artifacts, GitHubAuth: ghOpts.AuthMode(),
		Sources: tracker.Providers{GitHub: gh, GitHubHosts: githubHosts(o.GitHubAPIURL), Git: gitProvider, Logger: h.Logger}}, nil
}

// Close releases what the providers hold (the git mirrors' locks).
func (p *Providers) Close() error { return p.Git.Close() }

// githubHosts are github.com and the GitHub Enterprise host of apiURL.
func githubHosts(apiURL string) []string {
	hosts := []string{"github.com"}
	if u, err := url.Parse(apiURL); err == nil {
		if host := strings.ToLower(u.Hostname()); host != "api.github.com" && host != "" {
			hosts = append(hosts, host)
		}
	}
	return hosts
}
