// Package revision parses the revision strings Flux reports for its sources and appliers
// (main@sha1:…, sha256 digests, OCI tag@sha256:…, legacy main/…) into a ref and a digest.
package revision

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Digest algorithms a Revision can carry.
const (
	SHA1   = "sha1"
	SHA256 = "sha256"
)

// ErrInvalid is wrapped by every error Parse returns.
var ErrInvalid = errors.New("invalid revision")

// maxQuoted caps how much of a bad input an error message repeats.
const maxQuoted = 100

// Revision is a parsed Flux revision.
type Revision struct {
	// Ref is the branch, tag or OCI tag the digest was resolved from; empty when the revision names none.
	Ref string
	// Algorithm is SHA1 or SHA256.
	Algorithm string
	// Digest is the lower-case hex object id or OCI digest.
	Digest string
}

// Parse parses a Flux revision: [ref@]sha1:<40 hex>, [ref@]sha256:<64 hex>, or the legacy
// [ref/]<40 hex>. Upper-case hex is accepted and lower-cased. A ref may contain '@' and '/':
// the digest follows the last '@'.
func Parse(s string) (Revision, error) {
	r, reason := parse(s)
	if reason != "" {
		return Revision{}, fmt.Errorf("%w %s: %s", ErrInvalid, Quote(s), reason)
	}
	return r, nil
}

func parse(s string) (Revision, string) {
	if s == "" {
		return Revision{}, "empty"
	}
	if !utf8.ValidString(s) {
		return Revision{}, "not valid UTF-8"
	}
	if i := strings.IndexFunc(s, func(c rune) bool { return unicode.IsSpace(c) || !unicode.IsPrint(c) }); i >= 0 {
		return Revision{}, fmt.Sprintf("whitespace or control character at byte %d", i)
	}

	// ref@algo:digest or algo:digest.
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		if at == 0 {
			return Revision{}, "empty ref before '@'"
		}
		r, reason := parseDigest(s[at+1:])
		r.Ref = s[:at]
		return r, reason
	}

	// Legacy ref/<40 hex> and bare <40 hex>.
	if slash := strings.LastIndexByte(s, '/'); slash >= 0 && isHex(s[slash+1:], 40) {
		if slash == 0 {
			return Revision{}, "empty ref before '/'"
		}
		return Revision{Ref: s[:slash], Algorithm: SHA1, Digest: strings.ToLower(s[slash+1:])}, ""
	}
	if isHex(s, 40) {
		return Revision{Algorithm: SHA1, Digest: strings.ToLower(s)}, ""
	}

	return parseDigest(s)
}

// parseDigest parses algo:hex.
func parseDigest(s string) (Revision, string) {
	algo, hex, ok := strings.Cut(s, ":")
	if !ok {
		return Revision{}, "missing algorithm:digest"
	}
	n := digestLen(algo)
	if n == 0 {
		return Revision{}, fmt.Sprintf("unknown digest algorithm %q", algo)
	}
	if len(hex) != n {
		return Revision{}, fmt.Sprintf("%s digest has %d characters, want %d", algo, len(hex), n)
	}
	if !isHex(hex, n) {
		return Revision{}, fmt.Sprintf("%s digest is not hex", algo)
	}
	return Revision{Algorithm: algo, Digest: strings.ToLower(hex)}, ""
}

// String returns the canonical Flux form ref@algo:digest, or algo:digest when there is no ref;
// the zero Revision gives "".
func (r Revision) String() string {
	if r.Algorithm == "" && r.Digest == "" {
		return ""
	}
	if r.Ref == "" {
		return r.Algorithm + ":" + r.Digest
	}
	return r.Ref + "@" + r.Algorithm + ":" + r.Digest
}

// Equal reports whether r and o name the same object; refs are ignored.
func (r Revision) Equal(o Revision) bool {
	return r.Algorithm == o.Algorithm && r.Digest == o.Digest
}

// IsCommit reports whether the digest can be a git commit id (sha1, or sha256 for SHA-256
// repositories); only the caller knows whether a sha256 digest is an OCI artifact instead.
func (r Revision) IsCommit() bool {
	n := digestLen(r.Algorithm)
	return n != 0 && len(r.Digest) == n
}

// digestLen returns the hex length of algo's digests, or 0 for an unknown algorithm.
func digestLen(algo string) int {
	switch algo {
	case SHA1:
		return 40
	case SHA256:
		return 64
	}
	return 0
}

// IsSHA reports whether s is a full SHA-1 or SHA-256 object name: 40 or 64 hex digits of either case.
func IsSHA(s string) bool { return isHex(s, 40) || isHex(s, 64) }

// isHex reports whether s is exactly n hex digits of either case.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// Quote quotes outside text for an error message, truncated to 100 bytes on a rune boundary; every parser of
// outside data quotes with it.
func Quote(s string) string {
	if len(s) <= maxQuoted {
		return fmt.Sprintf("%q", s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q…(%d bytes)", s[:cut], len(s))
}

// Short is a commit's short SHA, as people read it: the first 7 characters.
func Short(sha string) string { return sha[:min(len(sha), 7)] }
