package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/spf13/pflag"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/feedback"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/forge"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
)

// FeedbackOptions say what the tracker posts on the commits' forges: commit statuses and GitHub Deployments.
type FeedbackOptions struct {
	// CommitStatus posts a status on every delivered commit; Scope, Context and URL shape it.
	CommitStatus                            bool
	CommitStatusScope, CommitStatusContext  string
	CommitStatusURL                         string
	GitLabAPIURL, GiteaAPIURL               string
	GitHubDeployments, DeploymentProduction bool
	DeploymentEnvironment                   string
	// GitLabToken and GiteaToken come from the environment only.
	GitLabToken, GiteaToken string
}

var feedbackEnvNames = map[string]string{
	"commit-status":          "COMMIT_STATUS",
	"commit-status-scope":    "COMMIT_STATUS_SCOPE",
	"commit-status-context":  "COMMIT_STATUS_CONTEXT",
	"commit-status-url":      "COMMIT_STATUS_URL",
	"gitlab-api-url":         "GITLAB_API_URL",
	"gitea-api-url":          "GITEA_API_URL",
	"github-deployments":     "GITHUB_DEPLOYMENTS",
	"deployment-environment": "DEPLOYMENT_ENVIRONMENT",
	"deployment-production":  "DEPLOYMENT_PRODUCTION",
}

func defaultFeedbackOptions() FeedbackOptions {
	return FeedbackOptions{CommitStatusScope: feedback.ScopeCluster, GitLabAPIURL: "https://gitlab.com/api/v4",
		DeploymentEnvironment: feedback.DefaultEnvironment}
}

func (o *FeedbackOptions) bindFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.CommitStatus, "commit-status", o.CommitStatus, "Post a commit status on every delivered commit: pending once fetched, success when applied on every object of its repository, failure while one fails on it (GitHub, GitLab, Gitea; tokens from GITHUB_TOKEN or the GITHUB_APP_* variables, GITLAB_TOKEN, GITEA_TOKEN)")
	fs.StringVar(&o.CommitStatusScope, "commit-status-scope", o.CommitStatusScope, "cluster: one context per cluster ("+feedback.DefaultClusterContext+"), over every object on the repository; object: one per object ("+feedback.DefaultObjectContext+")")
	fs.StringVar(&o.CommitStatusContext, "commit-status-context", o.CommitStatusContext, "Context template of the commit statuses: {cluster}, and {kind}, {namespace}, {name} with scope object (default: by scope)")
	fs.StringVar(&o.CommitStatusURL, "commit-status-url", o.CommitStatusURL, "Link of each commit status, a template of {sha}, {trace_id} and {cluster} (a trace or dashboard); empty: none")
	fs.StringVar(&o.GitLabAPIURL, "gitlab-api-url", o.GitLabAPIURL, "GitLab API base URL (self-managed: https://HOST/api/v4): repositories on gitlab.com and this host get GitLab commit statuses")
	fs.StringVar(&o.GiteaAPIURL, "gitea-api-url", o.GiteaAPIURL, "Gitea or Forgejo API base URL (https://HOST/api/v1): repositories on this host get Gitea commit statuses; empty: none")
	fs.BoolVar(&o.GitHubDeployments, "github-deployments", o.GitHubDeployments, "Make a GitHub Deployment per revision and environment: in_progress once fetched, success when applied everywhere, failure while failing")
	fs.StringVar(&o.DeploymentEnvironment, "deployment-environment", o.DeploymentEnvironment, "Environment of the GitHub Deployments, a template of {cluster}")
	fs.BoolVar(&o.DeploymentProduction, "deployment-production", o.DeploymentProduction, "Mark the GitHub Deployments' environment as production (production_environment)")
}

func (o *FeedbackOptions) readTokens(getenv func(string) string) {
	o.GitLabToken, o.GiteaToken = getenv("GITLAB_TOKEN"), getenv("GITEA_TOKEN")
}

func (o *FeedbackOptions) validate(github ProviderOptions) []error {
	var errs []error
	for _, u := range []struct{ flag, url string }{{"gitlab-api-url", o.GitLabAPIURL}, {"gitea-api-url", o.GiteaAPIURL}} {
		if u.url == "" {
			continue
		}
		if p, err := url.Parse(u.url); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			errs = append(errs, fmt.Errorf("invalid --%s %q: must be an http(s) URL", u.flag, u.url))
		}
	}
	if err := feedback.ValidateTemplates(o.CommitStatusScope, o.CommitStatusContext, o.CommitStatusURL, o.DeploymentEnvironment); err != nil {
		errs = append(errs, fmt.Errorf("--commit-status-scope/--commit-status-context/--commit-status-url/--deployment-environment: %w", err))
	}
	githubAuth := github.GitHubToken != "" || github.GitHubAppID != 0
	if o.CommitStatus && !githubAuth && o.GitLabToken == "" && o.GiteaToken == "" {
		errs = append(errs, errors.New("--commit-status needs a forge token: GITHUB_TOKEN or the GITHUB_APP_* variables, GITLAB_TOKEN or GITEA_TOKEN"))
	}
	if o.GitHubDeployments && !githubAuth {
		errs = append(errs, errors.New("--github-deployments needs GITHUB_TOKEN or the GITHUB_APP_* variables (deployments: write)"))
	}
	return errs
}

// enabled reports whether anything is posted on forges.
func (o *FeedbackOptions) enabled() bool { return o.CommitStatus || o.GitHubDeployments }

// newFeedback builds the syncer of commit statuses and deployments, nil when both are off.
func newFeedback(ctx context.Context, opts Options, providers *Providers, metrics *telemetry.Metrics, log *slog.Logger) (*feedback.Syncer, error) {
	if !opts.enabled() {
		return nil, nil
	}
	fopts := forge.Options{Timeout: opts.CallTimeout}
	gh := forge.NewGitHub(providers.GitHub.Client(), providers.GitHub.WriteClient(), fopts)
	reg := forge.Registry{GitHub: gh, GitHubHosts: githubHosts(opts.GitHubAPIURL)}
	if opts.GitLabToken != "" {
		gl, err := forge.NewGitLab(forge.HTTPOptions{Options: fopts, BaseURL: opts.GitLabAPIURL, Token: opts.GitLabToken})
		if err != nil {
			return nil, usageError{fmt.Errorf("--gitlab-api-url: %w", err)}
		}
		reg.GitLab, reg.GitLabHosts = gl, hostsOf("gitlab.com", opts.GitLabAPIURL)
	}
	if opts.GiteaAPIURL != "" && opts.GiteaToken != "" {
		gt, err := forge.NewGitea(forge.HTTPOptions{Options: fopts, BaseURL: opts.GiteaAPIURL, Token: opts.GiteaToken})
		if err != nil {
			return nil, usageError{fmt.Errorf("--gitea-api-url: %w", err)}
		}
		reg.Gitea, reg.GiteaHosts = gt, hostsOf("", opts.GiteaAPIURL)
	}
	if opts.GiteaAPIURL != "" && opts.GiteaToken == "" {
		log.WarnContext(ctx, "--gitea-api-url is set but GITEA_TOKEN is not: no Gitea commit statuses")
	}
	sopts := feedback.Options{Forges: reg, Statuses: opts.CommitStatus, Cluster: opts.ClusterName, Scope: opts.CommitStatusScope,
		Context: opts.CommitStatusContext, TargetURL: opts.CommitStatusURL, Environment: opts.DeploymentEnvironment,
		ProductionEnvironment: opts.DeploymentProduction, Logger: log.With("component", "feedback"), OnPost: metrics.AddForgePost}
	if opts.GitHubDeployments {
		sopts.Deployments = gh
	}
	return feedback.New(sopts)
}

// hostsOf is fixed (when not empty) and the host of apiURL.
func hostsOf(fixed, apiURL string) []string {
	var hosts []string
	if fixed != "" {
		hosts = append(hosts, fixed)
	}
	if u, err := url.Parse(apiURL); err == nil && u.Host != "" && !strings.EqualFold(u.Hostname(), fixed) {
		hosts = append(hosts, strings.ToLower(u.Host))
	}
	return hosts
}
