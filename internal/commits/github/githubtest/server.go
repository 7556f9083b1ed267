// Package githubtest is an in-process fake of the GitHub REST API endpoints the tracker uses:
// get a commit (or only its SHA, by branch, tag or SHA prefix), compare two commits, get repository
// content and create an App installation token; and, for any owner/name, commit statuses (create, list,
// combined) and deployments with their statuses.
//
// Responses have GitHub's JSON shapes and headers: strong ETags honoured through If-None-Match (304),
// x-ratelimit-* headers, x-github-request-id and Link pagination on compare. Commit SHAs are the git
// object names of the commits built with Repo.Commit, so histories are real DAGs. Faults are injected
// with FailNext, RateLimitNext, PrimaryRateLimitNext, RespondNext (any status and body: null, empty,
// wrongly typed), RewriteNext (a real answer, altered), CutNext (a body cut short of its Content-Length),
// HangNext (no answer until the client gives up) and RedirectNext; Requests records what arrived, with
// its headers and arrival time.
//
// The API is served at the server root (like https://api.github.com/) and also under /api/v3/
// (like GitHub Enterprise Server), see URL and EnterpriseURL.
package githubtest

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

const (
	// SecondaryRateLimitMessage starts the message of a secondary rate limit response, as GitHub words it.
	SecondaryRateLimitMessage = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
	secondaryRateLimitDocs    = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits"
	primaryRateLimitDocs      = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-primary-rate-limits"
	restDocs                  = "https://docs.github.com/rest"
	enterprisePrefix          = "/api/v3"
	rateLimitAuthenticated    = 5000
	rateLimitAnonymous        = 60
)

// Request is one request the server answered.
type Request struct {
	Method string
	// Path is the URL path as received, e.g. /repos/o/r/compare/a...b.
	Path  string
	Query string
	// Status is the status answered; 0 for a request HangNext held without an answer.
	Status int
	// Time is when the request arrived.
	Time time.Time
	// Header is the request's header as received.
	Header http.Header
}

type faultKind int

const (
	faultStatus faultKind = iota
	faultSecondary
	faultPrimary
	faultRespond
	faultRewrite
	faultCut
	faultHang
	faultRedirect
)

type fault struct {
	kind     faultKind
	status   int
	wait     time.Duration
	body     []byte
	rewrite  func([]byte) []byte
	location string
}

type app struct {
	id  int64
	key *rsa.PublicKey
}

// Server is a fake GitHub REST API. Its methods are safe for concurrent use.
type Server struct {
	// URL is the API base URL, ending in "/", like https://api.github.com/.
	URL string

	ts *httptest.Server

	mu             sync.Mutex
	repos          map[string]*Repo
	installations  map[int64]app // installation ID -> app
	tokens         map[string]bool
	requireAuth    bool
	faults         []fault
	secondaryUntil time.Time
	secondaryCode  int
	primaryUntil   time.Time
	primaryStatus  int
	requests       []Request
	used           int
	windowReset    time.Time
	seq            int
	closed         chan struct{}
	store          statusStore
}

// NewServer starts a fake GitHub API; Close it when done.
func NewServer() *Server {
	s := &Server{
		repos:         map[string]*Repo{},
		installations: map[int64]app{},
		tokens:        map[string]bool{},
		windowReset:   time.Now().Add(time.Hour).Truncate(time.Second),
		closed:        make(chan struct{}),
	}
	s.ts = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.ts.URL + "/"
	return s
}

// Close shuts the server down, releasing requests held by HangNext.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	s.mu.Unlock()
	s.ts.Close()
}

// EnterpriseURL returns the API base URL in GitHub Enterprise Server form, ending in "/api/v3/".
func (s *Server) EnterpriseURL() string { return s.ts.URL + enterprisePrefix + "/" }

// Host returns the server's host:port.
func (s *Server) Host() string { return s.ts.Listener.Addr().String() }

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// Repo returns the repository owner/name, creating it when missing. Its default branch is "main".
func (s *Server) Repo(owner, name string) *Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := owner + "/" + name
	if r, ok := s.repos[key]; ok {
		return r
	}
	r := &Repo{srv: s, owner: owner, name: name, commits: map[string]*commit{}, branches: map[string]string{}, tags: map[string]string{}, defaultRef: "main"}
	s.repos[key] = r
	return r
}

// RequireToken makes the API answer 401 unless a request carries "Authorization: Bearer tok" or
// "Authorization: token tok". Installation tokens the server issued are accepted too. An empty tok
// only requires authentication.
func (s *Server) RequireToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requireAuth = true
	if tok != "" {
		s.tokens[tok] = true
	}
}

// InstallApp registers GitHub App appID, whose JWTs verify with key, as installation installationID,
// so POST /app/installations/{installationID}/access_tokens issues installation tokens.
func (s *Server) InstallApp(appID, installationID int64, key *rsa.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.installations[installationID] = app{id: appID, key: key}
}

// FailNext makes the next n requests answer status with a GitHub error body.
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{kind: faultStatus, status: status})
	}
}

// RateLimitNext makes the next request hit a secondary rate limit: status (403 or 429) with
// retry-after (whole seconds, rounded up) and GitHub's secondary rate limit message. Requests
// arriving before retryAfter has elapsed get the same answer with the remaining retry-after.
func (s *Server) RateLimitNext(status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{kind: faultSecondary, status: status, wait: retryAfter})
}

// PrimaryRateLimitNext makes the next request exhaust the primary rate limit: status (403 or 429)
// with x-ratelimit-remaining: 0 and x-ratelimit-reset at resetIn from now, rounded up to whole
// seconds. Every request before the reset gets the same answer.
func (s *Server) PrimaryRateLimitNext(status int, resetIn time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{kind: faultPrimary, status: status, wait: resetIn})
}

// RespondNext makes the next request answer status with body as it is (e.g. "null", "", `{"sha":5}`),
// with GitHub's common headers.
func (s *Server) RespondNext(status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{kind: faultRespond, status: status, body: []byte(body)})
}

// RewriteNext makes the next request get its real answer with the body passed through rewrite first.
func (s *Server) RewriteNext(rewrite func(body []byte) []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{kind: faultRewrite, rewrite: rewrite})
}

// CutNext makes the next request get its real answer's headers, Content-Length included, and only the
// first half of its body before the connection closes.
func (s *Server) CutNext() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{kind: faultCut})
}

// HangNext makes the next n requests get no answer at all until the client gives up or the server closes.
func (s *Server) HangNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{kind: faultHang})
	}
}

// RedirectNext makes the next request answer status (301, 302, 307) with Location: location.
func (s *Server) RedirectNext(status int, location string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{kind: faultRedirect, status: status, location: location})
}

// Requests returns the requests answered so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// ClearRequests forgets the recorded requests.
func (s *Server) ClearRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// response is what a handler answers; serveHTTP adds the common headers, the ETag and 304 handling.
type response struct {
	status      int
	body        []byte
	contentType string
	header      http.Header
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	s.mu.Lock()
	s.seq++
	authenticated, resp := s.authenticate(r)
	var f fault
	if resp == nil {
		f, resp = s.fault(now)
	}
	if f.kind == faultHang {
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Time: now, Header: r.Header.Clone()})
		s.mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
		return
	}
	defer s.mu.Unlock()
	if resp == nil {
		resp = s.route(r, now)
		if f.kind == faultRewrite {
			resp.body = f.rewrite(resp.body)
		}
	}
	declared := len(resp.body)
	if f.kind == faultCut {
		resp.body = resp.body[:len(resp.body)/2]
	}
	s.write(w, r, resp, authenticated, now, declared)
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Status: resp.status, Time: now, Header: r.Header.Clone()})
}

// authenticate checks the Authorization header; it answers 401 when the credentials are bad.
func (s *Server) authenticate(r *http.Request) (bool, *response) {
	auth := r.Header.Get("Authorization")
	if isTokenEndpoint(apiPath(r.URL.Path)) && r.Method == http.MethodPost {
		return strings.HasPrefix(auth, "Bearer "), nil // the handler verifies the JWT
	}
	tok, found := strings.CutPrefix(auth, "Bearer ")
	if !found {
		tok, found = strings.CutPrefix(auth, "token ")
	}
	switch {
	case found && s.tokens[tok]:
		return true, nil
	case !s.requireAuth && !found:
		return false, nil
	case !s.requireAuth && found:
		return true, nil // like a token the fake does not check
	default:
		return false, errorResponse(http.StatusUnauthorized, "Bad credentials", restDocs)
	}
}

// fault answers an injected failure or an active rate limit window; the fault taken is returned too, for
// the kinds that alter the real answer (rewrite, cut) or give none (hang).
func (s *Server) fault(now time.Time) (fault, *response) {
	if now.Before(s.primaryUntil) {
		return fault{}, s.primaryLimited()
	}
	if now.Before(s.secondaryUntil) {
		return fault{}, secondaryLimited(s.secondaryCode, s.secondaryUntil.Sub(now))
	}
	if len(s.faults) == 0 {
		return fault{}, nil
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	switch f.kind {
	case faultSecondary:
		s.secondaryUntil = now.Add(f.wait)
		s.secondaryCode = f.status
		return f, secondaryLimited(f.status, f.wait)
	case faultPrimary:
		// x-ratelimit-reset has one-second resolution; the window ends at that second.
		s.primaryUntil = time.Unix(ceilSeconds(now.Add(f.wait)), 0)
		s.primaryStatus = f.status
		return f, s.primaryLimited()
	case faultRespond:
		return f, &response{status: f.status, body: f.body}
	case faultRedirect:
		return f, &response{status: f.status, header: http.Header{"Location": {f.location}}}
	case faultRewrite, faultCut, faultHang:
		return f, nil
	default:
		return f, errorResponse(f.status, http.StatusText(f.status), restDocs)
	}
}

func secondaryLimited(status int, wait time.Duration) *response {
	resp := errorResponse(status, SecondaryRateLimitMessage+" If you reach out to GitHub Support for help, please include the request ID.", secondaryRateLimitDocs)
	resp.header = http.Header{"Retry-After": {strconv.FormatInt(int64((wait+time.Second-1)/time.Second), 10)}}
	return resp
}

func (s *Server) primaryLimited() *response {
	resp := errorResponse(s.primaryStatus, "API rate limit exceeded for installation. If you reach out to GitHub Support for help, please include the request ID.", primaryRateLimitDocs)
	resp.header = http.Header{
		"X-Ratelimit-Remaining": {"0"},
		"X-Ratelimit-Reset":     {strconv.FormatInt(s.primaryUntil.Unix(), 10)},
	}
	return resp
}

func ceilSeconds(t time.Time) int64 {
	if t.Nanosecond() == 0 {
		return t.Unix()
	}
	return t.Unix() + 1
}

// write sends resp with GitHub's common headers and its ETag (the handler's, else a hash of the body); a 200
// whose ETag matches If-None-Match becomes a 304.
// declared is the Content-Length sent, which CutNext makes longer than the body.
func (s *Server) write(w http.ResponseWriter, r *http.Request, resp *response, authenticated bool, now time.Time, declared int) {
	h := w.Header()
	for k, v := range resp.header {
		h[k] = v
	}
	if !now.Before(s.windowReset) {
		s.used = 0
		s.windowReset = now.Add(time.Hour).Truncate(time.Second)
	}
	s.used++
	limit := rateLimitAnonymous
	if authenticated {
		limit = rateLimitAuthenticated
	}
	setDefault(h, "X-Ratelimit-Limit", strconv.Itoa(limit))
	setDefault(h, "X-Ratelimit-Remaining", strconv.Itoa(max(limit-s.used, 1)))
	setDefault(h, "X-Ratelimit-Reset", strconv.FormatInt(s.windowReset.Unix(), 10))
	setDefault(h, "X-Ratelimit-Used", strconv.Itoa(s.used))
	setDefault(h, "X-Ratelimit-Resource", "core")
	h.Set("X-Github-Request-Id", fmt.Sprintf("%04X:%04X:%06X:%07X:%08X", s.seq%0xffff, 0x1d2e, s.seq, s.seq*7, now.Unix()&0xffffffff))
	h.Set("X-Github-Api-Version-Selected", "2022-11-28")
	h.Set("X-Github-Media-Type", "github.v3; format=json")
	h.Set("Date", now.UTC().Format(http.TimeFormat))
	if resp.contentType == "" {
		resp.contentType = "application/json; charset=utf-8"
	}
	h.Set("Content-Type", resp.contentType)
	if resp.status == http.StatusOK {
		h.Set("Cache-Control", "private, max-age=60, s-maxage=60")
		h.Set("Vary", "Accept, Authorization, Cookie, X-GitHub-OTP")
		etag := h.Get("Etag")
		if etag == "" {
			sum := sha256.Sum256(resp.body)
			etag = `"` + hex.EncodeToString(sum[:]) + `"`
			h.Set("Etag", etag)
		}
		if etagMatches(r.Header.Get("If-None-Match"), etag) {
			h.Del("Content-Type")
			resp.status = http.StatusNotModified
			resp.body, declared = nil, 0
		}
	}
	h.Set("Content-Length", strconv.Itoa(declared))
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

func setDefault(h http.Header, k, v string) {
	if h.Get(k) == "" {
		h.Set(k, v)
	}
}

// etagMatches applies If-None-Match's weak comparison.
func etagMatches(ifNoneMatch, etag string) bool {
	for tag := range strings.SplitSeq(ifNoneMatch, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == "*" || tag == etag {
			return true
		}
	}
	return false
}

// apiPath strips the GitHub Enterprise prefix.
func apiPath(p string) string {
	if rest, ok := strings.CutPrefix(p, enterprisePrefix+"/"); ok {
		return "/" + rest
	}
	return p
}

func isTokenEndpoint(p string) bool {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	return len(parts) == 4 && parts[0] == "app" && parts[1] == "installations" && parts[3] == "access_tokens"
}

// Path segments of the repository API.
const (
	segRepos   = "repos"
	segCommits = "commits"
)

func (s *Server) route(r *http.Request, now time.Time) *response {
	p := apiPath(r.URL.Path)
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if resp := s.routeStatuses(r, parts, now); resp != nil {
		return resp
	}
	switch {
	case isTokenEndpoint(p) && r.Method == http.MethodPost:
		return s.createInstallationToken(r, parts[2], now)
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		return errorResponse(http.StatusNotFound, "Not Found", restDocs)
	case len(parts) == 1 && parts[0] == "rate_limit":
		return s.rateLimit()
	case len(parts) >= 5 && parts[0] == segRepos:
		repo, ok := s.repos[parts[1]+"/"+parts[2]]
		if !ok {
			return errorResponse(http.StatusNotFound, "Not Found", restDocs)
		}
		rest := strings.Join(parts[4:], "/")
		switch parts[3] {
		case segCommits:
			return s.getCommit(r, repo, rest)
		case "compare":
			return s.compare(r, repo, rest)
		case "contents":
			return s.contents(r, repo, rest)
		}
	case len(parts) == 4 && parts[0] == segRepos && parts[3] == segCommits:
		if repo, ok := s.repos[parts[1]+"/"+parts[2]]; ok {
			return s.listCommits(r, repo)
		}
	case len(parts) == 4 && parts[0] == segRepos && parts[3] == "contents":
		if repo, ok := s.repos[parts[1]+"/"+parts[2]]; ok {
			return s.contents(r, repo, "")
		}
	}
	return errorResponse(http.StatusNotFound, "Not Found", restDocs)
}

func (s *Server) createInstallationToken(r *http.Request, idText string, now time.Time) *response {
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil {
		return errorResponse(http.StatusNotFound, "Not Found", restDocs)
	}
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return errorResponse(http.StatusUnauthorized, "A JSON web token could not be decoded", restDocs)
	}
	inst, known := s.installations[id]
	var claims jwt.RegisteredClaims
	_, err = jwt.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) {
		if !known {
			return nil, fmt.Errorf("unknown installation")
		}
		return inst.key, nil
	}, jwt.WithValidMethods([]string{"RS256"}))
	switch {
	case !known:
		return errorResponse(http.StatusNotFound, "Not Found", restDocs)
	case err != nil:
		return errorResponse(http.StatusUnauthorized, "A JSON web token could not be decoded", restDocs)
	case claims.Issuer != strconv.FormatInt(inst.id, 10):
		return errorResponse(http.StatusUnauthorized, "'Issuer' claim ('iss') must be an Integer", restDocs)
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%d/%d/%d", inst.id, id, s.seq))
	tok := "ghs_" + hex.EncodeToString(sum[:])[:36]
	s.tokens[tok] = true
	return jsonResponse(http.StatusCreated, map[string]any{
		"token":                tok,
		"expires_at":           now.Add(time.Hour).UTC().Format(time.RFC3339),
		"permissions":          map[string]string{"contents": "read", "metadata": "read"},
		"repository_selection": "all",
	})
}

func (s *Server) rateLimit() *response {
	core := map[string]int64{"limit": rateLimitAuthenticated, "used": int64(s.used), "remaining": int64(max(rateLimitAuthenticated-s.used, 1)), "reset": s.windowReset.Unix()}
	return jsonResponse(http.StatusOK, map[string]any{"resources": map[string]any{"core": core}, "rate": core})
}

// baseURL returns the API base URL the request was addressed to, ending in "/".
func baseURL(r *http.Request) string {
	u := "http://" + r.Host + "/"
	if strings.HasPrefix(r.URL.Path, enterprisePrefix+"/") {
		u += strings.TrimPrefix(enterprisePrefix, "/") + "/"
	}
	return u
}

// webURL returns the web (html_url) base of the request's host, ending in "/".
func webURL(r *http.Request) string { return "http://" + r.Host + "/" }

// pageLinks returns the Link header for page of last, keeping the request's other query parameters.
func pageLinks(r *http.Request, page, last, perPage int) string {
	link := func(p int, rel string) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(p))
		q.Set("per_page", strconv.Itoa(perPage))
		u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}
		return fmt.Sprintf("<%s>; rel=%q", u.String(), rel)
	}
	var links []string
	if page > 1 {
		links = append(links, link(page-1, "prev"))
	}
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"))
	}
	return strings.Join(links, ", ")
}
