package feedback

import (
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// FuzzDecodeNotice feeds stored notices, which anyone who can edit the ledger's ConfigMaps can alter.
func FuzzDecodeNotice(f *testing.F) {
	good, _, _ := Notifier{}.Notice(tracker.Record{Object: telemetry.ObjectAttributes{Kind: "Kustomization", Namespace: "apps", Name: "a"},
		Repository: repo, Revision: "main@sha1:" + sha(2), Applied: time.Unix(1700000000, 0),
		Commits: []latency.DeliveredCommit{{SHA: sha(1), Committed: time.Unix(1699999000, 0)}, {SHA: sha(2)}}})
	for _, seed := range []string{string(good), "", "null", "{}", `{"h":"github.com","r":"x","k":"K","n":"a","c":null}`,
		`{"h":"github.com","r":"x","k":"K","n":"a","c":[{"s":""}]}`, `{"h":1}`, string(good[:len(good)/2]), `[]`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := decodeNotice(body)
		if err != nil {
			return
		}
		if n.Host == "" || n.Repo == "" || n.Kind == "" || n.Name == "" || len(n.Commits) == 0 {
			t.Fatalf("decoded a notice that names nothing: %+v", n)
		}
		x := newFixture(t, &memForge{}, nil)
		x.s.applied(n) // whatever it holds, taking it must not panic
	})
}
