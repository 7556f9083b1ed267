// Package exporterinfo decodes the exporter-info.json file a manifests exporter CI job writes into
// the manifests repository, listing the upstream commits each rendered manifests commit carries.
package exporterinfo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"
)

// FileName is the name the exporter gives the file at the root of the manifests repository.
const FileName = "exporter-info.json"

// MaxSize is the largest file Decode accepts, in bytes.
const MaxSize = 1 << 20

// Errors Decode wraps; each says what is wrong with the file.
var (
	ErrTooLarge    = errors.New("exporter info too large")
	ErrMalformed   = errors.New("malformed exporter info")
	ErrBadTime     = errors.New("bad commit time")
	ErrMissingHash = errors.New("missing commit hash")
)

// gitDateLayout is `git log --format=%ci`.
const gitDateLayout = "2006-01-02 15:04:05 -0700"

// timeLayouts are tried in order; RFC3339 parsing also accepts fractional seconds.
var timeLayouts = []string{time.RFC3339Nano, gitDateLayout}

// Info is the decoded exporter-info.json.
type Info struct {
	// Commit is the upstream commit the export was rendered from; it may be empty.
	Commit string
	// Commits lists the upstream commits since the previous export, as the exporter ordered them.
	Commits []UpstreamCommit
	// BuildLink links to the CI run that did the export; it may be empty.
	BuildLink string
}

// UpstreamCommit is one upstream commit carried by an export.
type UpstreamCommit struct {
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

	info := Info{Commit: w.Commit, BuildLink: w.BuildLink}
	if len(w.Commits) > 0 {
		info.Commits = make([]UpstreamCommit, 0, len(w.Commits))
	}
	for i, raw := range w.Commits {
		c, err := decodeCommit(raw)
		if err != nil {
			return Info{}, fmt.Errorf("commits_since_last_export[%d]: %w", i, err)
		}
		info.Commits = append(info.Commits, c)
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
	t, err := parseTime(w.Time)
	if err != nil {
		return UpstreamCommit{}, fmt.Errorf("commit %s: %w", quote(w.Hash), err)
	}
	return UpstreamCommit{Hash: w.Hash, Message: w.Message, Author: w.Author, Email: w.Email, Time: t}, nil
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
			return time.Time{}, fmt.Errorf("%w: time %s is the zero time", ErrBadTime, quote(s))
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%w: time %s is neither RFC 3339 nor %q", ErrBadTime, quote(s), gitDateLayout)
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

// quote quotes s for an error message, truncated to 100 bytes.
func quote(s string) string {
	const max = 100
	if len(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q…(%d bytes)", s[:max], len(s))
}

// ID identifies the export: its upstream head commit, else its newest listed upstream commit; empty for none.
func (i Info) ID() string {
	if i.Commit != "" {
		return i.Commit
	}
	if n := len(i.Commits); n > 0 {
		return i.Commits[n-1].Hash
	}
	return ""
}
