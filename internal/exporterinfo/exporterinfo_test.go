package exporterinfo

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
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
			info, err := Decode([]byte(`{"commits_since_last_export": [{"hash": "a", "time": "` + in + `"}]}`))
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
		{"entry wrong type", `{"commits_since_last_export": [{"hash": "a", "time": "2024-05-01T08:00:00Z"}, 7]}`, ErrMalformed, "commits_since_last_export[1]:"},
		{"entry null", `{"commits_since_last_export": [null]}`, ErrMalformed, "commits_since_last_export[0]: malformed exporter info: entry is null"},
		{"time wrong type", `{"commits_since_last_export": [{"hash": "a", "time": 1714550400}]}`, ErrMalformed, "time is a JSON number, want string"},
		{"missing hash", `{"commits_since_last_export": [{"time": "2024-05-01T08:00:00Z"}]}`, ErrMissingHash, "commits_since_last_export[0]: missing commit hash"},
		{"blank hash", `{"commits_since_last_export": [{"hash": "a", "time": "2024-05-01T08:00:00Z"}, {"hash": " ", "time": "2024-05-01T08:00:00Z"}]}`, ErrMissingHash, "commits_since_last_export[1]"},
		{"missing time", `{"commits_since_last_export": [{"hash": "abc"}]}`, ErrBadTime, `commits_since_last_export[0]: commit "abc": bad commit time: time is missing`},
		{"bad time", `{"commits_since_last_export": [{"hash": "abc", "time": "yesterday"}]}`, ErrBadTime, `time "yesterday" is neither RFC 3339`},
		{"zero time", `{"commits_since_last_export": [{"hash": "abc", "time": "0001-01-01T00:00:00Z"}]}`, ErrBadTime, "zero time"},
		{"date only", `{"commits_since_last_export": [{"hash": "abc", "time": "2024-05-01"}]}`, ErrBadTime, "2024-05-01"},
		{"unix seconds string", `{"commits_since_last_export": [{"hash": "abc", "time": "1714550400"}]}`, ErrBadTime, "1714550400"},
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
