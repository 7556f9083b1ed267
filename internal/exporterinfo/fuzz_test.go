package exporterinfo

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		seed,
		`{}`,
		`null`,
		`[]`,
		``,
		`{} {}`,
		`{"commit": 1}`,
		`{"commits_since_last_export": [null]}`,
		`{"commits_since_last_export": [{"hash": "a", "time": "2024-05-01 10:00:00 +0200"}]}`,
		`{"commits_since_last_export": [{"hash": "a", "time": "2024-05-01T10:00:00.5-07:00"}]}`,
		`{"commits_since_last_export": [{"hash": "", "time": "2024-05-01T10:00:00Z"}]}`,
		`{"commits_since_last_export": [{"hash": "a", "time": "0001-01-01T00:00:00Z"}]}`,
		`{"commits_since_last_export": [{"hash": "a", "time": "0000-01-01T00:00:00+23:59"}]}`,
		`{"commits_since_last_export": [{"HASH": "a", "Time": "9999-12-31T23:59:59Z"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadTime) && !errors.Is(err, ErrMissingHash) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if len(data) > MaxSize {
			t.Fatalf("decoded %d bytes, over MaxSize", len(data))
		}
		for i, c := range info.Commits {
			if c.Hash == "" || c.Time.IsZero() {
				t.Fatalf("commit %d = %+v: empty hash or zero time", i, c)
			}
		}

		// Re-encoding the result in the seed format decodes to the same Info.
		again, err := Decode(encode(t, info))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if again.Commit != info.Commit || again.BuildLink != info.BuildLink || len(again.Commits) != len(info.Commits) {
			t.Fatalf("round trip: %+v then %+v", info, again)
		}
		for i := range info.Commits {
			a, b := info.Commits[i], again.Commits[i]
			if a.Hash != b.Hash || a.Message != b.Message || a.Author != b.Author || a.Email != b.Email || !a.Time.Equal(b.Time) {
				t.Fatalf("round trip of commit %d: %+v then %+v", i, a, b)
			}
		}
	})
}

func encode(t *testing.T, info Info) []byte {
	t.Helper()
	w := struct {
		Commit    string       `json:"commit"`
		Commits   []wireCommit `json:"commits_since_last_export"`
		BuildLink string       `json:"export_build_link"`
	}{Commit: info.Commit, BuildLink: info.BuildLink}
	for _, c := range info.Commits {
		w.Commits = append(w.Commits, wireCommit{Hash: c.Hash, Message: c.Message, Author: c.Author, Email: c.Email, Time: c.Time.Format(time.RFC3339Nano)})
	}
	data, err := json.Marshal(w)
	if err != nil {
		t.Fatalf("encode %+v: %v", info, err)
	}
	return data
}
