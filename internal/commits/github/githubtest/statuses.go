package githubtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	statusesDocs         = "https://docs.github.com/rest/commits/statuses#create-a-commit-status"
	combinedDocs         = "https://docs.github.com/rest/commits/statuses#get-the-combined-status-for-a-specific-reference"
	deploymentsDocs      = "https://docs.github.com/rest/deployments/deployments#create-a-deployment"
	deploymentStatusDocs = "https://docs.github.com/rest/deployments/statuses#create-a-deployment-status"
	// maxStatusesPerContext is how many statuses GitHub keeps for one SHA and context.
	maxStatusesPerContext = 1000
	maxStatusDescription  = 140
	creatorLogin          = "flux-commit-tracker[bot]"
	creatorID             = 41898282
	segStatuses           = "statuses"
	stateFailure          = "failure"
	statePending          = "pending"
	stateSuccess          = "success"
)

// CommitStatus is one commit status the server holds.
type CommitStatus struct {
	State, Context, Description, TargetURL string
	Created                                time.Time
}

// DeploymentStatusRecord is one status of a deployment.
type DeploymentStatusRecord struct {
	State, Description, LogURL string
	AutoInactive               bool
}

// DeploymentRecord is one deployment the server holds, as it was created.
type DeploymentRecord struct {
	ID                                     int64
	SHA, Ref, Task, Environment            string
	Description                            string
	ProductionEnvironment, AutoMerge       bool
	TransientEnvironment                   bool
	RequiredContexts                       []string // nil when omitted
	Payload                                json.RawMessage
	Statuses                               []DeploymentStatusRecord
	created                                time.Time
	statusIDs                              []int64
	statusTimes                            []time.Time
	statusTargetURLs, statusEnvironmentURL []string
}

type commitStatus struct {
	CommitStatus
	id int64
}

// statusStore holds the statuses and deployments of every repository, known or not.
type statusStore struct {
	statuses     map[string][]*commitStatus     // owner/name/sha -> oldest first
	deployments  map[string][]*DeploymentRecord // owner/name -> oldest first
	nextStatusID int64
	nextDeployID int64
	nextDStateID int64
}

func (st *statusStore) init() {
	if st.statuses == nil {
		st.statuses = map[string][]*commitStatus{}
		st.deployments = map[string][]*DeploymentRecord{}
		st.nextStatusID, st.nextDeployID, st.nextDStateID = 1000, 100, 5000
	}
}

// CommitStatuses returns the statuses posted on sha of owner/name, oldest first.
func (s *Server) CommitStatuses(owner, name, sha string) []CommitStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.store.init()
	var out []CommitStatus
	for _, c := range s.store.statuses[owner+"/"+name+"/"+strings.ToLower(sha)] {
		out = append(out, c.CommitStatus)
	}
	return out
}

// RepoDeployments returns the deployments of owner/name, oldest first.
func (s *Server) RepoDeployments(owner, name string) []DeploymentRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.store.init()
	var out []DeploymentRecord
	for _, d := range s.store.deployments[owner+"/"+name] {
		c := *d
		c.RequiredContexts = append([]string(nil), d.RequiredContexts...)
		if d.RequiredContexts != nil && c.RequiredContexts == nil {
			c.RequiredContexts = []string{}
		}
		c.Payload = bytes.Clone(d.Payload)
		c.Statuses = append([]DeploymentStatusRecord(nil), d.Statuses...)
		out = append(out, c)
	}
	return out
}

// routeStatuses answers the commit status and deployment endpoints, for any owner/name; nil for other paths.
func (s *Server) routeStatuses(r *http.Request, parts []string, now time.Time) *response {
	if len(parts) < 4 || parts[0] != segRepos {
		return nil
	}
	owner, name := parts[1], parts[2]
	s.store.init()
	switch {
	case len(parts) == 5 && parts[3] == segStatuses && r.Method == http.MethodPost:
		return s.createStatus(r, owner, name, parts[4], now)
	case len(parts) >= 6 && parts[3] == segCommits && parts[len(parts)-1] == "status" && r.Method == http.MethodGet:
		return s.combinedStatus(r, owner, name, strings.Join(parts[4:len(parts)-1], "/"))
	case len(parts) >= 6 && parts[3] == segCommits && parts[len(parts)-1] == segStatuses && r.Method == http.MethodGet:
		return s.listStatuses(r, owner, name, strings.Join(parts[4:len(parts)-1], "/"))
	case len(parts) == 4 && parts[3] == "deployments" && r.Method == http.MethodPost:
		return s.createDeployment(r, owner, name, now)
	case len(parts) == 4 && parts[3] == "deployments" && r.Method == http.MethodGet:
		return s.listDeployments(r, owner, name)
	case len(parts) == 6 && parts[3] == "deployments" && parts[5] == segStatuses:
		d := s.deployment(owner, name, parts[4])
		if d == nil {
			return errorResponse(http.StatusNotFound, "Not Found", deploymentStatusDocs)
		}
		if r.Method == http.MethodPost {
			return s.createDeploymentStatus(r, owner, name, d, now)
		}
		if r.Method == http.MethodGet {
			return s.listDeploymentStatuses(r, owner, name, d)
		}
	}
	return nil
}

func (s *Server) deployment(owner, name, idText string) *DeploymentRecord {
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil {
		return nil
	}
	for _, d := range s.store.deployments[owner+"/"+name] {
		if d.ID == id {
			return d
		}
	}
	return nil
}

// resolveSHA turns ref into a SHA through a known repository; a ref of an unknown repository is taken as a SHA.
func (s *Server) resolveSHA(owner, name, ref string) (string, bool) {
	if repo, ok := s.repos[owner+"/"+name]; ok {
		if c := repo.resolve(ref); c != nil {
			return c.sha, true
		}
		return "", false
	}
	return strings.ToLower(ref), ref != ""
}

type validationErrorJSON struct {
	Resource string `json:"resource"`
	Code     string `json:"code"`
	Field    string `json:"field,omitempty"`
	Message  string `json:"message,omitempty"`
}

func validationFailed(resource, field, message, docs string) *response {
	return jsonResponse(http.StatusUnprocessableEntity, map[string]any{
		"message":           "Validation Failed",
		"errors":            []validationErrorJSON{{Resource: resource, Code: "custom", Field: field, Message: message}},
		"documentation_url": docs,
		"status":            "422",
	})
}

func decodeBody(r *http.Request, v any) *response {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || json.Unmarshal(raw, v) != nil {
		return errorResponse(http.StatusBadRequest, "Problems parsing JSON", restDocs)
	}
	return nil
}

type userJSON struct {
	Login     string `json:"login"`
	ID        int64  `json:"id"`
	NodeID    string `json:"node_id"`
	AvatarURL string `json:"avatar_url"`
	URL       string `json:"url"`
	HTMLURL   string `json:"html_url"`
	Type      string `json:"type"`
	SiteAdmin bool   `json:"site_admin"`
}

func creator(r *http.Request) userJSON {
	return userJSON{
		Login: creatorLogin, ID: creatorID, NodeID: "BOT_kgDOAn9RKg", Type: "Bot",
		AvatarURL: "https://avatars.githubusercontent.com/in/1?v=4",
		URL:       baseURL(r) + "users/" + creatorLogin, HTMLURL: webURL(r) + "apps/flux-commit-tracker",
	}
}

type statusJSON struct {
	URL         string    `json:"url"`
	AvatarURL   *string   `json:"avatar_url"`
	ID          int64     `json:"id"`
	NodeID      string    `json:"node_id"`
	State       string    `json:"state"`
	Description *string   `json:"description"`
	TargetURL   *string   `json:"target_url"`
	Context     string    `json:"context"`
	CreatedAt   string    `json:"created_at"`
	UpdatedAt   string    `json:"updated_at"`
	Creator     *userJSON `json:"creator,omitempty"`
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nodeID(prefix string, id int64) string {
	return prefix + base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%012d", id))
}

func (s *Server) statusJSON(r *http.Request, owner, name, sha string, c *commitStatus, withCreator bool) statusJSON {
	out := statusJSON{
		URL:         baseURL(r) + "repos/" + owner + "/" + name + "/statuses/" + sha,
		ID:          c.id,
		NodeID:      nodeID("SC_kwDO", c.id),
		State:       c.State,
		Description: optional(c.Description),
		TargetURL:   optional(c.TargetURL),
		Context:     c.Context,
		CreatedAt:   c.Created.UTC().Format(time.RFC3339),
		UpdatedAt:   c.Created.UTC().Format(time.RFC3339),
	}
	if withCreator {
		u := creator(r)
		out.Creator, out.AvatarURL = &u, &u.AvatarURL
	}
	return out
}

// createStatus answers POST /repos/{owner}/{repo}/statuses/{sha}.
func (s *Server) createStatus(r *http.Request, owner, name, ref string, now time.Time) *response {
	var in struct {
		State       *string `json:"state"`
		TargetURL   *string `json:"target_url"`
		Description *string `json:"description"`
		Context     *string `json:"context"`
	}
	if resp := decodeBody(r, &in); resp != nil {
		return resp
	}
	sha, ok := s.resolveSHA(owner, name, ref)
	if !ok {
		return errorResponse(http.StatusUnprocessableEntity, "No commit found for SHA: "+ref, statusesDocs)
	}
	c := &commitStatus{CommitStatus: CommitStatus{Context: "default", Created: now}}
	if in.Context != nil && *in.Context != "" {
		c.Context = *in.Context
	}
	if in.TargetURL != nil {
		c.TargetURL = *in.TargetURL
	}
	if in.Description != nil {
		c.Description = *in.Description
	}
	switch {
	case in.State == nil:
		return validationFailed("Status", "state", "state is missing", statusesDocs)
	case !map[string]bool{"error": true, stateFailure: true, statePending: true, stateSuccess: true}[*in.State]:
		return validationFailed("Status", "state", "state is not included in the list", statusesDocs)
	case len([]rune(c.Description)) > maxStatusDescription:
		return validationFailed("Status", "description", "description is too long (maximum is 140 characters)", statusesDocs)
	}
	c.State = *in.State
	key := owner + "/" + name + "/" + sha
	n := 0
	for _, old := range s.store.statuses[key] {
		if old.Context == c.Context {
			n++
		}
	}
	if n >= maxStatusesPerContext {
		return validationFailed("Status", "", "This SHA and context has reached the maximum number of statuses.", statusesDocs)
	}
	s.store.nextStatusID++
	c.id = s.store.nextStatusID
	s.store.statuses[key] = append(s.store.statuses[key], c)
	return jsonResponse(http.StatusCreated, s.statusJSON(r, owner, name, sha, c, true))
}

// paginate cuts list (of length n) to the page asked, default 30 per page and at most 100, and returns the
// bounds and the Link header.
func paginate(r *http.Request, n int) (lo, hi int, header http.Header) {
	q := r.URL.Query()
	perPage := min(atoiDefault(q.Get("per_page"), 30), 100)
	page := atoiDefault(q.Get("page"), 1)
	last := max((n+perPage-1)/perPage, 1)
	if links := pageLinks(r, page, last, perPage); links != "" {
		header = http.Header{"Link": {links}}
	}
	return min((page-1)*perPage, n), min(page*perPage, n), header
}

// combinedStatus answers GET /repos/{owner}/{repo}/commits/{ref}/status: the latest status per context,
// newest first, paginated.
func (s *Server) combinedStatus(r *http.Request, owner, name, ref string) *response {
	sha, ok := s.resolveSHA(owner, name, ref)
	if !ok {
		return errorResponse(http.StatusNotFound, "No commit found for SHA: "+ref, combinedDocs)
	}
	latest := map[string]*commitStatus{}
	for _, c := range s.store.statuses[owner+"/"+name+"/"+sha] {
		latest[c.Context] = c
	}
	list := make([]*commitStatus, 0, len(latest))
	for _, c := range latest {
		list = append(list, c)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].id > list[j].id })
	state := stateSuccess
	if len(list) == 0 {
		state = statePending
	}
	for _, c := range list {
		switch c.State {
		case stateFailure, "error":
			state = stateFailure
		case statePending:
			if state != stateFailure {
				state = statePending
			}
		}
	}
	lo, hi, header := paginate(r, len(list))
	statuses := make([]statusJSON, 0, hi-lo)
	for _, c := range list[lo:hi] {
		statuses = append(statuses, s.statusJSON(r, owner, name, sha, c, false))
	}
	api := baseURL(r) + "repos/" + owner + "/" + name
	resp := jsonResponse(http.StatusOK, map[string]any{
		"state":       state,
		segStatuses:   statuses,
		"sha":         sha,
		"total_count": len(list),
		"repository": map[string]any{
			"id": 1296269, "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5", "name": name, "full_name": owner + "/" + name,
			"private": false, "html_url": webURL(r) + owner + "/" + name, "url": api,
			"owner": map[string]any{"login": owner, "id": 1, "type": "Organization"},
		},
		"commit_url": api + "/commits/" + sha,
		"url":        api + "/commits/" + sha + "/status",
	})
	resp.header = header
	return resp
}

// listStatuses answers GET /repos/{owner}/{repo}/commits/{ref}/statuses: every status, newest first.
func (s *Server) listStatuses(r *http.Request, owner, name, ref string) *response {
	sha, ok := s.resolveSHA(owner, name, ref)
	if !ok {
		return errorResponse(http.StatusNotFound, "No commit found for SHA: "+ref, combinedDocs)
	}
	all := s.store.statuses[owner+"/"+name+"/"+sha]
	lo, hi, header := paginate(r, len(all))
	out := make([]statusJSON, 0, hi-lo)
	for i := len(all) - 1 - lo; i > len(all)-1-hi; i-- {
		out = append(out, s.statusJSON(r, owner, name, sha, all[i], true))
	}
	resp := jsonResponse(http.StatusOK, out)
	resp.header = header
	return resp
}

type deploymentJSON struct {
	URL                   string          `json:"url"`
	ID                    int64           `json:"id"`
	NodeID                string          `json:"node_id"`
	SHA                   string          `json:"sha"`
	Ref                   string          `json:"ref"`
	Task                  string          `json:"task"`
	Payload               json.RawMessage `json:"payload"`
	OriginalEnvironment   string          `json:"original_environment"`
	Environment           string          `json:"environment"`
	Description           *string         `json:"description"`
	Creator               userJSON        `json:"creator"`
	CreatedAt             string          `json:"created_at"`
	UpdatedAt             string          `json:"updated_at"`
	StatusesURL           string          `json:"statuses_url"`
	RepositoryURL         string          `json:"repository_url"`
	TransientEnvironment  bool            `json:"transient_environment"`
	ProductionEnvironment bool            `json:"production_environment"`
}

func deploymentOut(r *http.Request, owner, name string, d *DeploymentRecord) deploymentJSON {
	api := baseURL(r) + "repos/" + owner + "/" + name
	url := api + "/deployments/" + strconv.FormatInt(d.ID, 10)
	return deploymentJSON{
		URL: url, ID: d.ID, NodeID: nodeID("DE_kwDO", d.ID), SHA: d.SHA, Ref: d.Ref, Task: d.Task, Payload: d.Payload,
		OriginalEnvironment: d.Environment, Environment: d.Environment, Description: optional(d.Description), Creator: creator(r),
		CreatedAt: d.created.UTC().Format(time.RFC3339), UpdatedAt: d.created.UTC().Format(time.RFC3339),
		StatusesURL: url + "/statuses", RepositoryURL: api,
		TransientEnvironment: d.TransientEnvironment, ProductionEnvironment: d.ProductionEnvironment,
	}
}

// createDeployment answers POST /repos/{owner}/{repo}/deployments; with required_contexts omitted, every
// context of the SHA must be successful (409 otherwise), as GitHub checks.
func (s *Server) createDeployment(r *http.Request, owner, name string, now time.Time) *response {
	var in struct {
		Ref                   *string         `json:"ref"`
		Task                  *string         `json:"task"`
		AutoMerge             *bool           `json:"auto_merge"`
		RequiredContexts      *[]string       `json:"required_contexts"`
		Payload               json.RawMessage `json:"payload"`
		Environment           *string         `json:"environment"`
		Description           *string         `json:"description"`
		TransientEnvironment  *bool           `json:"transient_environment"`
		ProductionEnvironment *bool           `json:"production_environment"`
	}
	if resp := decodeBody(r, &in); resp != nil {
		return resp
	}
	if in.Ref == nil || *in.Ref == "" {
		return errorResponse(http.StatusUnprocessableEntity, "Invalid request.\n\n\"ref\" wasn't supplied.", deploymentsDocs)
	}
	sha, ok := s.resolveSHA(owner, name, *in.Ref)
	if !ok {
		return errorResponse(http.StatusUnprocessableEntity, "No ref found for: "+*in.Ref, deploymentsDocs)
	}
	d := &DeploymentRecord{SHA: sha, Ref: *in.Ref, Task: "deploy", Environment: "production", AutoMerge: true, created: now, Payload: json.RawMessage("{}")}
	if in.Task != nil {
		d.Task = *in.Task
	}
	if in.Environment != nil {
		d.Environment = *in.Environment
	}
	if in.Description != nil {
		d.Description = *in.Description
	}
	if in.AutoMerge != nil {
		d.AutoMerge = *in.AutoMerge
	}
	if in.TransientEnvironment != nil {
		d.TransientEnvironment = *in.TransientEnvironment
	}
	d.ProductionEnvironment = d.Environment == "production"
	if in.ProductionEnvironment != nil {
		d.ProductionEnvironment = *in.ProductionEnvironment
	}
	if len(in.Payload) > 0 && string(in.Payload) != "null" {
		d.Payload = bytes.Clone(in.Payload)
	}
	latest := map[string]string{}
	for _, c := range s.store.statuses[owner+"/"+name+"/"+sha] {
		latest[c.Context] = c.State
	}
	if in.RequiredContexts != nil {
		d.RequiredContexts = append([]string{}, *in.RequiredContexts...)
		for _, ctx := range d.RequiredContexts {
			if latest[ctx] != stateSuccess {
				return errorResponse(http.StatusConflict, "Conflict: Commit status checks failed for "+d.Ref+".", deploymentsDocs)
			}
		}
	} else {
		for _, state := range latest {
			if state != stateSuccess {
				return errorResponse(http.StatusConflict, "Conflict: Commit status checks failed for "+d.Ref+".", deploymentsDocs)
			}
		}
	}
	s.store.nextDeployID++
	d.ID = s.store.nextDeployID
	key := owner + "/" + name
	s.store.deployments[key] = append(s.store.deployments[key], d)
	return jsonResponse(http.StatusCreated, deploymentOut(r, owner, name, d))
}

// listDeployments answers GET /repos/{owner}/{repo}/deployments?sha=&ref=&task=&environment=, newest first.
func (s *Server) listDeployments(r *http.Request, owner, name string) *response {
	q := r.URL.Query()
	var list []*DeploymentRecord
	all := s.store.deployments[owner+"/"+name]
	for i := len(all) - 1; i >= 0; i-- {
		d := all[i]
		if (q.Has("sha") && q.Get("sha") != d.SHA) || (q.Has("ref") && q.Get("ref") != d.Ref) ||
			(q.Has("task") && q.Get("task") != d.Task) || (q.Has("environment") && q.Get("environment") != d.Environment) {
			continue
		}
		list = append(list, d)
	}
	lo, hi, header := paginate(r, len(list))
	out := make([]deploymentJSON, 0, hi-lo)
	for _, d := range list[lo:hi] {
		out = append(out, deploymentOut(r, owner, name, d))
	}
	resp := jsonResponse(http.StatusOK, out)
	resp.header = header
	return resp
}

type deploymentStatusJSON struct {
	URL            string   `json:"url"`
	ID             int64    `json:"id"`
	NodeID         string   `json:"node_id"`
	State          string   `json:"state"`
	Creator        userJSON `json:"creator"`
	Description    string   `json:"description"`
	Environment    string   `json:"environment"`
	TargetURL      string   `json:"target_url"`
	LogURL         string   `json:"log_url"`
	CreatedAt      string   `json:"created_at"`
	UpdatedAt      string   `json:"updated_at"`
	DeploymentURL  string   `json:"deployment_url"`
	RepositoryURL  string   `json:"repository_url"`
	EnvironmentURL string   `json:"environment_url"`
}

func deploymentStatusOut(r *http.Request, owner, name string, d *DeploymentRecord, i int) deploymentStatusJSON {
	api := baseURL(r) + "repos/" + owner + "/" + name
	dURL := api + "/deployments/" + strconv.FormatInt(d.ID, 10)
	st := d.Statuses[i]
	at := d.statusTimes[i].UTC().Format(time.RFC3339)
	return deploymentStatusJSON{
		URL: dURL + "/statuses/" + strconv.FormatInt(d.statusIDs[i], 10), ID: d.statusIDs[i], NodeID: nodeID("DES_kwDO", d.statusIDs[i]),
		State: st.State, Creator: creator(r), Description: st.Description, Environment: d.Environment,
		TargetURL: d.statusTargetURLs[i], LogURL: st.LogURL, CreatedAt: at, UpdatedAt: at,
		DeploymentURL: dURL, RepositoryURL: api, EnvironmentURL: d.statusEnvironmentURL[i],
	}
}

func (st *statusStore) addDeploymentStatus(d *DeploymentRecord, rec DeploymentStatusRecord, targetURL, environmentURL string, now time.Time) {
	st.nextDStateID++
	d.Statuses = append(d.Statuses, rec)
	d.statusIDs = append(d.statusIDs, st.nextDStateID)
	d.statusTimes = append(d.statusTimes, now)
	d.statusTargetURLs = append(d.statusTargetURLs, targetURL)
	d.statusEnvironmentURL = append(d.statusEnvironmentURL, environmentURL)
}

// createDeploymentStatus answers POST /repos/{owner}/{repo}/deployments/{id}/statuses. A success with
// auto_inactive (the default) adds an inactive status to every earlier non-transient, non-production
// deployment to the same environment whose latest status is success, as GitHub documents.
func (s *Server) createDeploymentStatus(r *http.Request, owner, name string, d *DeploymentRecord, now time.Time) *response {
	var in struct {
		State          *string `json:"state"`
		LogURL         *string `json:"log_url"`
		TargetURL      *string `json:"target_url"`
		Description    *string `json:"description"`
		EnvironmentURL *string `json:"environment_url"`
		AutoInactive   *bool   `json:"auto_inactive"`
	}
	if resp := decodeBody(r, &in); resp != nil {
		return resp
	}
	valid := map[string]bool{"error": true, stateFailure: true, "inactive": true, "in_progress": true, "queued": true, statePending: true, stateSuccess: true}
	if in.State == nil || !valid[*in.State] {
		return validationFailed("DeploymentStatus", "state", "state is not included in the list", deploymentStatusDocs)
	}
	rec := DeploymentStatusRecord{State: *in.State, AutoInactive: true}
	if in.Description != nil {
		rec.Description = *in.Description
	}
	if len([]rune(rec.Description)) > maxStatusDescription {
		return validationFailed("DeploymentStatus", "description", "description is too long (maximum is 140 characters)", deploymentStatusDocs)
	}
	if in.LogURL != nil {
		rec.LogURL = *in.LogURL
	}
	if in.AutoInactive != nil {
		rec.AutoInactive = *in.AutoInactive
	}
	targetURL, environmentURL := rec.LogURL, ""
	if in.TargetURL != nil && targetURL == "" {
		targetURL = *in.TargetURL
	}
	if in.EnvironmentURL != nil {
		environmentURL = *in.EnvironmentURL
	}
	s.store.addDeploymentStatus(d, rec, targetURL, environmentURL, now)
	if rec.State == stateSuccess && rec.AutoInactive {
		for _, old := range s.store.deployments[owner+"/"+name] {
			if old.ID >= d.ID || old.Environment != d.Environment || old.TransientEnvironment || old.ProductionEnvironment ||
				len(old.Statuses) == 0 || old.Statuses[len(old.Statuses)-1].State != stateSuccess {
				continue
			}
			s.store.addDeploymentStatus(old, DeploymentStatusRecord{State: "inactive"}, "", "", now)
		}
	}
	return jsonResponse(http.StatusCreated, deploymentStatusOut(r, owner, name, d, len(d.Statuses)-1))
}

// listDeploymentStatuses answers GET /repos/{owner}/{repo}/deployments/{id}/statuses, newest first.
func (s *Server) listDeploymentStatuses(r *http.Request, owner, name string, d *DeploymentRecord) *response {
	lo, hi, header := paginate(r, len(d.Statuses))
	out := make([]deploymentStatusJSON, 0, hi-lo)
	for i := len(d.Statuses) - 1 - lo; i > len(d.Statuses)-1-hi; i-- {
		out = append(out, deploymentStatusOut(r, owner, name, d, i))
	}
	resp := jsonResponse(http.StatusOK, out)
	resp.header = header
	return resp
}
