package github

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
)

const (
	shaA = "0123456789abcdef0123456789abcdef01234567"
	shaB = "89abcdef0123456789abcdef0123456789abcdef"
)

var goodCommit = `{"sha":"` + shaA + `","commit":{"author":{"name":"A","email":"a@x","date":"2025-01-01T00:00:00Z"},` +
	`"committer":{"name":"C","email":"c@x","date":"2025-01-02T00:00:00+02:00"},"message":"m"},"parents":[{"sha":"` + shaB + `"}]}`

func TestDecodeCommit(t *testing.T) {
	c, err := decodeCommit([]byte(goodCommit))
	if err != nil {
		t.Fatal(err)
	}
	if c.SHA != shaA || c.Message != "m" || c.AuthorName != "A" || len(c.Parents) != 1 || c.Parents[0] != shaB ||
		!c.AuthorTime.Equal(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) ||
		!c.CommitterTime.Equal(time.Date(2025, 1, 1, 22, 0, 0, 0, time.UTC)) {
		t.Errorf("got %+v", c)
	}
	bad := map[string]string{
		"empty":               ``,
		"null":                `null`,
		"whitespace":          " \n",
		"truncated":           goodCommit[:len(goodCommit)/2],
		"array":               `[]`,
		"no sha":              strings.Replace(goodCommit, `"sha":"`+shaA+`",`, "", 1),
		"short sha":           strings.Replace(goodCommit, shaA, "0123abc", 1),
		"sha is a number":     strings.Replace(goodCommit, `"`+shaA+`"`, "5", 1),
		"commit null":         `{"sha":"` + shaA + `","commit":null}`,
		"no committer":        strings.Replace(goodCommit, `"committer":{"name":"C","email":"c@x","date":"2025-01-02T00:00:00+02:00"},`, "", 1),
		"committer date null": strings.Replace(goodCommit, `"2025-01-02T00:00:00+02:00"`, "null", 1),
		"author date garbage": strings.Replace(goodCommit, `"2025-01-01T00:00:00Z"`, `"yesterday"`, 1),
		"author date zero":    strings.Replace(goodCommit, `"2025-01-01T00:00:00Z"`, `"0001-01-01T00:00:00Z"`, 1),
		"parent null":         strings.Replace(goodCommit, `{"sha":"`+shaB+`"}`, "null", 1),
		"parent not a sha":    strings.Replace(goodCommit, shaB, "main", 1),
		"parents a string":    strings.Replace(goodCommit, `[{"sha":"`+shaB+`"}]`, `"p"`, 1),
		"message an object":   strings.Replace(goodCommit, `"message":"m"`, `"message":{}`, 1),
	}
	for name, body := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeCommit([]byte(body)); !errors.Is(err, commits.ErrBadResponse) {
				t.Errorf("err = %v, want ErrBadResponse", err)
			}
		})
	}
}

func TestDecodeCompare(t *testing.T) {
	good := `{"status":"ahead","total_commits":1,"commits":[` + goodCommit + `],"files":[]}`
	cmp, err := decodeCompare([]byte(good))
	if err != nil || cmp.status != commits.Ahead || cmp.total != 1 || len(cmp.commits) != 1 || cmp.commits[0].SHA != shaA {
		t.Fatalf("got %+v, %v", cmp, err)
	}
	bad := map[string]string{
		"null":             `null`,
		"empty":            ``,
		"commits [null]":   `{"status":"ahead","total_commits":1,"commits":[null]}`,
		"unknown status":   `{"status":"sideways","total_commits":0,"commits":[]}`,
		"no status":        `{"total_commits":0,"commits":[]}`,
		"no total":         `{"status":"ahead","commits":[]}`,
		"negative total":   `{"status":"ahead","total_commits":-1,"commits":[]}`,
		"total a string":   `{"status":"ahead","total_commits":"1","commits":[]}`,
		"commits a number": `{"status":"ahead","total_commits":1,"commits":1}`,
		"truncated":        good[:len(good)-20],
	}
	for name, body := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeCompare([]byte(body)); !errors.Is(err, commits.ErrBadResponse) {
				t.Errorf("err = %v, want ErrBadResponse", err)
			}
		})
	}
}

func TestDecodeContents(t *testing.T) {
	tests := []struct {
		name, body string
		want       file
		bad        bool
	}{
		{name: "base64", body: `{"type":"file","size":5,"encoding":"base64","content":"aGVs\nbG8=\n"}`, want: file{size: 5, encoding: "base64", data: []byte("hello")}},
		{name: "none", body: `{"type":"file","size":2000000,"encoding":"none","content":""}`, want: file{size: 2000000, encoding: "none"}},
		{name: "directory listing", body: `[{"type":"file","name":"a"}]`, want: file{dir: true}},
		{name: "symlink", body: `{"type":"symlink","size":3}`, want: file{dir: true}},
		{name: "null", body: `null`, bad: true},
		{name: "empty", body: ``, bad: true},
		{name: "no type", body: `{"size":1}`, bad: true},
		{name: "no size", body: `{"type":"file","encoding":"base64","content":""}`, bad: true},
		{name: "size disagrees", body: `{"type":"file","size":9,"encoding":"base64","content":"aGVsbG8="}`, bad: true},
		{name: "bad base64", body: `{"type":"file","size":1,"encoding":"base64","content":"%%%"}`, bad: true},
		{name: "unknown encoding", body: `{"type":"file","size":1,"encoding":"rot13","content":"a"}`, bad: true},
		{name: "listing truncated", body: `[{"type":"file"`, bad: true},
		{name: "size a string", body: `{"type":"file","size":"5"}`, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeContents([]byte(tt.body))
			if tt.bad {
				if !errors.Is(err, commits.ErrBadResponse) {
					t.Errorf("err = %v, want ErrBadResponse", err)
				}
				return
			}
			if err != nil || got.dir != tt.want.dir || got.size != tt.want.size || got.encoding != tt.want.encoding || string(got.data) != string(tt.want.data) {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// checkCommit is the invariant of every decoded commit: a full SHA, full parent SHAs and both times set.
func checkCommit(t *testing.T, c commits.Commit) {
	t.Helper()
	if !isSHA(c.SHA) || c.AuthorTime.IsZero() || c.CommitterTime.IsZero() {
		t.Fatalf("accepted commit %+v", c)
	}
	for _, p := range c.Parents {
		if !isSHA(p) {
			t.Fatalf("accepted parent %q", p)
		}
	}
}

func FuzzCommitFromJSON(f *testing.F) {
	f.Add([]byte(goodCommit))
	f.Add([]byte(`null`))
	f.Add([]byte(``))
	f.Add([]byte(`{"sha":"` + shaA + `","commit":null,"parents":[null,{}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodeCommit(data)
		if err != nil {
			if !errors.Is(err, commits.ErrBadResponse) {
				t.Fatalf("error %v does not wrap ErrBadResponse", err)
			}
			return
		}
		checkCommit(t, c)
		// What was accepted is what the JSON says.
		var raw struct {
			SHA string `json:"sha"`
		}
		if json.Unmarshal(data, &raw) != nil || raw.SHA != c.SHA {
			t.Fatalf("decoded SHA %q from %s", c.SHA, data)
		}
	})
}

func FuzzCompareFromJSON(f *testing.F) {
	f.Add([]byte(`{"status":"ahead","total_commits":1,"commits":[` + goodCommit + `]}`))
	f.Add([]byte(`{"status":"ahead","total_commits":1,"commits":[null]}`))
	f.Add([]byte(`{"status":"behind","total_commits":0,"commits":[]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cmp, err := decodeCompare(data)
		if err != nil {
			if !errors.Is(err, commits.ErrBadResponse) {
				t.Fatalf("error %v does not wrap ErrBadResponse", err)
			}
			return
		}
		switch cmp.status {
		case commits.Ahead, commits.Identical, commits.Behind, commits.Diverged:
		default:
			t.Fatalf("accepted status %q", cmp.status)
		}
		if cmp.total < 0 {
			t.Fatalf("accepted total %d", cmp.total)
		}
		for _, c := range cmp.commits {
			checkCommit(t, c)
		}
	})
}

func FuzzCommitListFromJSON(f *testing.F) {
	f.Add([]byte(`[` + goodCommit + `]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`[null]`))
	f.Add([]byte(`{"sha":"` + shaA + `"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		list, err := decodeCommitList(data)
		if err != nil {
			if !errors.Is(err, commits.ErrBadResponse) {
				t.Fatalf("error %v does not wrap ErrBadResponse", err)
			}
			return
		}
		var raw []json.RawMessage
		if json.Unmarshal(data, &raw) != nil || len(raw) != len(list) {
			t.Fatalf("decoded %d commits from %s", len(list), data)
		}
		for _, c := range list {
			checkCommit(t, c)
		}
	})
}

func FuzzContentsFromJSON(f *testing.F) {
	f.Add([]byte(`{"type":"file","size":5,"encoding":"base64","content":"aGVs\nbG8=\n"}`))
	f.Add([]byte(`{"type":"file","size":0,"encoding":"none","content":null}`))
	f.Add([]byte(`[null]`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeContents(data)
		if err != nil {
			if !errors.Is(err, commits.ErrBadResponse) {
				t.Fatalf("error %v does not wrap ErrBadResponse", err)
			}
			return
		}
		if got.dir {
			return
		}
		if got.size < 0 || (got.encoding != "none" && int64(len(got.data)) != got.size) {
			t.Fatalf("accepted %+v", got)
		}
	})
}
