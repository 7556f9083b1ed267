// Package forgetest holds in-process fakes of the GitLab and Gitea commit status APIs, as http.Handlers
// to serve with httptest.NewServer.
//
// Answers have the forges' JSON shapes, headers (GitLab's X-Next-Page pagination) and error bodies. Tokens
// are checked; faults are injected with FailNext, RateLimitNext, RespondNext and RedirectNext; Requests
// records what arrived.
package forgetest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/forge"
)

// Words both fakes use.
const (
	stateSuccess = "success"
	statePending = "pending"
	stateFailure = "failure"
	keyError     = "error"
	stateError   = "error"
	keyMessage   = "message"
	segStatuses  = "statuses"
	keyURL       = "url"
)

// Request is one request a fake answered.
type Request struct {
	Method, Path, Query string
	Status              int
	Header              http.Header
	Body                []byte
}

type fault struct {
	status     int
	retryAfter time.Duration
	body       *string
	location   string
}

// faults is the fault injection and request log both fakes share.
type faults struct {
	mu       sync.Mutex
	pending  []fault
	requests []Request
}

// FailNext makes the next n requests answer status with the forge's error body.
func (f *faults) FailNext(n, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.pending = append(f.pending, fault{status: status})
	}
}

// RateLimitNext makes the next request answer 429 with Retry-After (whole seconds, rounded up).
func (f *faults) RateLimitNext(retryAfter time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending = append(f.pending, fault{status: http.StatusTooManyRequests, retryAfter: retryAfter})
}

// RespondNext makes the next request answer status with body as it is ("null", "", `{"id":"x"}`).
func (f *faults) RespondNext(status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending = append(f.pending, fault{status: status, body: &body})
}

// RedirectNext makes the next request answer 307 with Location: location.
func (f *faults) RedirectNext(location string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending = append(f.pending, fault{status: http.StatusTemporaryRedirect, location: location})
}

// Requests returns the requests answered so far, oldest first.
func (f *faults) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.requests...)
}

// take pops the next fault; the caller holds mu.
func (f *faults) take() (fault, bool) {
	if len(f.pending) == 0 {
		return fault{}, false
	}
	next := f.pending[0]
	f.pending = f.pending[1:]
	return next, true
}

// answer is what a fake's handler writes.
type answer struct {
	status int
	body   []byte
	header http.Header
}

func jsonAnswer(status int, v any) answer {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"message":"500 Internal Server Error"}`)
		status = http.StatusInternalServerError
	}
	return answer{status: status, body: b}
}

// faultAnswer turns an injected fault into an answer, with errorBody giving the forge's error shape.
func faultAnswer(f fault, errorBody func(status int) answer) answer {
	switch {
	case f.body != nil:
		return answer{status: f.status, body: []byte(*f.body)}
	case f.location != "":
		return answer{status: f.status, header: http.Header{"Location": {f.location}}}
	case f.status == http.StatusTooManyRequests:
		a := errorBody(f.status)
		a.header = http.Header{"Retry-After": {strconv.FormatInt(int64((f.retryAfter+time.Second-1)/time.Second), 10)}}
		return a
	}
	return errorBody(f.status)
}

// serve runs one request through the fault queue, the handler and the log.
func (f *faults) serve(w http.ResponseWriter, r *http.Request, handle func(*http.Request, []byte) answer, errorBody func(int) answer) {
	var body []byte
	if r.Body != nil {
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(http.MaxBytesReader(w, r.Body, 1<<20))
		body = buf.Bytes()
	}
	f.mu.Lock()
	var a answer
	if next, ok := f.take(); ok {
		a = faultAnswer(next, errorBody)
	} else {
		a = handle(r, body)
	}
	f.requests = append(f.requests, Request{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Status: a.status, Header: r.Header.Clone(), Body: body})
	f.mu.Unlock()
	for k, v := range a.header {
		w.Header()[k] = v
	}
	if a.body != nil {
		w.Header().Set("Content-Type", "application/json")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(a.body)))
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

// record is one status a fake holds.
type record struct {
	id                                      int64
	state, name, description, targetURL, at string
}

func (r record) status(state forge.State) forge.Status {
	return forge.Status{State: state, Context: r.name, Description: r.description, TargetURL: r.targetURL}
}

func atoiDefault(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return n
	}
	return def
}
