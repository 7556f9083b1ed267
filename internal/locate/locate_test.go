package locate

import (
	"errors"
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/flux"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
)

// The apply time of a commit is the first apply of the newest run of applies holding it: exact after an apply
// that did not hold it, at or before the oldest kept one, Flux's own when the tracker has no history.
func TestAppliedAt(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	applies := []ledger.Apply{{Digest: "a", At: at(10)}, {Digest: "b", At: at(20)}, {Digest: "c", At: at(30)}, {Digest: "d", At: at(40)}}
	d := flux.Deployment{Applied: at(45)}
	for _, tt := range []struct {
		name    string
		holding map[string]bool
		entry   *ledger.Entry
		want    time.Time
		exact   bool
	}{
		{"first held by c", map[string]bool{"c": true, "d": true}, &ledger.Entry{Applies: applies}, at(30), true},
		{"held by every kept apply", map[string]bool{"a": true, "b": true, "c": true, "d": true}, &ledger.Entry{Applies: applies}, at(10), false},
		{"rolled back and forth: the newest run counts", map[string]bool{"a": true, "c": true, "d": true}, &ledger.Entry{Applies: applies}, at(30), true},
		{"current revision not recorded yet", map[string]bool{}, &ledger.Entry{Applies: applies}, at(45), false},
		{"no tracker", map[string]bool{"d": true}, nil, at(45), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, exact, err := appliedAt(d, tt.entry, func(digest string) (bool, error) { return tt.holding[digest], nil })
			if err != nil || !got.Equal(tt.want) || exact != tt.exact {
				t.Errorf("appliedAt = %v, exact %v, %v; want %v, exact %v", got, exact, err, tt.want, tt.exact)
			}
		})
	}
	boom := errors.New("provider down")
	if _, _, err := appliedAt(d, &ledger.Entry{Applies: applies}, func(string) (bool, error) { return false, boom }); !errors.Is(err, boom) {
		t.Errorf("appliedAt with a failing provider = %v, want its error", err)
	}
}
