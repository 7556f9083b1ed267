// Package redact is the one path every URL, error and log text takes before it leaves the process (metric
// labels, span attributes, logs, events, errors): userinfo, query strings, fragments and registered secret
// values are removed.
package redact

import (
	"net/url"
	"regexp"
	"strings"
	"sync"
)

// Mask replaces what was removed.
const Mask = "REDACTED"

// URL returns raw without userinfo password, query or fragment. A user name alone is kept only when it is a
// conventional SSH user (git); anything else in userinfo is removed. Text that is not a URL is passed to Text.
func URL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "") {
		return Text(raw)
	}
	if u.User != nil {
		if _, hasPassword := u.User.Password(); hasPassword || u.User.Username() != "git" {
			u.User = nil
		}
	}
	if u.RawQuery != "" {
		u.RawQuery = Mask
	}
	u.Fragment, u.RawFragment = "", ""
	return secrets.replace(u.String())
}

// urlPattern finds URLs with a scheme inside free text.
var urlPattern = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>\x60]+`)

// Text redacts every URL found in s and every registered secret value.
func Text(s string) string {
	if s == "" {
		return s
	}
	s = urlPattern.ReplaceAllStringFunc(s, func(m string) string {
		trail := ""
		for strings.ContainsAny(m[len(m)-1:], ".,;:)]}") {
			trail, m = m[len(m)-1:]+trail, m[:len(m)-1]
			if m == "" {
				return trail
			}
		}
		u, err := url.Parse(m)
		if err != nil {
			return Mask + trail
		}
		if u.User != nil {
			if _, hasPassword := u.User.Password(); hasPassword || u.User.Username() != "git" {
				u.User = nil
			}
		}
		if u.RawQuery != "" {
			u.RawQuery = Mask
		}
		u.Fragment, u.RawFragment = "", ""
		return u.String() + trail
	})
	return secrets.replace(s)
}

// Error returns err's message redacted; nil stays nil.
func Error(err error) error {
	if err == nil {
		return nil
	}
	return redactedError{msg: Text(err.Error()), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }

// minSecretLen keeps short values (a user name such as "git", a "1") from masking ordinary words.
const minSecretLen = 6

// registry holds secret values read from Secrets so they are masked wherever they appear.
type registry struct {
	mu     sync.RWMutex
	values map[string]struct{}
}

var secrets = &registry{values: map[string]struct{}{}}

// Secret registers a credential value (a password, a token, a key) so Text and URL mask it from now on.
func Secret(value string) {
	value = strings.TrimSpace(value)
	if len(value) < minSecretLen {
		return
	}
	secrets.mu.Lock()
	defer secrets.mu.Unlock()
	secrets.values[value] = struct{}{}
}

func (r *registry) replace(s string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for v := range r.values {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, Mask)
		}
	}
	return s
}
