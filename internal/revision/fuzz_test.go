package revision

import (
	"errors"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"main@sha1:" + sha1Hex,
		"refs/heads/feature/x@sha1:" + sha1Hex,
		"refs/tags/v1@sha1:" + strings.ToUpper(sha1Hex),
		"a@b@sha1:" + sha1Hex,
		"sha1:" + sha1Hex,
		"main@sha256:" + sha256Hex,
		"sha256:" + sha256Hex,
		"v1.2.3@sha256:" + sha256Hex,
		"main/" + sha1Hex,
		"a/b/" + sha1Hex,
		sha1Hex,
		"",
		"@",
		"/",
		":",
		"main@",
		"main@md5:d41d8cd98f00b204e9800998ecf8427e",
		"main@sha1:" + sha1Hex[:39] + "g",
		" main@sha1:" + sha1Hex,
		"ma\xffin/" + sha1Hex,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrInvalid", s, err)
			}
			if r != (Revision{}) {
				t.Fatalf("Parse(%q) returned %+v with an error", s, r)
			}
			return
		}
		if !r.IsCommit() {
			t.Fatalf("Parse(%q) = %+v: digest length does not match algorithm", s, r)
		}
		if r.Digest != strings.ToLower(r.Digest) {
			t.Fatalf("Parse(%q) digest %q is not lower-case", s, r.Digest)
		}
		canon := r.String()
		r2, err := Parse(canon)
		if err != nil {
			t.Fatalf("Parse(%q) ok but Parse(String() = %q) failed: %v", s, canon, err)
		}
		if r2 != r || !r2.Equal(r) {
			t.Fatalf("round trip of %q: %+v then %+v", s, r, r2)
		}
		if r2.String() != canon {
			t.Fatalf("String() not stable: %q then %q", canon, r2.String())
		}
	})
}
