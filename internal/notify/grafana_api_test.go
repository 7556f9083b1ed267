package notify_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/notify"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/notify/grafanatest"
)

// One region per commit per cluster, from the commit to the last apply of it; found again by its tags, so a
// second object (or a retry after a restart) widens it instead of adding one.
func TestGrafanaRegionsAreFoundAgainNotDuplicated(t *testing.T) {
	fake := grafanatest.New("glsa_token")
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
	if len(fake.Annotations()) != 2 {
		t.Fatalf("%d annotations, want one per commit (2)", len(fake.Annotations()))
	}
	for _, a := range fake.Annotations() {
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
