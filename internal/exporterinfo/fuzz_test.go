package exporterinfo

import (
	"encoding/json"
	"errors"
	"strings"
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
		`{"commits_since_last_export": [{"hash": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "time": "2024-05-01 10:00:00 +0200"}]}`,
		`{"commits_since_last_export": [{"hash": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "time": "2024-05-01T10:00:00.5-07:00"}]}`,
		`{"commits_since_last_export": [{"hash": "", "time": "2024-05-01T10:00:00Z"}]}`,
		`{"commits_since_last_export": [{"hash": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "time": "0001-01-01T00:00:00Z"}]}`,
		`{"commits_since_last_export": [{"hash": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "time": "0000-01-01T00:00:00+23:59"}]}`,
		`{"commit": "ABCDEF0123456789ABCDEF0123456789ABCDEF01", "commits_since_last_export": [{"hash": "` + strings.Repeat("b", 64) + `", "time": "2024-05-01T10:00:00Z"}, {"hash": "` + strings.Repeat("B", 64) + `", "time": "2024-05-01T10:00:00Z"}]}`,
		`{"commit": "not a sha"}`,
		`{"commits_since_last_export": [{"HASH": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "Time": "9999-12-31T23:59:59Z"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadTime) && !errors.Is(err, ErrMissingHash) && !errors.Is(err, ErrBadHash) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if len(data) > MaxSize {
			t.Fatalf("decoded %d bytes, over MaxSize", len(data))
		}
		if info.Commit != "" && !isSHA(info.Commit) {
			t.Fatalf("head commit %q is not a lowercase hex SHA", info.Commit)
		}
		if len(info.Commits) > MaxCommits || info.Truncated < 0 || (info.Truncated > 0 && len(info.Commits) != MaxCommits) {
			t.Fatalf("%d commits, %d truncated: cap %d not kept", len(info.Commits), info.Truncated, MaxCommits)
		}
		seen := map[string]bool{}
		for i, c := range info.Commits {
			if !isSHA(c.Hash) || c.Time.IsZero() {
				t.Fatalf("commit %d = %+v: hash not a lowercase hex SHA, or zero time", i, c)
			}
			if seen[c.Hash] {
				t.Fatalf("commit %s listed twice", c.Hash)
			}
			seen[c.Hash] = true
			if len(c.Message) > MaxMessage || len(c.Author) > MaxName || len(c.Email) > MaxName {
				t.Fatalf("commit %d has an unbounded string: %d, %d, %d bytes", i, len(c.Message), len(c.Author), len(c.Email))
			}
		}
		if len(info.BuildLink) > MaxBuildLink {
			t.Fatalf("build link of %d bytes", len(info.BuildLink))
		}
		if id := info.ID(); (info.Head() == "") != (id == "") || (id != "" && len(id) != IDLength) {
			t.Fatalf("ID %q for head %q: want %d characters, empty only without a head", id, info.Head(), IDLength)
		}

		// Re-encoding the result in the seed format decodes to the same Info.
		again, err := Decode(encode(t, info))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if again.Commit != info.Commit || again.BuildLink != info.BuildLink || len(again.Commits) != len(info.Commits) || again.ID() != info.ID() {
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

// isSHA reports whether s is a lowercase hex SHA-1 or SHA-256 name.
func isSHA(s string) bool {
	return (len(s) == 40 || len(s) == 64) && strings.Trim(s, "0123456789abcdef") == ""
}
