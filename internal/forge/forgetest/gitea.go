package forgetest

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/forge"
)

// GiteaPrefix is the path the Gitea fake serves its API under; the base URL is the server's URL plus it.
const GiteaPrefix = "/api/v1"

const giteaDocs = "https://gitea.example/api/swagger"

// Gitea is a fake of Gitea's commit status API. Its methods are safe for concurrent use.
type Gitea struct {
	faults
	token    string
	nextID   int64
	statuses map[string][]record // owner/name/sha -> oldest first
}

// NewGitea returns a fake Gitea API that requires token ("Authorization: token" or Bearer) unless it is empty.
func NewGitea(token string) *Gitea {
	return &Gitea{token: token, nextID: 300, statuses: map[string][]record{}}
}

// Statuses returns the statuses posted on sha of repo ("owner/name"), oldest first.
func (g *Gitea) Statuses(repo, sha string) []forge.Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []forge.Status
	for _, r := range g.statuses[repo+"/"+sha] {
		out = append(out, r.status(forge.State(r.state)))
	}
	return out
}

// AddStatus stores a status as if posted, with Gitea's state word.
func (g *Gitea) AddStatus(repo, sha, state, context, description string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.add(repo, sha, state, context, description, "")
}

func (g *Gitea) add(repo, sha, state, context, description, targetURL string) record {
	g.nextID++
	r := record{id: g.nextID, state: state, name: context, description: description, targetURL: targetURL, at: time.Now().UTC().Format(time.RFC3339)}
	g.statuses[repo+"/"+sha] = append(g.statuses[repo+"/"+sha], r)
	return r
}

func giteaError(status int) answer {
	msg := http.StatusText(status)
	if status == http.StatusUnauthorized {
		msg = "token is required"
	}
	return jsonAnswer(status, map[string]string{keyMessage: msg, keyURL: giteaDocs})
}

func (g *Gitea) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.serve(w, r, g.handle, giteaError)
}

func (g *Gitea) handle(r *http.Request, body []byte) answer {
	if auth := r.Header.Get("Authorization"); g.token != "" && auth != "token "+g.token && auth != "Bearer "+g.token {
		return giteaError(http.StatusUnauthorized)
	}
	rest, ok := strings.CutPrefix(r.URL.Path, GiteaPrefix+"/repos/")
	if !ok {
		return giteaError(http.StatusNotFound)
	}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 5 && parts[2] == "commits" && parts[4] == "status" && r.Method == http.MethodGet:
		return g.combined(r, parts[0]+"/"+parts[1], parts[3])
	case len(parts) == 4 && parts[2] == segStatuses && r.Method == http.MethodPost:
		return g.create(parts[0]+"/"+parts[1], parts[3], body)
	}
	return giteaError(http.StatusNotFound)
}

type giteaStatusJSON struct {
	ID          int64          `json:"id"`
	Status      string         `json:"status"`
	TargetURL   string         `json:"target_url"`
	Description string         `json:"description"`
	URL         string         `json:"url"`
	Context     string         `json:"context"`
	Creator     map[string]any `json:"creator"`
	CreatedAt   string         `json:"created_at"`
	UpdatedAt   string         `json:"updated_at"`
}

func giteaJSON(rec record, repo, sha string) giteaStatusJSON {
	return giteaStatusJSON{
		ID: rec.id, Status: rec.state, TargetURL: rec.targetURL, Description: rec.description,
		URL: "https://gitea.example/api/v1/repos/" + repo + "/statuses/" + sha, Context: rec.name,
		Creator: map[string]any{"id": 1, "login": "flux-commit-tracker"}, CreatedAt: rec.at, UpdatedAt: rec.at,
	}
}

// combined answers GET /repos/{owner}/{repo}/commits/{ref}/status: the latest status per context, by id.
func (g *Gitea) combined(r *http.Request, repo, sha string) answer {
	latest := map[string]record{}
	for _, rec := range g.statuses[repo+"/"+sha] {
		latest[rec.name] = rec
	}
	list := make([]record, 0, len(latest))
	for _, rec := range latest {
		list = append(list, rec)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].id < list[j].id })
	state := stateSuccess
	if len(list) == 0 {
		state = statePending
	}
	for _, rec := range list {
		if rec.state == stateFailure || rec.state == stateError {
			state = stateFailure
		} else if rec.state == statePending && state != stateFailure {
			state = statePending
		}
	}
	q := r.URL.Query()
	limit := min(atoiDefault(q.Get("limit"), 30), 50)
	page := atoiDefault(q.Get("page"), 1)
	lo, hi := min((page-1)*limit, len(list)), min(page*limit, len(list))
	statuses := make([]giteaStatusJSON, 0, hi-lo)
	for _, rec := range list[lo:hi] {
		statuses = append(statuses, giteaJSON(rec, repo, sha))
	}
	a := jsonAnswer(http.StatusOK, map[string]any{
		"state": state, "sha": sha, "total_count": len(list), segStatuses: statuses,
		"repository": map[string]any{"id": 1, "full_name": repo}, "commit_url": "https://gitea.example/api/v1/repos/" + repo + "/commits/" + sha,
		"url": "https://gitea.example/api/v1/repos/" + repo + "/commits/" + sha + "/status",
	})
	a.header = http.Header{"X-Total-Count": {strconv.Itoa(len(list))}}
	return a
}

// create answers POST /repos/{owner}/{repo}/statuses/{sha}.
func (g *Gitea) create(repo, sha string, body []byte) answer {
	var in struct {
		State       *string `json:"state"`
		TargetURL   *string `json:"target_url"`
		Description *string `json:"description"`
		Context     *string `json:"context"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return jsonAnswer(http.StatusUnprocessableEntity, map[string]string{keyMessage: "invalid JSON", keyURL: giteaDocs})
	}
	valid := map[string]bool{statePending: true, stateSuccess: true, stateError: true, stateFailure: true, "warning": true}
	if in.State == nil || !valid[*in.State] {
		return jsonAnswer(http.StatusUnprocessableEntity, map[string]string{keyMessage: "[State]: invalid commit status state", keyURL: giteaDocs})
	}
	var context, description, targetURL string
	if in.Context != nil {
		context = *in.Context
	}
	if in.Description != nil {
		description = *in.Description
	}
	if in.TargetURL != nil {
		targetURL = *in.TargetURL
	}
	rec := g.add(repo, sha, *in.State, context, description, targetURL)
	return jsonAnswer(http.StatusCreated, giteaJSON(rec, repo, sha))
}
