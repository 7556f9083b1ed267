package forgetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/forge"
)

// GitLabPrefix is the path the GitLab fake serves its API under; the base URL is the server's URL plus it.
const GitLabPrefix = "/api/v4"

// GitLab is a fake of GitLab's commit status API. Its methods are safe for concurrent use.
type GitLab struct {
	faults
	token    string
	nextID   int64
	statuses map[string][]record // project/sha -> oldest first
}

// NewGitLab returns a fake GitLab API that requires token (PRIVATE-TOKEN or Bearer) unless it is empty.
func NewGitLab(token string) *GitLab {
	return &GitLab{token: token, nextID: 700, statuses: map[string][]record{}}
}

// Statuses returns the statuses posted on sha of project ("group/name"), oldest first, in the tracker's words.
func (g *GitLab) Statuses(project, sha string) []forge.Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []forge.Status
	for _, r := range g.statuses[project+"/"+sha] {
		out = append(out, r.status(fromGitLab(r.state)))
	}
	return out
}

// States returns the GitLab states posted on sha of project, oldest first.
func (g *GitLab) States(project, sha string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, r := range g.statuses[project+"/"+sha] {
		out = append(out, r.state)
	}
	return out
}

// AddStatus stores a status as if posted, with GitLab's state word.
func (g *GitLab) AddStatus(project, sha, state, name, description string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.add(project, sha, state, name, description, "")
}

func (g *GitLab) add(project, sha, state, name, description, targetURL string) record {
	g.nextID++
	r := record{id: g.nextID, state: state, name: name, description: description, targetURL: targetURL, at: time.Now().UTC().Format("2006-01-02T15:04:05.000Z")}
	g.statuses[project+"/"+sha] = append(g.statuses[project+"/"+sha], r)
	return r
}

func fromGitLab(s string) forge.State {
	switch s {
	case stateSuccess:
		return forge.StateSuccess
	case "failed", "canceled":
		return forge.StateFailure
	}
	return forge.StatePending
}

func gitlabError(status int) answer {
	return jsonAnswer(status, map[string]string{keyMessage: fmt.Sprintf("%d %s", status, http.StatusText(status))})
}

func (g *GitLab) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.serve(w, r, g.handle, gitlabError)
}

func (g *GitLab) handle(r *http.Request, body []byte) answer {
	if g.token != "" && r.Header.Get("PRIVATE-TOKEN") != g.token && r.Header.Get("Authorization") != "Bearer "+g.token {
		return gitlabError(http.StatusUnauthorized)
	}
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), GitLabPrefix+"/projects/")
	if !ok {
		return jsonAnswer(http.StatusNotFound, map[string]string{keyError: "404 Not Found"})
	}
	parts := strings.Split(rest, "/")
	project, err := url.PathUnescape(parts[0])
	if err != nil || project == "" {
		return jsonAnswer(http.StatusNotFound, map[string]string{keyMessage: "404 Project Not Found"})
	}
	switch {
	case len(parts) == 5 && parts[1] == "repository" && parts[2] == "commits" && parts[4] == segStatuses && r.Method == http.MethodGet:
		return g.list(r, project, parts[3])
	case len(parts) == 3 && parts[1] == segStatuses && r.Method == http.MethodPost:
		return g.create(r, project, parts[2], body)
	}
	return jsonAnswer(http.StatusNotFound, map[string]string{keyError: "404 Not Found"})
}

type gitlabStatusJSON struct {
	ID           int64          `json:"id"`
	SHA          string         `json:"sha"`
	Ref          string         `json:"ref"`
	Status       string         `json:"status"`
	Name         string         `json:"name"`
	TargetURL    *string        `json:"target_url"`
	Description  *string        `json:"description"`
	CreatedAt    string         `json:"created_at"`
	StartedAt    *string        `json:"started_at"`
	FinishedAt   *string        `json:"finished_at"`
	AllowFailure bool           `json:"allow_failure"`
	Coverage     *float64       `json:"coverage"`
	PipelineID   int64          `json:"pipeline_id"`
	Author       map[string]any `json:"author"`
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func gitlabJSON(rec record, sha string) gitlabStatusJSON {
	return gitlabStatusJSON{
		ID: rec.id, SHA: sha, Ref: "main", Status: rec.state, Name: rec.name, TargetURL: optional(rec.targetURL),
		Description: optional(rec.description), CreatedAt: rec.at, PipelineID: 9000 + rec.id,
		Author: map[string]any{"id": 1, "username": "flux-commit-tracker", "name": "flux-commit-tracker", "state": "active"},
	}
}

// list answers GET /projects/:id/repository/commits/:sha/statuses, ordered by id (asc, or desc with sort=desc).
func (g *GitLab) list(r *http.Request, project, sha string) answer {
	q := r.URL.Query()
	var all []record
	for _, rec := range g.statuses[project+"/"+sha] {
		if !q.Has("name") || q.Get("name") == rec.name {
			all = append(all, rec)
		}
	}
	if q.Get("sort") == "desc" {
		sort.Slice(all, func(i, j int) bool { return all[i].id > all[j].id })
	}
	perPage := min(atoiDefault(q.Get("per_page"), 20), 100)
	page := atoiDefault(q.Get("page"), 1)
	pages := max((len(all)+perPage-1)/perPage, 1)
	lo, hi := min((page-1)*perPage, len(all)), min(page*perPage, len(all))
	out := make([]gitlabStatusJSON, 0, hi-lo)
	for _, rec := range all[lo:hi] {
		out = append(out, gitlabJSON(rec, sha))
	}
	a := jsonAnswer(http.StatusOK, out)
	a.header = http.Header{
		"X-Page": {strconv.Itoa(page)}, "X-Per-Page": {strconv.Itoa(perPage)}, "X-Total": {strconv.Itoa(len(all))},
		"X-Total-Pages": {strconv.Itoa(pages)}, "X-Next-Page": {""}, "X-Prev-Page": {""},
	}
	if page < pages {
		a.header.Set("X-Next-Page", strconv.Itoa(page+1))
		u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath}
		q.Set("page", strconv.Itoa(page+1))
		u.RawQuery = q.Encode()
		a.header.Set("Link", fmt.Sprintf("<%s>; rel=\"next\"", u.String()))
	}
	if page > 1 {
		a.header.Set("X-Prev-Page", strconv.Itoa(page-1))
	}
	return a
}

// create answers POST /projects/:id/statuses/:sha.
func (g *GitLab) create(_ *http.Request, project, sha string, body []byte) answer {
	var in struct {
		State       *string `json:"state"`
		Name        *string `json:"name"`
		Context     *string `json:"context"`
		Description *string `json:"description"`
		TargetURL   *string `json:"target_url"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return jsonAnswer(http.StatusBadRequest, map[string]string{keyError: "400 Bad request - invalid JSON"})
	}
	valid := map[string]bool{statePending: true, "running": true, stateSuccess: true, "failed": true, "canceled": true, "skipped": true}
	if in.State == nil {
		return jsonAnswer(http.StatusBadRequest, map[string]string{keyError: "state is missing"})
	}
	if !valid[*in.State] {
		return jsonAnswer(http.StatusBadRequest, map[string]string{keyError: "state does not have a valid value"})
	}
	name := "default"
	switch {
	case in.Name != nil && *in.Name != "":
		name = *in.Name
	case in.Context != nil && *in.Context != "":
		name = *in.Context
	}
	var description, targetURL string
	if in.Description != nil {
		description = *in.Description
	}
	if in.TargetURL != nil {
		targetURL = *in.TargetURL
	}
	rec := g.add(project, sha, *in.State, name, description, targetURL)
	return jsonAnswer(http.StatusCreated, gitlabJSON(rec, sha))
}
