package forge

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/revision"
)

// DefaultGitLabURL is the API base URL of gitlab.com.
const DefaultGitLabURL = "https://gitlab.com/api/v4"

const gitlabPageSize = 100

// GitLab posts and reads GitLab commit statuses. It is safe for concurrent use.
type GitLab struct {
	c *httpClient
}

var _ Statuses = (*GitLab)(nil)

// NewGitLab returns a GitLab client; the token goes in the PRIVATE-TOKEN header.
func NewGitLab(opts HTTPOptions) (*GitLab, error) {
	if opts.BaseURL == "" {
		opts.BaseURL = DefaultGitLabURL
	}
	c, err := newHTTPClient("gitlab", opts, "PRIVATE-TOKEN", opts.Token)
	if err != nil {
		return nil, err
	}
	return &GitLab{c: c}, nil
}

// gitlabStatus is the part of a GitLab commit status the tracker reads.
type gitlabStatus struct {
	ID          int64
	Status      string
	Name        string
	Description string
	TargetURL   string
}

type gitlabStatusJSON struct {
	ID          *int64  `json:"id"`
	Status      *string `json:"status"`
	Name        *string `json:"name"`
	Description *string `json:"description"`
	TargetURL   *string `json:"target_url"`
}

func (j *gitlabStatusJSON) status() (gitlabStatus, error) {
	switch {
	case j == nil:
		return gitlabStatus{}, badResponse("a status is null")
	case j.ID == nil || *j.ID <= 0:
		return gitlabStatus{}, badResponse("a status has no id")
	case j.Status == nil || *j.Status == "":
		return gitlabStatus{}, badResponse("status %d has no status", *j.ID)
	case j.Name == nil:
		return gitlabStatus{}, badResponse("status %d has no name", *j.ID)
	}
	s := gitlabStatus{ID: *j.ID, Status: *j.Status, Name: *j.Name}
	if j.Description != nil {
		s.Description = *j.Description
	}
	if j.TargetURL != nil {
		s.TargetURL = *j.TargetURL
	}
	return s, nil
}

// decodeGitLabStatuses decodes a list of commit statuses; null, a non-array or an incomplete entry is ErrBadResponse.
func decodeGitLabStatuses(raw []byte) ([]gitlabStatus, error) {
	var list *[]*gitlabStatusJSON
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, badResponse("decoding statuses: %v", err)
	}
	if list == nil {
		return nil, badResponse("statuses are null")
	}
	out := make([]gitlabStatus, 0, len(*list))
	for _, j := range *list {
		s, err := j.status()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func decodeGitLabStatus(raw []byte) (gitlabStatus, error) {
	var j *gitlabStatusJSON
	if err := json.Unmarshal(raw, &j); err != nil {
		return gitlabStatus{}, badResponse("decoding the status: %v", err)
	}
	return j.status()
}

// gitlabProject is the URL-escaped project ID of repo: its groups, subgroups and name, from its URL's path when
// it has one (a subgroup's repository is not named by owner/name).
func gitlabProject(repo commits.Repository) string {
	path := strings.Trim(repo.Owner, "/") + "/" + repo.Name
	if u, err := url.Parse(repo.URL); repo.URL != "" && err == nil && strings.Count(strings.Trim(u.Path, "/"), "/") >= 1 {
		path = strings.TrimSuffix(strings.Trim(u.Path, "/"), ".git")
	}
	return url.PathEscape(path)
}

// gitlabState maps a State to GitLab's word.
func gitlabState(s State) string {
	if s == StateFailure {
		return "failed"
	}
	return string(s)
}

// fromGitLab maps GitLab's word to a State; states still under way read as pending.
func fromGitLab(s string) State {
	switch s {
	case "success":
		return StateSuccess
	case "failed", "canceled":
		return StateFailure
	}
	return StatePending
}

// Latest returns the newest status named name on sha: the highest id among all pages.
func (g *GitLab) Latest(ctx context.Context, repo commits.Repository, sha, name string) (Status, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, g.c.timeout)
	defer cancel()
	what := fmt.Sprintf("list statuses of %s at %s", repo, revision.Quote(sha))
	path := "/projects/" + gitlabProject(repo) + "/repository/commits/" + url.PathEscape(sha) + "/statuses"
	var best gitlabStatus
	found := false
	for page := 1; page <= maxPages; page++ {
		q := url.Values{"name": {name}, "all": {"true"}, "per_page": {strconv.Itoa(gitlabPageSize)}, "page": {strconv.Itoa(page)}}
		a, err := g.c.do(ctx, what, http.MethodGet, path, q, nil)
		if err != nil {
			return Status{}, false, err
		}
		list, err := decodeGitLabStatuses(a.body)
		if err != nil {
			return Status{}, false, fmt.Errorf("gitlab: %s: page %d: %w", what, page, err)
		}
		for _, s := range list {
			if s.Name == name && (!found || s.ID > best.ID) {
				best, found = s, true
			}
		}
		next, err := strconv.Atoi(strings.TrimSpace(a.header.Get("X-Next-Page")))
		if err != nil || next <= page || len(list) == 0 {
			break
		}
		page = next - 1
	}
	if !found {
		return Status{}, false, nil
	}
	return Status{State: fromGitLab(best.Status), Context: best.Name, Description: best.Description, TargetURL: best.TargetURL}, true, nil
}

// Post creates a status on sha.
func (g *GitLab) Post(ctx context.Context, repo commits.Repository, sha string, s Status) error {
	what := fmt.Sprintf("post status %q on %s at %s", s.Context, repo, revision.Quote(sha))
	if !validState(s.State) {
		return fmt.Errorf("gitlab: %s: unknown state %q", what, s.State)
	}
	ctx, cancel := context.WithTimeout(ctx, g.c.timeout)
	defer cancel()
	body := map[string]string{"state": gitlabState(s.State), "name": s.Context, "description": cut(s.Description, MaxDescription)}
	if s.TargetURL != "" {
		body["target_url"] = s.TargetURL
	}
	return g.c.gate.write(ctx, "gitlab: "+what, func() error {
		a, err := g.c.do(ctx, what, http.MethodPost, "/projects/"+gitlabProject(repo)+"/statuses/"+url.PathEscape(sha), nil, body)
		if err != nil {
			return err
		}
		if _, err := decodeGitLabStatus(a.body); err != nil {
			return fmt.Errorf("gitlab: %s: %w", what, err)
		}
		return nil
	})
}
