// Package grafanatest is a fake of Grafana's annotations API for tests, answering with Grafana's shapes.
package grafanatest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Server answers /api/annotations as Grafana does: GET filters by every tags= given, POST answers
// {"message":"Annotation added","id":N}, PATCH /api/annotations/{id} {"message":"Annotation patched"}; every
// call needs the Bearer token.
type Server struct {
	mu    sync.Mutex
	token string
	next  int64
	byID  map[int64]map[string]any
}

// New returns a fake Grafana that wants token as its Bearer token.
func New(token string) *Server { return &Server{token: token, byID: map[int64]map[string]any{}} }

// Annotations returns a copy of every annotation by ID, as posted and patched.
func (g *Server) Annotations() map[int64]map[string]any {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[int64]map[string]any, len(g.byID))
	for id, a := range g.byID {
		out[id] = maps.Clone(a)
	}
	return out
}

func (g *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+g.token {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"message":"Unauthorized"}`))
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/api/annotations":
		want := r.URL.Query()["tags"]
		out := []map[string]any{}
		for id, a := range g.byID {
			tags := a["tags"].([]any)
			all := true
			for _, t := range want {
				all = all && slices.ContainsFunc(tags, func(x any) bool { return x == t })
			}
			if all {
				b := map[string]any{"id": id, "time": a["time"], "timeEnd": a["timeEnd"], "tags": tags, "text": a["text"]}
				out = append(out, b)
			}
		}
		_ = json.NewEncoder(w).Encode(out)
	case r.Method == http.MethodPost && r.URL.Path == "/api/annotations":
		var a map[string]any
		_ = json.NewDecoder(r.Body).Decode(&a)
		g.next++
		g.byID[g.next] = a
		_, _ = fmt.Fprintf(w, `{"message":"Annotation added","id":%d}`, g.next)
	case r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, "/api/annotations/"):
		id, _ := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/api/annotations/"), 10, 64)
		a, ok := g.byID[id]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		var p map[string]any
		_ = json.NewDecoder(r.Body).Decode(&p)
		for k, v := range p {
			a[k] = v
		}
		_, _ = w.Write([]byte(`{"message":"Annotation patched"}`))
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}
