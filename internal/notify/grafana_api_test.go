package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/notify"
)

// fakeGrafana answers /api/annotations as Grafana does: GET filters by every tags= given, POST answers
// {"message":"Annotation added","id":N}, PATCH /api/annotations/{id} {"message":"Annotation patched"}; every
// call needs the Bearer token.
type fakeGrafana struct {
	mu     sync.Mutex
	token  string
	next   int64
	byID   map[int64]map[string]any
	calls  []string
	failOn string // a method answered 500
}

func (g *fakeGrafana) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, r.Method)
	if r.Header.Get("Authorization") != "Bearer "+g.token {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"message":"Unauthorized"}`))
		return
	}
	if r.Method == g.failOn {
		w.WriteHeader(http.StatusInternalServerError)
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

// One region per commit per cluster, from the commit to the last apply of it; found again by its tags, so a
// second object (or a retry after a restart) widens it instead of adding one.
func TestGrafanaRegionsAreFoundAgainNotDuplicated(t *testing.T) {
	fake := &fakeGrafana{token: "glsa_token", byID: map[int64]map[string]any{}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	g := &notify.Grafana{URL: srv.URL, Token: "glsa_token", Client: srv.Client()}
	r := record()
	send := func(applied time.Time, name string) {
		t.Helper()
		rec := r
		rec.Applied, rec.Object.Name = applied, name
		body, ok, err := g.Notice(rec)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		if err := g.Send(context.Background(), ledger.Item{ID: "n-" + name, Sink: g.Name(), Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	send(t0.Add(90*time.Second), "web")
	send(t0.Add(90*time.Second), "web") // the same notice again: nothing new
	send(t0.Add(5*time.Minute), "api")  // another object applies the same commits later: the regions widen
	if len(fake.byID) != 2 {
		t.Fatalf("%d annotations, want one per commit (2)", len(fake.byID))
	}
	for _, a := range fake.byID {
		tags := a["tags"].([]any)
		if len(tags) != 4 || tags[0] != "flux-commit-tracker" || tags[1] != "cluster:prod-eu" || tags[2] != "repo:acme/app" ||
			!strings.HasPrefix(tags[3].(string), "commit:") {
			t.Errorf("tags %v", tags)
		}
		if end := int64(a["timeEnd"].(float64)); end != t0.Add(5*time.Minute).UnixMilli() {
			t.Errorf("region ends at %d, want the last apply %d", end, t0.Add(5*time.Minute).UnixMilli())
		}
		if start := int64(a["time"].(float64)); start != t0.UnixMilli() && start != t0.Add(30*time.Second).UnixMilli() {
			t.Errorf("region starts at %d, want its commit's time", start)
		}
	}
	// A wrong token is retried (not refused): the notices wait for a fixed token.
	bad := &notify.Grafana{URL: srv.URL, Token: "wrong", Client: srv.Client()}
	body, _, _ := bad.Notice(r)
	if err := bad.Send(context.Background(), ledger.Item{ID: "x", Body: body}); err == nil || strings.Contains(err.Error(), "refused") {
		t.Errorf("wrong token: %v; want an error retried later", err)
	}
}
