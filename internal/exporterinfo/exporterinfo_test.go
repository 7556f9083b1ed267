package exporterinfo

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

const seed = `{
  "commit": "1111111111111111111111111111111111111111",
  "commits_since_last_export": [
    {"hash": "2222222222222222222222222222222222222222", "message": "fix: thing\n\nbody", "author": "Ada", "email": "ada@example.com", "time": "2024-05-01T10:00:00Z"},
    {"hash": "3333333333333333333333333333333333333333", "message": "feat", "author": "Bob", "email": "bob@example.com", "time": "2024-05-01T11:30:00.123456789+02:00", "unknown": {"nested": [1, 2]}}
  ],
  "export_build_link": "https://ci.example.com/builds/42",
  "exporter_version": "v2"
}`

func TestDecodeSeedFormat(t *testing.T) {
	got, err := Decode([]byte(seed))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if got.Commit != "1111111111111111111111111111111111111111" {
		t.Errorf("Commit = %q", got.Commit)
	}
	if got.BuildLink != "https://ci.example.com/builds/42" {
		t.Errorf("BuildLink = %q", got.BuildLink)
	}
	want := []UpstreamCommit{
		{
			Hash: "2222222222222222222222222222222222222222", Message: "fix: thing\n\nbody", Author: "Ada",
			Email: "ada@example.com", Time: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC),
		},
		{
			Hash: "3333333333333333333333333333333333333333", Message: "feat", Author: "Bob",
			Email: "bob@example.com", Time: time.Date(2024, 5, 1, 9, 30, 0, 123456789, time.UTC),
		},
	}
	if len(got.Commits) != len(want) {
		t.Fatalf("got %d commits, want %d: %+v", len(got.Commits), len(want), got.Commits)
	}
	for i, c := range got.Commits {
		w := want[i]
		if c.Hash != w.Hash || c.Message != w.Message || c.Author != w.Author || c.Email != w.Email || !c.Time.Equal(w.Time) {
			t.Errorf("commit %d = %+v, want %+v", i, c, w)
		}
	}
}

func TestDecodeTimeFormats(t *testing.T) {
	want := time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)
	for _, in := range []string{
		"2024-05-01T08:00:00Z",
		"2024-05-01T10:00:00+02:00",
		"2024-05-01T08:00:00.000Z",
		"2024-05-01 10:00:00 +0200",
		"2024-05-01 03:00:00 -0500",
	} {
		t.Run(in, func(t *testing.T) {
			info, err := Decode([]byte(`{"commits_since_last_export": [{"hash": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "time": "` + in + `"}]}`))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got := info.Commits[0].Time; !got.Equal(want) {
				t.Errorf("time = %v, want %v", got, want)
			}
		})
	}
}

func TestDecodeOptionalFields(t *testing.T) {
	tests := []struct {
		name, in string
	}{
		{"empty object", `{}`},
		{"null commits", `{"commit": "", "commits_since_last_export": null}`},
		{"empty commits", `{"commits_since_last_export": []}`},
		{"whitespace around", " \n{}\n\t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.in))
			if err != nil {
				t.Fatalf("Decode(%q): %v", tt.in, err)
			}
			if got.Commit != "" || got.BuildLink != "" || len(got.Commits) != 0 {
				t.Errorf("Decode(%q) = %+v, want empty Info", tt.in, got)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantErr   error
		wantInMsg string
	}{
		{"empty", ``, ErrMalformed, "empty document"},
		{"not json", `commit: x`, ErrMalformed, "offset"},
		{"truncated", `{"commit": "a"`, ErrMalformed, "truncated"},
		{"null", `null`, ErrMalformed, "null"},
		{"array", `[]`, ErrMalformed, "document is a JSON array, want object"},
		{"trailing data", `{} {}`, ErrMalformed, "trailing data"},
		{"trailing garbage", `{}x`, ErrMalformed, "trailing data"},
		{"commit wrong type", `{"commit": 1}`, ErrMalformed, "commit is a JSON number, want string"},
		{"commits wrong type", `{"commits_since_last_export": {}}`, ErrMalformed, "commits_since_last_export is a JSON object, want array"},
		{"entry wrong type", `{"commits_since_last_export": [{"hash": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "time": "2024-05-01T08:00:00Z"}, 7]}`, ErrMalformed, "commits_since_last_export[1]:"},
		{"entry null", `{"commits_since_last_export": [null]}`, ErrMalformed, "commits_since_last_export[0]: malformed exporter info: entry is null"},
		{"time wrong type", `{"commits_since_last_export": [{"hash": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "time": 1714550400}]}`, ErrMalformed, "time is a JSON number, want string"},
		{"missing hash", `{"commits_since_last_export": [{"time": "2024-05-01T08:00:00Z"}]}`, ErrMissingHash, "commits_since_last_export[0]: missing commit hash"},
		{"blank hash", `{"commits_since_last_export": [{"hash": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "time": "2024-05-01T08:00:00Z"}, {"hash": " ", "time": "2024-05-01T08:00:00Z"}]}`, ErrMissingHash, "commits_since_last_export[1]"},
		{"missing time", `{"commits_since_last_export": [{"hash": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}]}`, ErrBadTime, "commits_since_last_export[0]: commit bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb: bad commit time: time is missing"},
		{"bad time", `{"commits_since_last_export": [{"hash": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "time": "yesterday"}]}`, ErrBadTime, `time "yesterday" is neither RFC 3339`},
		{"zero time", `{"commits_since_last_export": [{"hash": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "time": "0001-01-01T00:00:00Z"}]}`, ErrBadTime, "zero time"},
		{"date only", `{"commits_since_last_export": [{"hash": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "time": "2024-05-01"}]}`, ErrBadTime, "2024-05-01"},
		{"unix seconds string", `{"commits_since_last_export": [{"hash": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "time": "1714550400"}]}`, ErrBadTime, "1714550400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode(%q) = %+v, want error", tt.in, got)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v does not wrap %v", err, tt.wantErr)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.wantInMsg) {
				t.Errorf("error %q does not mention %q", msg, tt.wantInMsg)
			}
			if got.Commit != "" || got.Commits != nil || got.BuildLink != "" {
				t.Errorf("returned %+v with error, want zero Info", got)
			}
		})
	}
}

func TestDecodeErrorDoesNotNameGoTypes(t *testing.T) {
	_, err := Decode([]byte(`{"commits_since_last_export": [{"hash": 5}]}`))
	if err == nil {
		t.Fatal("want error")
	}
	if msg := err.Error(); strings.Contains(msg, "wire") || strings.Contains(msg, "Go struct") {
		t.Errorf("error leaks Go type names: %q", msg)
	}
}

func TestDecodeSize(t *testing.T) {
	// A valid document of exactly MaxSize bytes decodes; one byte more does not.
	doc := []byte(`{"export_build_link": ""}`)
	padded := append(doc[:len(doc):len(doc)], bytes.Repeat([]byte(" "), MaxSize-len(doc))...)
	if len(padded) != MaxSize {
		t.Fatalf("test document is %d bytes", len(padded))
	}
	if _, err := Decode(padded); err != nil {
		t.Fatalf("Decode of MaxSize bytes: %v", err)
	}
	_, err := Decode(append(padded, ' '))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Decode of MaxSize+1 bytes: error %v, want ErrTooLarge", err)
	}
	if !strings.Contains(err.Error(), "1048577 bytes") {
		t.Errorf("error %q does not give the size", err)
	}
}

func TestDecodeHashes(t *testing.T) {
	sha1Upper := strings.Repeat("AbCdEf0123", 4)
	sha256 := strings.Repeat("0123456789abcdef", 4)
	info, err := Decode([]byte(`{"commit": "` + sha1Upper + `", "commits_since_last_export": [
		{"hash": "` + sha256 + `", "time": "2024-05-01T08:00:00Z"}]}`))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if info.Commit != strings.ToLower(sha1Upper) {
		t.Errorf("Commit = %q, want it lowercased", info.Commit)
	}
	if info.Commits[0].Hash != sha256 {
		t.Errorf("hash = %q, want the SHA-256 name", info.Commits[0].Hash)
	}

	for name, hash := range map[string]string{
		"short":          "abc",
		"41 digits":      strings.Repeat("a", 41),
		"non-hex":        strings.Repeat("g", 40),
		"path":           "../../../../etc/passwd/aaaaaaaaaaaaaaaaaaaaaaaaaa",
		"900 KB":         strings.Repeat("a", 900<<10),
		"spaces":         " " + strings.Repeat("a", 39),
		"sha256 non-hex": strings.Repeat("z", 64),
	} {
		t.Run(name, func(t *testing.T) {
			for _, doc := range []string{
				`{"commit": "` + hash + `"}`,
				`{"commits_since_last_export": [{"hash": "` + hash + `", "time": "2024-05-01T08:00:00Z"}]}`,
			} {
				got, err := Decode([]byte(doc))
				if !errors.Is(err, ErrBadHash) {
					t.Fatalf("Decode = %+v, %v; want ErrBadHash", got, err)
				}
				if len(err.Error()) > 300 {
					t.Errorf("error is %d bytes, want it bounded", len(err.Error()))
				}
			}
		})
	}
}

// TestIDFixedSize: a 900 KB commit field used to become the export's identity, stored verbatim in the ledger.
// The identity is now a fixed-size hash, and such a field is refused.
func TestIDFixedSize(t *testing.T) {
	huge := `{"commit": "` + strings.Repeat("a", 900<<10) + `"}`
	if info, err := Decode([]byte(huge)); err == nil {
		t.Fatalf("900 KB commit decoded, ID %d bytes", len(info.ID()))
	}
	a := Info{Commit: strings.Repeat("a", 40)}
	b := Info{Commits: []UpstreamCommit{{Hash: strings.Repeat("b", 64)}}}
	for _, info := range []Info{a, b} {
		if id := info.ID(); len(id) != IDLength || strings.Trim(id, "0123456789abcdef") != "" {
			t.Errorf("ID() = %q, want %d hex digits", id, IDLength)
		}
	}
	if a.ID() == b.ID() {
		t.Error("different exports share an ID")
	}
	if a.ID() != (Info{Commit: strings.Repeat("a", 40), Commits: b.Commits}).ID() {
		t.Error("ID depends on more than the head commit")
	}
	if a.Head() != strings.Repeat("a", 40) || b.Head() != strings.Repeat("b", 64) {
		t.Errorf("Head() = %q, %q", a.Head(), b.Head())
	}
	if (Info{}).ID() != "" {
		t.Error("an export without commits has an ID")
	}
}

func TestDecodeCapsAndCollapsesCommits(t *testing.T) {
	sha := func(i int) string { return fmt.Sprintf("%040x", i) }
	var entries []string
	for i := range MaxCommits + 7 {
		entries = append(entries, `{"hash": "`+sha(i)+`", "time": "2024-05-01T08:00:00Z"}`)
	}
	// Duplicates, in either case, collapse into the first listing.
	entries = append(entries, `{"hash": "`+strings.ToUpper(sha(3))+`", "time": "2024-05-01T09:00:00Z"}`, entries[5])
	info, err := Decode([]byte(`{"commits_since_last_export": [` + strings.Join(entries, ",") + `]}`))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if len(info.Commits) != MaxCommits || info.Truncated != 7 {
		t.Fatalf("%d commits, %d truncated; want %d and 7", len(info.Commits), info.Truncated, MaxCommits)
	}
	// The newest (last listed) are kept.
	if info.Commits[0].Hash != sha(7) || info.Commits[MaxCommits-1].Hash != sha(MaxCommits+6) {
		t.Errorf("kept %s..%s, want %s..%s", info.Commits[0].Hash, info.Commits[MaxCommits-1].Hash, sha(7), sha(MaxCommits+6))
	}

	small, err := Decode([]byte(`{"commits_since_last_export": [` + entries[1] + `,` + entries[2] + `,` + entries[1] + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(small.Commits) != 2 || small.Truncated != 0 || small.Commits[0].Hash != sha(1) || small.Commits[1].Hash != sha(2) {
		t.Errorf("got %+v, want %s and %s once each", small.Commits, sha(1), sha(2))
	}
}

func TestDecodeBoundsStrings(t *testing.T) {
	long := strings.Repeat("é", MaxMessage) // two bytes a rune
	doc := `{"export_build_link": "https://ci.example.com/` + strings.Repeat("x", MaxBuildLink) + `",
		"commits_since_last_export": [{"hash": "` + strings.Repeat("a", 40) + `", "time": "2024-05-01T08:00:00Z",
		"message": "` + long + `", "author": "` + long + `", "email": "` + long + `"}]}`
	info, err := Decode([]byte(doc))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	c := info.Commits[0]
	for name, tt := range map[string]struct {
		got string
		max int
	}{"message": {c.Message, MaxMessage}, "author": {c.Author, MaxName}, "email": {c.Email, MaxName}} {
		if len(tt.got) != tt.max || !utf8.ValidString(tt.got) || !strings.HasPrefix(long, tt.got) {
			t.Errorf("%s is %d bytes (valid UTF-8 %v), want the first %d bytes", name, len(tt.got), utf8.ValidString(tt.got), tt.max)
		}
	}
	if info.BuildLink != "" {
		t.Errorf("over-long build link kept (%d bytes)", len(info.BuildLink))
	}
}
