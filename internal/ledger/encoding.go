package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// wireEntry is an Entry as stored: the compact keys are written, the long keys of the earlier format only read.
type wireEntry struct {
	K string `json:"k,omitempty"`
	S string `json:"s,omitempty"`
	N string `json:"n,omitempty"`
	R string `json:"r,omitempty"`
	// M is the mark, written only when it differs from R.
	M string `json:"m,omitempty"`
	X string `json:"x,omitempty"`
	// T is UpdatedAt in Unix seconds, absent for the zero time.
	T *int64 `json:"t,omitempty"`
	W string `json:"w,omitempty"`
	// U is the stuck revision, V its start in Unix seconds.
	U string `json:"u,omitempty"`
	V *int64 `json:"v,omitempty"`
	// H are the applies, each [digest, Unix seconds].
	H []wireApply `json:"h,omitempty"`

	Kind      string     `json:"kind,omitempty"`
	Namespace string     `json:"namespace,omitempty"`
	Name      string     `json:"name,omitempty"`
	Revision  string     `json:"revision,omitempty"`
	Recorded  string     `json:"recorded,omitempty"`
	Export    string     `json:"export,omitempty"`
	UpdatedAt *time.Time `json:"updatedAt,omitempty"`
	Writer    string     `json:"writer,omitempty"`
}

// MarshalJSON writes the compact form: one-letter keys, the mark only when it is not the revision, the time in
// Unix seconds.
func (e Entry) MarshalJSON() ([]byte, error) {
	w := wireEntry{K: e.Kind, S: e.Namespace, N: e.Name, R: e.Revision, X: e.Export, W: e.Writer, U: e.Stuck}
	if e.Recorded != e.Revision {
		w.M = e.Recorded
	}
	w.T, w.V = unixOrNil(e.UpdatedAt), unixOrNil(e.StuckSince)
	for _, a := range e.Applies {
		w.H = append(w.H, wireApply{a.Digest, a.At.Unix()})
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads the compact form and the earlier long form; a compact key wins over its long twin.
func (e *Entry) UnmarshalJSON(data []byte) error {
	var w wireEntry
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*e = Entry{
		Kind: first(w.K, w.Kind), Namespace: first(w.S, w.Namespace), Name: first(w.N, w.Name),
		Revision: first(w.R, w.Revision), Recorded: first(w.M, w.Recorded), Export: first(w.X, w.Export),
		Writer: first(w.W, w.Writer), Stuck: w.U,
	}
	if w.V != nil {
		e.StuckSince = time.Unix(*w.V, 0).UTC()
	}
	for _, a := range w.H[max(0, len(w.H)-MaxApplies):] {
		if a.Digest != "" {
			e.Applies = append(e.Applies, Apply{Digest: a.Digest, At: time.Unix(a.At, 0).UTC()})
		}
	}
	switch {
	case w.T != nil:
		e.UpdatedAt = time.Unix(*w.T, 0).UTC()
	case w.UpdatedAt != nil:
		e.UpdatedAt = *w.UpdatedAt
	}
	return nil
}

// wireApply is an Apply as stored: a two-element array.
type wireApply struct {
	Digest string
	At     int64
}

func (a wireApply) MarshalJSON() ([]byte, error) { return json.Marshal([]any{a.Digest, a.At}) }

func (a *wireApply) UnmarshalJSON(data []byte) error {
	var pair []json.RawMessage
	if err := json.Unmarshal(data, &pair); err != nil {
		return err
	}
	if len(pair) != 2 {
		return fmt.Errorf("apply has %d fields, want 2", len(pair))
	}
	if err := json.Unmarshal(pair[0], &a.Digest); err != nil {
		return fmt.Errorf("apply digest: %w", err)
	}
	if err := json.Unmarshal(pair[1], &a.At); err != nil {
		return fmt.Errorf("apply time: %w", err)
	}
	return nil
}

// unixOrNil is t in Unix seconds, nil for the zero time.
func unixOrNil(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	u := t.Unix()
	return &u
}

// first returns a unless it is empty, else b.
func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// errEmptyEntry reports a stored value that decodes to nothing usable.
var errEmptyEntry = errors.New("entry has no kind, name or revision")

// encode returns the stored form of e, refusing one over MaxEntryBytes.
func encode(uid string, e Entry) (string, error) {
	raw, err := json.Marshal(e)
	if err != nil {
		return "", fmt.Errorf("ledger: encode entry for %s: %w", uid, err)
	}
	if len(raw) > MaxEntryBytes {
		return "", fmt.Errorf("ledger: entry for %s is %d bytes, over the %d-byte limit", uid, len(raw), MaxEntryBytes)
	}
	return string(raw), nil
}

// decode parses one stored value, compact or long; ok is false for an absent (empty) value, err set for a bad one.
func decode(raw string) (e Entry, ok bool, err error) {
	if raw == "" {
		return Entry{}, false, nil
	}
	if len(raw) > MaxEntryBytes {
		return Entry{}, false, fmt.Errorf("entry is %d bytes, over the %d-byte limit", len(raw), MaxEntryBytes)
	}
	if err := json.Unmarshal([]byte(raw), &e); err != nil {
		return Entry{}, false, fmt.Errorf("decode entry: %w", err)
	}
	if e.Kind == "" || e.Name == "" || e.Revision == "" {
		return Entry{}, false, errEmptyEntry
	}
	return e, true, nil
}
