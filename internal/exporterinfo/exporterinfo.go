// Package exporterinfo decodes the exporter-info.json file a manifests exporter CI job writes into
// the manifests repository, listing the upstream commits each rendered manifests commit carries. The file is
// outside data: commit names must be hex SHAs, every string is bounded, and the commit list is capped.
package exporterinfo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/revision"
)

// FileName is the name the exporter gives the file at the root of the manifests repository.
const FileName = "exporter-info.json"

// MaxSize is the largest file Decode accepts, in bytes.
const MaxSize = 1 << 20

// MaxCommits caps the upstream commits one file lists; Decode keeps the newest (last) and counts the rest in
// Info.Truncated.
const MaxCommits = 1000

// Bounds on decoded strings, in bytes; longer ones are cut at a UTF-8 boundary (a build link is dropped).
const (
	MaxMessage   = 4 << 10
	MaxName      = 256
	MaxBuildLink = 2 << 10
)

// IDLength is the length of Info.ID for any export that has one.
const IDLength = 32

// Errors Decode wraps; each says what is wrong with the file.
var (
	ErrTooLarge    = errors.New("exporter info too large")
	ErrMalformed   = errors.New("malformed exporter info")
	ErrBadTime     = errors.New("bad commit time")
	ErrMissingHash = errors.New("missing commit hash")
	ErrBadHash     = errors.New("commit hash is not a 40 or 64 digit hex SHA")
)

// gitDateLayout is `git log --format=%ci`.
const gitDateLayout = "2006-01-02 15:04:05 -0700"

// timeLayouts are tried in order; RFC3339 parsing also accepts fractional seconds.
var timeLayouts = []string{time.RFC3339Nano, gitDateLayout}

// Info is the decoded exporter-info.json.
type Info struct {
	// Commit is the upstream commit the export was rendered from, a lowercase hex SHA; it may be empty.
	Commit string
	// Commits lists the distinct upstream commits since the previous export, as the exporter ordered them
	// (oldest first), the newest MaxCommits kept.
	Commits []UpstreamCommit
	// Truncated counts the distinct commits left out beyond MaxCommits.
	Truncated int
	// BuildLink links to the CI run that did the export; it may be empty.
	BuildLink string
}

// UpstreamCommit is one upstream commit carried by an export.
type UpstreamCommit struct {
	// Hash is a lowercase hex SHA-1 (40 digits) or SHA-256 (64 digits).
	Hash    string
	Message string
	Author  string
	Email   string
	// Time is the upstream commit time, never zero.
	Time time.Time
}

// wireInfo is the file's JSON shape; unknown fields are ignored so newer exporters still decode.
type wireInfo struct {
	Commit    string            `json:"commit"`
	Commits   []json.RawMessage `json:"commits_since_last_export"`
	BuildLink string            `json:"export_build_link"`
}

type wireCommit struct {
	Hash    string `json:"hash"`
	Message string `json:"message"`
	Author  string `json:"author"`
	Email   string `json:"email"`
	Time    string `json:"time"`
}

// Decode decodes an exporter-info.json document. Every returned commit has a hash and a time.
func Decode(data []byte) (Info, error) {
	if len(data) > MaxSize {
		return Info{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxSize)
	}

	// Decode into a pointer so a top-level null is told apart from an empty object.
	var w *wireInfo
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&w); err != nil {
		return Info{}, fmt.Errorf("%w: %s", ErrMalformed, describeJSONError(err))
	}
	if w == nil {
		return Info{}, fmt.Errorf("%w: document is null, want an object", ErrMalformed)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Info{}, fmt.Errorf("%w: trailing data after the object at offset %d", ErrMalformed, dec.InputOffset())
	}

	info := Info{BuildLink: w.BuildLink}
	if len(info.BuildLink) > MaxBuildLink {
		info.BuildLink = "" // a cut link leads nowhere
	}
	if w.Commit != "" {
		sha, err := parseSHA(w.Commit)
		if err != nil {
			return Info{}, fmt.Errorf("commit: %w", err)
		}
		info.Commit = sha
	}
	seen := make(map[string]bool, len(w.Commits))
	for i, raw := range w.Commits {
		c, err := decodeCommit(raw)
		if err != nil {
			return Info{}, fmt.Errorf("commits_since_last_export[%d]: %w", i, err)
		}
		if seen[c.Hash] {
			continue // the same commit listed again: one commit, one stage
		}
		seen[c.Hash] = true
		info.Commits = append(info.Commits, c)
	}
	if n := len(info.Commits); n > MaxCommits {
		info.Truncated = n - MaxCommits
		info.Commits = append([]UpstreamCommit(nil), info.Commits[n-MaxCommits:]...)
	}
	return info, nil
}

// decodeCommit decodes and validates one commits_since_last_export entry.
func decodeCommit(raw json.RawMessage) (UpstreamCommit, error) {
	var w *wireCommit
	if err := json.Unmarshal(raw, &w); err != nil {
		return UpstreamCommit{}, fmt.Errorf("%w: %s", ErrMalformed, describeJSONError(err))
	}
	if w == nil {
		return UpstreamCommit{}, fmt.Errorf("%w: entry is null, want an object", ErrMalformed)
	}
	if strings.TrimSpace(w.Hash) == "" {
		return UpstreamCommit{}, ErrMissingHash
	}
	sha, err := parseSHA(w.Hash)
	if err != nil {
		return UpstreamCommit{}, err
	}
	t, err := parseTime(w.Time)
	if err != nil {
		return UpstreamCommit{}, fmt.Errorf("commit %s: %w", sha, err)
	}
	return UpstreamCommit{
		Hash: sha, Message: cut(w.Message, MaxMessage), Author: cut(w.Author, MaxName), Email: cut(w.Email, MaxName), Time: t,
	}, nil
}

// parseSHA accepts a 40 or 64 digit hex SHA in either case and returns it in lowercase.
func parseSHA(s string) (string, error) {
	if !revision.IsSHA(s) {
		return "", fmt.Errorf("%w: %s (%d characters)", ErrBadHash, revision.Quote(s), len(s))
	}
	return strings.ToLower(s), nil
}

// cut shortens s to at most n bytes without splitting a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 {
		r, size := utf8.DecodeLastRuneInString(s)
		if r != utf8.RuneError || size > 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}

// parseTime parses an RFC 3339 or git default-format time; a missing or zero time is an error.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("%w: time is missing", ErrBadTime)
	}
	for _, layout := range timeLayouts {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		if t.IsZero() {
			return time.Time{}, fmt.Errorf("%w: time %s is the zero time", ErrBadTime, revision.Quote(s))
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%w: time %s is neither RFC 3339 nor %q", ErrBadTime, revision.Quote(s), gitDateLayout)
}

// describeJSONError says what encoding/json rejected without naming this package's Go types.
func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("%v at offset %d", syntax, syntax.Offset)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "document"
		}
		want := "another type"
		if typ.Type != nil {
			want = jsonKind(typ.Type.Kind())
		}
		return fmt.Sprintf("%s is a JSON %s, want %s", field, typ.Value, want)
	case errors.Is(err, io.EOF):
		return "empty document"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated document"
	}
	return err.Error()
}

// jsonKind names a Go kind as the JSON type that decodes into it.
func jsonKind(kind reflect.Kind) string {
	switch kind {
	case reflect.String:
		return "string"
	case reflect.Struct, reflect.Pointer:
		return "object"
	case reflect.Slice:
		return "array"
	}
	return kind.String()
}

// Head returns the export's identity in plain form: its upstream head commit, else its newest listed upstream
// commit; empty for none.
func (i Info) Head() string {
	if i.Commit != "" {
		return i.Commit
	}
	if n := len(i.Commits); n > 0 {
		return i.Commits[n-1].Hash
	}
	return ""
}

// ID identifies the export in a fixed IDLength hex digits (a truncated SHA-256 of Head), so what the ledger
// keeps per object is small whatever the file holds; empty when there is no identity.
func (i Info) ID() string { return IDOf(i.Head()) }

// IDOf is the export identity of an exporter-info.json whose head commit is head; it also turns an identity
// stored before identities were hashed (the head itself) into today's form.
func IDOf(head string) string {
	if head == "" {
		return ""
	}
	sum := sha256.Sum256([]byte("exporter-info\x00" + strings.ToLower(head)))
	return hex.EncodeToString(sum[:])[:IDLength]
}
