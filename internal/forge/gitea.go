package forge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/revision"
)

const giteaPageSize = 50

// Gitea posts and reads Gitea (and Forgejo) commit statuses. It is safe for concurrent use.
type Gitea struct {
	c *httpClient
}

var _ Statuses = (*Gitea)(nil)

// NewGitea returns a Gitea client; the token goes in "Authorization: token".
func NewGitea(opts HTTPOptions) (*Gitea, error) {
	if opts.BaseURL == "" {
		return nil, errors.New("gitea: the API base URL is required, e.g. https://gitea.example/api/v1")
	}
	c, err := newHTTPClient("gitea", opts, "Authorization", "token "+opts.Token)
	if err != nil {
		return nil, err
	}
	return &Gitea{c: c}, nil
}

// giteaStatus is the part of a Gitea commit status the tracker reads.
type giteaStatus struct {
	ID          int64
	State       string
	Context     string
	Description string
	TargetURL   string
}

type giteaStatusJSON struct {
	ID *int64 `json:"id"`
	// Status is the field's name in Gitea's answers; some versions send State as well or instead.
	Status      *string `json:"status"`
	State       *string `json:"state"`
	Context     *string `json:"context"`
	Description *string `json:"description"`
	TargetURL   *string `json:"target_url"`
}

func (j *giteaStatusJSON) status() (giteaStatus, error) {
	if j == nil {
		return giteaStatus{}, badResponse("a status is null")
	}
	s := giteaStatus{}
	if j.ID != nil {
		s.ID = *j.ID
	}
	switch {
	case j.Status != nil && *j.Status != "":
		s.State = *j.Status
	case j.State != nil && *j.State != "":
		s.State = *j.State
	default:
		return giteaStatus{}, badResponse("status %d has no state", s.ID)
	}
	if j.Context == nil {
		return giteaStatus{}, badResponse("status %d has no context", s.ID)
	}
	s.Context = *j.Context
	if j.Description != nil {
		s.Description = *j.Description
	}
	if j.TargetURL != nil {
		s.TargetURL = *j.TargetURL
	}
	return s, nil
}

// giteaCombined is one page of a combined status.
type giteaCombined struct {
	TotalCount int
	Statuses   []giteaStatus
}

// decodeGiteaCombined decodes a combined status; null, a non-object or an incomplete entry is ErrBadResponse.
func decodeGiteaCombined(raw []byte) (giteaCombined, error) {
	var j *struct {
		SHA        *string             `json:"sha"`
		State      *string             `json:"state"`
		TotalCount *int                `json:"total_count"`
		Statuses   *[]*giteaStatusJSON `json:"statuses"`
	}
	if err := json.Unmarshal(raw, &j); err != nil {
		return giteaCombined{}, badResponse("decoding the combined status: %v", err)
	}
	if j == nil {
		return giteaCombined{}, badResponse("the combined status is null")
	}
	if j.SHA == nil && j.State == nil && j.Statuses == nil {
		return giteaCombined{}, badResponse("the combined status has no sha, state or statuses")
	}
	out := giteaCombined{}
	if j.Statuses != nil {
		out.Statuses = make([]giteaStatus, 0, len(*j.Statuses))
		for _, e := range *j.Statuses {
			s, err := e.status()
			if err != nil {
				return giteaCombined{}, err
			}
			out.Statuses = append(out.Statuses, s)
		}
	}
	if j.TotalCount != nil {
		if *j.TotalCount < 0 {
			return giteaCombined{}, badResponse("total_count is %d", *j.TotalCount)
		}
		out.TotalCount = *j.TotalCount
	}
	return out, nil
}

func decodeGiteaStatus(raw []byte) (giteaStatus, error) {
	var j *giteaStatusJSON
	if err := json.Unmarshal(raw, &j); err != nil {
		return giteaStatus{}, badResponse("decoding the status: %v", err)
	}
	return j.status()
}

// fromGitea maps Gitea's word to a State; error and warning read as failure.
func fromGitea(s string) State {
	switch s {
	case "success":
		return StateSuccess
	case "failure", "error", "warning":
		return StateFailure
	}
	return StatePending
}

func giteaRepoPath(repo commits.Repository) string {
	return "/repos/" + url.PathEscape(repo.Owner) + "/" + url.PathEscape(repo.Name)
}

// Latest returns the status of sha under name from the combined status, which holds the latest per context.
func (g *Gitea) Latest(ctx context.Context, repo commits.Repository, sha, name string) (Status, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, g.c.timeout)
	defer cancel()
	what := fmt.Sprintf("get the combined status of %s at %s", repo, revision.Quote(sha))
	path := giteaRepoPath(repo) + "/commits/" + url.PathEscape(sha) + "/status"
	var best giteaStatus
	found, seen := false, 0
	for page := 1; page <= maxPages; page++ {
		q := url.Values{"page": {strconv.Itoa(page)}, "limit": {strconv.Itoa(giteaPageSize)}}
		a, err := g.c.do(ctx, what, http.MethodGet, path, q, nil)
		if err != nil {
			return Status{}, false, err
		}
		cs, err := decodeGiteaCombined(a.body)
		if err != nil {
			return Status{}, false, fmt.Errorf("gitea: %s: page %d: %w", what, page, err)
		}
		for _, s := range cs.Statuses {
			if s.Context == name && (!found || s.ID > best.ID) {
				best, found = s, true
			}
		}
		seen += len(cs.Statuses)
		if found || len(cs.Statuses) == 0 || seen >= cs.TotalCount {
			break
		}
	}
	if !found {
		return Status{}, false, nil
	}
	return Status{State: fromGitea(best.State), Context: best.Context, Description: best.Description, TargetURL: best.TargetURL}, true, nil
}

// Post creates a status on sha.
func (g *Gitea) Post(ctx context.Context, repo commits.Repository, sha string, s Status) error {
	what := fmt.Sprintf("post status %q on %s at %s", s.Context, repo, revision.Quote(sha))
	if !validState(s.State) {
		return fmt.Errorf("gitea: %s: unknown state %q", what, s.State)
	}
	ctx, cancel := context.WithTimeout(ctx, g.c.timeout)
	defer cancel()
	body := map[string]string{"state": string(s.State), "context": s.Context, "description": cut(s.Description, MaxDescription)}
	if s.TargetURL != "" {
		body["target_url"] = s.TargetURL
	}
	return g.c.gate.write(ctx, "gitea: "+what, func() error {
		a, err := g.c.do(ctx, what, http.MethodPost, giteaRepoPath(repo)+"/statuses/"+url.PathEscape(sha), nil, body)
		if err != nil {
			return err
		}
		if _, err := decodeGiteaStatus(a.body); err != nil {
			return fmt.Errorf("gitea: %s: %w", what, err)
		}
		return nil
	})
}
