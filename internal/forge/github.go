package forge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	gh "github.com/google/go-github/v88/github"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/outbox"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/redact"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/revision"
)

// DeploymentTask is the task of every deployment this tool makes.
const DeploymentTask = "deploy:flux-commit-tracker"

const githubPageSize = 100

// DeploymentState is the state of a GitHub deployment status.
type DeploymentState string

// States of a deployment status the tracker sets.
const (
	DeploymentInProgress DeploymentState = "in_progress"
	DeploymentSuccess    DeploymentState = "success"
	DeploymentFailure    DeploymentState = "failure"
)

// Deployment is one GitHub deployment.
type Deployment struct {
	ID int64
	// SHA is the commit deployed; the ref deployed is the SHA itself.
	SHA                   string
	Environment           string
	Description           string
	ProductionEnvironment bool
	// Payload is JSON stored with the deployment, e.g. the delivered commits.
	Payload json.RawMessage
}

// Deployments makes GitHub deployments and sets their statuses.
type Deployments interface {
	// Find returns the newest deployment of sha to environment made by this tool (task
	// "deploy:flux-commit-tracker"), found false when none.
	Find(ctx context.Context, repo commits.Repository, sha, environment string) (Deployment, bool, error)
	// Create makes a deployment of d.SHA to d.Environment.
	Create(ctx context.Context, repo commits.Repository, d Deployment) (Deployment, error)
	// LatestState returns the state of the newest status of deployment id (found false when it has none).
	LatestState(ctx context.Context, repo commits.Repository, id int64) (DeploymentState, bool, error)
	// SetState posts a deployment status; logURL is optional.
	SetState(ctx context.Context, repo commits.Repository, id int64, state DeploymentState, description, logURL string) error
}

// GitHub posts and reads GitHub commit statuses and deployments. It is safe for concurrent use.
type GitHub struct {
	client *gh.Client
	// writer sends the writes: through client's transport below its retries, when it has them.
	writer  *gh.Client
	gate    *gate
	timeout time.Duration
}

var (
	_ Statuses    = (*GitHub)(nil)
	_ Deployments = (*GitHub)(nil)
)

// NewGitHub returns a GitHub forge reading through client and writing through writer (client when nil), whose
// answers it reads capped at 1 MiB. Writes are sent once: a create that GitHub stored but answered 5xx, or whose
// answer was lost, would be stored again by a retry, so writer must not retry (the commit provider's
// WriteClient); client's retries serve the reads.
func NewGitHub(client, writer *gh.Client, opts Options) *GitHub {
	o := opts.withDefaults()
	g := &GitHub{gate: newGate(o), timeout: o.Timeout}
	if client == nil {
		return g
	}
	if writer == nil {
		writer = client
	}
	g.client, g.writer = capped(client), capped(writer)
	return g
}

// capped is client with its answers capped.
func capped(client *gh.Client) *gh.Client {
	rt := client.Client().Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	if c, err := client.Clone(gh.WithTransport(capTransport{next: rt})); err == nil {
		return c
	}
	return client
}

// capTransport fails reads of an answer past maxBody with ErrBadResponse.
type capTransport struct{ next http.RoundTripper }

func (t capTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err == nil && resp.Body != nil {
		resp.Body = commits.CapBody(resp.Body, maxBody)
	}
	return resp, err
}

// begin checks the client and a remembered rate limit, and bounds the call.
func (g *GitHub) begin(ctx context.Context, what string) (context.Context, context.CancelFunc, error) {
	if g.client == nil {
		return nil, nil, fmt.Errorf("github: %s: no client", what)
	}
	if err := g.gate.check(); err != nil {
		return nil, nil, fmt.Errorf("github: %s: %w", what, err)
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	return ctx, cancel, nil
}

// apiError maps a go-github error as the package doc says, remembering rate limits.
func (g *GitHub) apiError(ctx context.Context, what string, err error) error {
	now := g.gate.clock.Now()
	var (
		limited *commits.RateLimitError
		primary *gh.RateLimitError
		abuse   *gh.AbuseRateLimitError
		er      *gh.ErrorResponse
	)
	switch {
	case errors.As(err, &limited):
		_ = g.gate.limit(limited.Until, limited.Cause)
		return fmt.Errorf("github: %s: %w", what, redact.Error(err))
	case errors.As(err, &primary):
		until := primary.Rate.Reset.Time
		if until.IsZero() {
			until = now.Add(defaultLimitWait)
		}
		return fmt.Errorf("github: %s: %w", what, g.gate.limit(capUntil(until, now), "primary"))
	case errors.As(err, &abuse):
		wait := defaultLimitWait
		if abuse.RetryAfter != nil && *abuse.RetryAfter > 0 {
			wait = min(*abuse.RetryAfter, maxLimitWait)
		}
		return fmt.Errorf("github: %s: %w", what, g.gate.limit(now.Add(wait), "secondary"))
	case errors.As(err, &er) && er.Response != nil:
		code := er.Response.StatusCode
		if code == http.StatusTooManyRequests {
			until, cause := rateLimitUntil(er.Response.Header, now)
			return fmt.Errorf("github: %s: %w", what, g.gate.limit(until, cause))
		}
		msg := fmt.Sprintf("github: %s: HTTP %d: %s", what, code, cut(er.Message, 200))
		if refused(code) {
			return redact.Error(fmt.Errorf("%s: %w", msg, outbox.ErrRefused))
		}
		return redact.Error(errors.New(msg))
	case ctx.Err() != nil:
		return fmt.Errorf("github: %s: %w (%w)", what, ctx.Err(), redact.Error(err))
	case errors.Is(err, commits.ErrBadResponse):
		return fmt.Errorf("github: %s: %w", what, redact.Error(err))
	}
	var (
		syntax    *json.SyntaxError
		typeError *json.UnmarshalTypeError
	)
	if errors.As(err, &syntax) || errors.As(err, &typeError) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("github: %s: %w: %w", what, commits.ErrBadResponse, redact.Error(err))
	}
	return fmt.Errorf("github: %s: %w", what, redact.Error(err))
}

// fromGitHub maps GitHub's word to a State; error reads as failure.
func fromGitHub(s string) State {
	switch s {
	case "success":
		return StateSuccess
	case "failure", "error":
		return StateFailure
	}
	return StatePending
}

// Latest walks the combined status (the latest status per context) until it finds name.
func (g *GitHub) Latest(ctx context.Context, repo commits.Repository, sha, name string) (Status, bool, error) {
	what := fmt.Sprintf("get the combined status of %s at %s", repo, revision.Quote(sha))
	ctx, cancel, err := g.begin(ctx, what)
	if err != nil {
		return Status{}, false, err
	}
	defer cancel()
	for page := 1; page <= maxPages; {
		cs, resp, err := g.client.Repositories.GetCombinedStatus(ctx, repo.Owner, repo.Name, sha, &gh.ListOptions{Page: page, PerPage: githubPageSize})
		if err != nil {
			return Status{}, false, g.apiError(ctx, what, err)
		}
		if cs == nil || (cs.SHA == nil && cs.State == nil) {
			return Status{}, false, badResponse("github: %s: page %d has no sha or state", what, page)
		}
		var best *gh.RepoStatus
		for _, st := range cs.Statuses {
			if st == nil || st.State == nil {
				return Status{}, false, badResponse("github: %s: page %d holds a status without a state", what, page)
			}
			if st.GetContext() == name && (best == nil || st.GetID() > best.GetID()) {
				best = st
			}
		}
		if best != nil {
			return Status{State: fromGitHub(best.GetState()), Context: best.GetContext(), Description: best.GetDescription(), TargetURL: best.GetTargetURL()}, true, nil
		}
		if resp == nil || resp.NextPage <= page || len(cs.Statuses) == 0 {
			break
		}
		page = resp.NextPage
	}
	return Status{}, false, nil
}

// Post creates a status on sha.
func (g *GitHub) Post(ctx context.Context, repo commits.Repository, sha string, s Status) error {
	what := fmt.Sprintf("post status %q on %s at %s", s.Context, repo, revision.Quote(sha))
	if !validState(s.State) {
		return fmt.Errorf("github: %s: unknown state %q", what, s.State)
	}
	ctx, cancel, err := g.begin(ctx, what)
	if err != nil {
		return err
	}
	defer cancel()
	st := gh.RepoStatus{State: gh.Ptr(string(s.State)), Context: gh.Ptr(s.Context), Description: gh.Ptr(cut(s.Description, MaxDescription))}
	if s.TargetURL != "" {
		st.TargetURL = gh.Ptr(s.TargetURL)
	}
	return g.gate.write(ctx, "github: "+what, func() error {
		created, _, err := g.writer.Repositories.CreateStatus(ctx, repo.Owner, repo.Name, sha, st)
		if err != nil {
			return g.apiError(ctx, what, err)
		}
		if created == nil || created.ID == nil {
			return badResponse("github: %s: the answer has no id", what)
		}
		return nil
	})
}

// deploymentJSON adds what go-github's Deployment lacks.
type deploymentJSON struct {
	gh.Deployment
	ProductionEnvironment *bool `json:"production_environment,omitempty"`
}

func (d *deploymentJSON) deployment() Deployment {
	return Deployment{
		ID:                    d.GetID(),
		SHA:                   d.GetSHA(),
		Environment:           d.GetEnvironment(),
		Description:           d.GetDescription(),
		ProductionEnvironment: d.ProductionEnvironment != nil && *d.ProductionEnvironment,
		Payload:               d.Payload,
	}
}

// Find lists the deployments of sha to environment with this tool's task, newest first, and takes the newest.
// It lists through the client directly (as Repositories.ListDeployments does) to read production_environment.
func (g *GitHub) Find(ctx context.Context, repo commits.Repository, sha, environment string) (Deployment, bool, error) {
	what := fmt.Sprintf("list deployments of %s at %s to %q", repo, revision.Quote(sha), environment)
	ctx, cancel, err := g.begin(ctx, what)
	if err != nil {
		return Deployment{}, false, err
	}
	defer cancel()
	for page := 1; page <= maxPages; {
		q := url.Values{"sha": {sha}, "environment": {environment}, "task": {DeploymentTask}, "page": {strconv.Itoa(page)}, "per_page": {strconv.Itoa(githubPageSize)}}
		req, err := g.client.NewRequest(ctx, http.MethodGet, fmt.Sprintf("repos/%s/%s/deployments?%s", url.PathEscape(repo.Owner), url.PathEscape(repo.Name), q.Encode()), nil)
		if err != nil {
			return Deployment{}, false, fmt.Errorf("github: %s: %w", what, redact.Error(err))
		}
		var list []*deploymentJSON
		resp, err := g.client.Do(req, &list)
		if err != nil {
			return Deployment{}, false, g.apiError(ctx, what, err)
		}
		if list == nil {
			return Deployment{}, false, badResponse("github: %s: page %d is empty or null", what, page)
		}
		var best *deploymentJSON
		for _, d := range list {
			if d == nil || d.ID == nil {
				return Deployment{}, false, badResponse("github: %s: page %d holds a deployment without an id", what, page)
			}
			if d.GetSHA() == sha && d.GetEnvironment() == environment && d.GetTask() == DeploymentTask && (best == nil || d.GetID() > best.GetID()) {
				best = d
			}
		}
		if best != nil {
			return best.deployment(), true, nil
		}
		if resp == nil || resp.NextPage <= page || len(list) == 0 {
			break
		}
		page = resp.NextPage
	}
	return Deployment{}, false, nil
}

// Create makes a deployment of d.SHA (as its ref) with this tool's task, no auto-merge, no required contexts.
func (g *GitHub) Create(ctx context.Context, repo commits.Repository, d Deployment) (Deployment, error) {
	what := fmt.Sprintf("create a deployment of %s at %s to %q", repo, revision.Quote(d.SHA), d.Environment)
	if len(d.Payload) > 0 && !json.Valid(d.Payload) {
		return Deployment{}, fmt.Errorf("github: %s: the payload is not JSON: %w", what, outbox.ErrRefused)
	}
	ctx, cancel, err := g.begin(ctx, what)
	if err != nil {
		return Deployment{}, err
	}
	defer cancel()
	req := &gh.DeploymentRequest{
		Ref:                   gh.Ptr(d.SHA),
		Task:                  gh.Ptr(DeploymentTask),
		AutoMerge:             gh.Ptr(false),
		RequiredContexts:      &[]string{},
		Environment:           gh.Ptr(d.Environment),
		Description:           gh.Ptr(d.Description),
		TransientEnvironment:  gh.Ptr(false),
		ProductionEnvironment: gh.Ptr(d.ProductionEnvironment),
	}
	if len(d.Payload) > 0 {
		req.Payload = d.Payload
	}
	var out Deployment
	err = g.gate.write(ctx, "github: "+what, func() error {
		created, _, err := g.writer.Repositories.CreateDeployment(ctx, repo.Owner, repo.Name, req)
		if err != nil {
			return g.apiError(ctx, what, err)
		}
		if created == nil || created.ID == nil {
			return badResponse("github: %s: the answer has no id", what)
		}
		out = (&deploymentJSON{Deployment: *created, ProductionEnvironment: gh.Ptr(d.ProductionEnvironment)}).deployment()
		return nil
	})
	return out, err
}

// LatestState reads the newest status of deployment id.
func (g *GitHub) LatestState(ctx context.Context, repo commits.Repository, id int64) (DeploymentState, bool, error) {
	what := fmt.Sprintf("list the statuses of deployment %d of %s", id, repo)
	ctx, cancel, err := g.begin(ctx, what)
	if err != nil {
		return "", false, err
	}
	defer cancel()
	list, _, err := g.client.Repositories.ListDeploymentStatuses(ctx, repo.Owner, repo.Name, id, &gh.ListOptions{PerPage: 1})
	if err != nil {
		return "", false, g.apiError(ctx, what, err)
	}
	switch {
	case list == nil:
		return "", false, badResponse("github: %s: the answer is empty or null", what)
	case len(list) == 0:
		return "", false, nil
	case list[0] == nil || list[0].GetState() == "":
		return "", false, badResponse("github: %s: the newest status has no state", what)
	}
	return DeploymentState(list[0].GetState()), true, nil
}

// SetState posts a deployment status; a success makes earlier deployments to the environment inactive.
func (g *GitHub) SetState(ctx context.Context, repo commits.Repository, id int64, state DeploymentState, description, logURL string) error {
	what := fmt.Sprintf("set deployment %d of %s to %s", id, repo, state)
	if state != DeploymentInProgress && state != DeploymentSuccess && state != DeploymentFailure {
		return fmt.Errorf("github: %s: unknown state %q", what, state)
	}
	ctx, cancel, err := g.begin(ctx, what)
	if err != nil {
		return err
	}
	defer cancel()
	req := &gh.DeploymentStatusRequest{
		State:        gh.Ptr(string(state)),
		Description:  gh.Ptr(cut(description, MaxDescription)),
		AutoInactive: gh.Ptr(state == DeploymentSuccess),
	}
	if logURL != "" {
		req.LogURL = gh.Ptr(logURL)
	}
	return g.gate.write(ctx, "github: "+what, func() error {
		created, _, err := g.writer.Repositories.CreateDeploymentStatus(ctx, repo.Owner, repo.Name, id, req)
		if err != nil {
			return g.apiError(ctx, what, err)
		}
		if created == nil || created.ID == nil {
			return badResponse("github: %s: the answer has no id", what)
		}
		return nil
	})
}
