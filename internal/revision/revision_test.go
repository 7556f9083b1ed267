package revision

import (
	"errors"
	"strings"
	"testing"
)

const (
	sha1Hex   = "0123456789abcdef0123456789abcdef01234567"
	sha256Hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Revision
	}{
		{"main@sha1:" + sha1Hex, Revision{Ref: "main", Algorithm: SHA1, Digest: sha1Hex}},
		{"refs/heads/x@sha1:" + sha1Hex, Revision{Ref: "refs/heads/x", Algorithm: SHA1, Digest: sha1Hex}},
		{"refs/heads/feature/x@sha1:" + sha1Hex, Revision{Ref: "refs/heads/feature/x", Algorithm: SHA1, Digest: sha1Hex}},
		{"refs/tags/v1@sha1:" + sha1Hex, Revision{Ref: "refs/tags/v1", Algorithm: SHA1, Digest: sha1Hex}},
		{"user@example/fix@sha1:" + sha1Hex, Revision{Ref: "user@example/fix", Algorithm: SHA1, Digest: sha1Hex}},
		{"sha1:" + sha1Hex, Revision{Algorithm: SHA1, Digest: sha1Hex}},
		{"main@sha256:" + sha256Hex, Revision{Ref: "main", Algorithm: SHA256, Digest: sha256Hex}},
		{"sha256:" + sha256Hex, Revision{Algorithm: SHA256, Digest: sha256Hex}},
		{"v1.2.3@sha256:" + sha256Hex, Revision{Ref: "v1.2.3", Algorithm: SHA256, Digest: sha256Hex}},
		{"latest@sha256:" + sha256Hex, Revision{Ref: "latest", Algorithm: SHA256, Digest: sha256Hex}},
		{"main/" + sha1Hex, Revision{Ref: "main", Algorithm: SHA1, Digest: sha1Hex}},
		{"feature/x/" + sha1Hex, Revision{Ref: "feature/x", Algorithm: SHA1, Digest: sha1Hex}},
		{sha1Hex, Revision{Algorithm: SHA1, Digest: sha1Hex}},
		{"main@sha1:" + strings.ToUpper(sha1Hex), Revision{Ref: "main", Algorithm: SHA1, Digest: sha1Hex}},
		{"main/" + strings.ToUpper(sha1Hex), Revision{Ref: "main", Algorithm: SHA1, Digest: sha1Hex}},
		{"sha256:" + strings.ToUpper(sha256Hex), Revision{Algorithm: SHA256, Digest: sha256Hex}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, wantInMsg string
	}{
		{"empty", "", "empty"},
		{"ref only", "main", "missing algorithm"},
		{"missing digest", "main@sha1:", "0 characters"},
		{"missing algorithm", "main@" + sha1Hex, "missing algorithm"},
		{"empty ref", "@sha1:" + sha1Hex, "empty ref"},
		{"empty legacy ref", "/" + sha1Hex, "empty ref"},
		{"short sha1", "main@sha1:" + sha1Hex[:39], "39 characters, want 40"},
		{"long sha1", "main@sha1:" + sha1Hex + "0", "41 characters, want 40"},
		{"sha1 length under sha256", "sha256:" + sha1Hex, "want 64"},
		{"non-hex", "main@sha1:" + strings.Repeat("g", 40), "not hex"},
		{"unknown algorithm", "main@md5:d41d8cd98f00b204e9800998ecf8427e", `unknown digest algorithm "md5"`},
		{"upper-case algorithm", "main@SHA1:" + sha1Hex, `unknown digest algorithm "SHA1"`},
		{"leading space", " main@sha1:" + sha1Hex, "whitespace"},
		{"trailing newline", "main@sha1:" + sha1Hex + "\n", "whitespace"},
		{"space in ref", "ma in@sha1:" + sha1Hex, "whitespace"},
		{"control character", "ma\x00in@sha1:" + sha1Hex, "control"},
		{"invalid utf-8", "ma\xffin@sha1:" + sha1Hex, "UTF-8"},
		{"legacy short", "main/" + sha1Hex[:39], "missing algorithm"},
		{"legacy with at", "a@main/" + sha1Hex, "missing algorithm"},
		{"bare short hex", sha1Hex[:12], "missing algorithm"},
		{"bare sha256 hex", sha256Hex, "missing algorithm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want error", tt.in, got)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Parse(%q) error %v does not wrap ErrInvalid", tt.in, err)
			}
			if got != (Revision{}) {
				t.Errorf("Parse(%q) returned %+v with error, want zero Revision", tt.in, got)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.wantInMsg) {
				t.Errorf("Parse(%q) error %q does not mention %q", tt.in, msg, tt.wantInMsg)
			}
			if q := Quote(tt.in); !strings.Contains(msg, q) {
				t.Errorf("Parse(%q) error %q does not quote the input as %s", tt.in, msg, q)
			}
		})
	}
}

func TestParseErrorTruncatesLongInput(t *testing.T) {
	in := strings.Repeat("a", 5000) + "@md5:x"
	_, err := Parse(in)
	if err == nil {
		t.Fatal("want error")
	}
	msg := err.Error()
	if len(msg) > 300 {
		t.Errorf("error is %d bytes long, want the input truncated: %q", len(msg), msg)
	}
	if !strings.Contains(msg, `"`+strings.Repeat("a", maxQuoted)+`"…(5006 bytes)`) {
		t.Errorf("error %q does not show the truncated input and its length", msg)
	}
}

func TestQuoteKeepsRunesWhole(t *testing.T) {
	in := strings.Repeat("a", maxQuoted-1) + "é" + "tail"
	got := Quote(in)
	want := `"` + strings.Repeat("a", maxQuoted-1) + `"…(` + "105 bytes)"
	if got != want {
		t.Errorf("quote = %s, want %s", got, want)
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		r    Revision
		want string
	}{
		{Revision{Ref: "main", Algorithm: SHA1, Digest: sha1Hex}, "main@sha1:" + sha1Hex},
		{Revision{Algorithm: SHA256, Digest: sha256Hex}, "sha256:" + sha256Hex},
		{Revision{Ref: "refs/heads/a@b", Algorithm: SHA1, Digest: sha1Hex}, "refs/heads/a@b@sha1:" + sha1Hex},
		{Revision{}, ""},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.r, got, tt.want)
		}
	}
}

func TestStringNormalisesLegacyForm(t *testing.T) {
	r, err := Parse("main/" + strings.ToUpper(sha1Hex))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.String(), "main@sha1:"+sha1Hex; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestEqual(t *testing.T) {
	a := Revision{Ref: "main", Algorithm: SHA1, Digest: sha1Hex}
	tests := []struct {
		name string
		b    Revision
		want bool
	}{
		{"same", a, true},
		{"different ref", Revision{Ref: "refs/heads/main", Algorithm: SHA1, Digest: sha1Hex}, true},
		{"no ref", Revision{Algorithm: SHA1, Digest: sha1Hex}, true},
		{"different digest", Revision{Ref: "main", Algorithm: SHA1, Digest: strings.Repeat("0", 40)}, false},
		{"different algorithm", Revision{Ref: "main", Algorithm: SHA256, Digest: sha1Hex}, false},
		{"zero", Revision{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := a.Equal(tt.b); got != tt.want {
				t.Errorf("Equal = %v, want %v", got, tt.want)
			}
			if got := tt.b.Equal(a); got != tt.want {
				t.Errorf("Equal is not symmetric: got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIsCommit(t *testing.T) {
	tests := []struct {
		r    Revision
		want bool
	}{
		{Revision{Ref: "main", Algorithm: SHA1, Digest: sha1Hex}, true},
		{Revision{Algorithm: SHA256, Digest: sha256Hex}, true},
		{Revision{}, false},
		{Revision{Algorithm: "md5", Digest: sha1Hex[:32]}, false},
		{Revision{Algorithm: SHA256, Digest: sha1Hex}, false},
	}
	for _, tt := range tests {
		if got := tt.r.IsCommit(); got != tt.want {
			t.Errorf("%+v.IsCommit() = %v, want %v", tt.r, got, tt.want)
		}
	}
}
