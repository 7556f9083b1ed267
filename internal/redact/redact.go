// Package redact is the one path every URL, error and log text takes before it leaves the process (metric
// labels, span attributes, logs, events, errors): userinfo, query strings, fragments, credential-like
// key=value pairs and registered secret values are removed.
//
// The rules work on the text itself, not on a successful URL parse, so a malformed URL (a password holding
// '/', '#' or '?', an invalid escape) is redacted too: everything between "://" and the last '@' that looks
// like userinfo goes, even at the cost of a host that only looked like one.
package redact

import (
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode"
)

// Mask replaces what was removed.
const Mask = "REDACTED"

// sshUser is the one user name kept: the conventional SSH user of git hosts, which is no secret.
const sshUser = "git"

// URL returns raw without userinfo (a bare "git" user is kept), with its query replaced by Mask and
// without its fragment; registered secrets are masked too. Text with whitespace is passed to Text.
func URL(raw string) string {
	if raw == "" {
		return ""
	}
	if strings.IndexFunc(raw, unicode.IsSpace) >= 0 {
		// Free text; what is left once redacted may read as one URL (its spaces were a secret's), and is then
		// redacted as one, so that redacting twice is redacting once.
		t := Text(raw)
		if strings.IndexFunc(t, unicode.IsSpace) >= 0 {
			return t
		}
		raw = t
	}
	return keyValuePattern.ReplaceAllString(redactURL(secrets.replace(raw)), "${1}="+Mask)
}

// redactURL applies the URL rules to one token until nothing changes (cutting a fragment can expose userinfo),
// so that redacting twice is redacting once.
func redactURL(s string) string {
	for range 4 {
		next := redactURLOnce(s)
		if next == s {
			break
		}
		s = next
	}
	return s
}

// redactURLOnce applies the URL rules once: scheme://[userinfo@]host/path?query#fragment, or scp-like
// [userinfo@]host:path.
func redactURLOnce(s string) string {
	scheme, rest := "", s
	if i := strings.Index(s, "://"); i >= 0 && schemePattern.MatchString(s[:i]) {
		scheme, rest = s[:i+3], s[i+3:]
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		userinfo := rest[:at]
		// A '/' before the '@' with no ':' is a path holding '@' (repo@v1); anything else is userinfo.
		if userinfo != sshUser && (strings.Contains(userinfo, ":") || !strings.ContainsAny(userinfo, "/?#")) {
			rest = rest[at+1:]
		} else if end := strings.IndexAny(rest, "/?#"); end > 0 {
			// An '@' in the authority (before the path) still ends a userinfo, whatever the path holds.
			if a := strings.LastIndexByte(rest[:end], '@'); a >= 0 && rest[:a] != sshUser {
				rest = rest[a+1:]
			}
		}
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		query := rest[i] == '?' && i+1 < len(rest) && rest[i+1] != '#'
		rest = rest[:i]
		if query {
			rest += "?" + Mask
		}
	}
	return scheme + rest
}

var (
	schemePattern = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*$`)
	// urlPattern finds URLs with a scheme inside free text.
	urlPattern = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>\x60]+`)
	// userinfoPattern finds user:password@ outside scheme URLs (scp-like remotes, bare authorities).
	userinfoPattern = regexp.MustCompile(`[^\s:@/"'<>\x60]+:[^\s@/"'<>\x60][^\s@"'<>\x60]*@`)
	// keyValuePattern finds credential-like key=value pairs, as in a query string printed on its own.
	keyValuePattern = regexp.MustCompile(`(?i)\b((?:access_|private_|auth_|id_|refresh_)?token|password|passwd|secret|client_secret|api_?key|apikey|sig|signature|credential|auth)=[^\s&"'<>\x60]+`)
)

// Text redacts every URL found in s (as URL does), user:password@ pairs, credential-like key=value pairs
// and every registered secret value. It is idempotent.
func Text(s string) string {
	if s == "" {
		return s
	}
	// Secrets first: the patterns below cut text up and could leave part of one behind.
	s = secrets.replace(s)
	s = urlPattern.ReplaceAllStringFunc(s, func(m string) string {
		trail := ""
		for m != "" && strings.ContainsAny(m[len(m)-1:], ".,;:)]}\\") {
			trail, m = m[len(m)-1:]+trail, m[:len(m)-1]
		}
		if m == "" {
			return trail
		}
		return redactURL(m) + trail
	})
	s = userinfoPattern.ReplaceAllString(s, Mask+"@")
	return keyValuePattern.ReplaceAllString(s, "${1}="+Mask)
}

// Error returns err with its message redacted when it is read; nil stays nil. The chain stays for errors.Is
// and errors.As; secrets registered after the call are masked too.
func Error(err error) error {
	if err == nil {
		return nil
	}
	if r, ok := err.(redactedError); ok {
		return r
	}
	return redactedError{err: err}
}

type redactedError struct{ err error }

func (e redactedError) Error() string { return Text(e.err.Error()) }
func (e redactedError) Unwrap() error { return e.err }

const (
	// minSecretLen keeps short values (a user name such as "git", a "1") from masking ordinary words.
	minSecretLen = 6
	// maxSecrets bounds the registry; the oldest values are forgotten first.
	maxSecrets = 4096
)

// registry holds secret values read from Secrets so they are masked wherever they appear.
type registry struct {
	mu sync.RWMutex
	// order is oldest first; byLength longest first, so a secret holding another is masked whole.
	order, byLength []string
	values          map[string]struct{}
}

var secrets = &registry{values: map[string]struct{}{}}

// Secret registers a credential value (a password, a token, a key) so Text and URL mask it from now on, in
// its plain, query-escaped, path-escaped and userinfo-escaped forms. A multi-line value (a PEM key) is
// registered line by line, without its armor lines. Values shorter than 6 characters are not registered.
func Secret(value string) {
	var forms []string
	for line := range strings.Lines(value) {
		if line = strings.TrimSpace(line); !strings.HasPrefix(line, "-----") {
			forms = append(forms, line)
		}
	}
	if v := strings.TrimSpace(value); !strings.Contains(v, "\n") {
		forms = []string{v}
	}
	secrets.mu.Lock()
	defer secrets.mu.Unlock()
	for _, v := range forms {
		if len(v) < minSecretLen {
			continue
		}
		for _, form := range []string{v, url.QueryEscape(v), url.PathEscape(v), strings.TrimPrefix(url.UserPassword("", v).String(), ":")} {
			secrets.add(form)
		}
	}
}

// add registers v as the newest value (a value registered again is kept the longest); the caller holds mu.
func (r *registry) add(v string) {
	if _, ok := r.values[v]; ok {
		if i := slices.Index(r.order, v); i >= 0 {
			r.order = append(slices.Delete(r.order, i, i+1), v)
		}
		return
	}
	if len(r.order) == maxSecrets {
		oldest := r.order[0]
		r.order = r.order[1:]
		delete(r.values, oldest)
		r.byLength = slices.DeleteFunc(r.byLength, func(s string) bool { return s == oldest })
	}
	r.values[v] = struct{}{}
	r.order = append(r.order, v)
	i, _ := slices.BinarySearchFunc(r.byLength, v, func(a, b string) int { return len(b) - len(a) })
	r.byLength = slices.Insert(r.byLength, i, v)
}

func (r *registry) replace(s string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, v := range r.byLength {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, Mask)
		}
	}
	return s
}
