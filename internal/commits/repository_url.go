package commits

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalidRepositoryURL is wrapped by every error ParseRepositoryURL and ParseRepositoryOverride return.
var ErrInvalidRepositoryURL = errors.New("invalid repository URL")

// defaultRepositoryHost is the host an owner/name override refers to.
const defaultRepositoryHost = "github.com"

// ParseRepositoryURL parses a git remote URL naming a hosted repository: http(s)://host/owner/name[.git][/],
// ssh://user@host[:port]/owner/name[.git], or scp-like user@host:owner/name[.git]. Credentials and
// ports are dropped and the host is lower-cased. Errors never repeat the URL's userinfo.
func ParseRepositoryURL(raw string) (Repository, error) {
	repo, reason := parseRepositoryURL(raw)
	if reason != "" {
		return Repository{}, repositoryURLError(raw, reason)
	}
	return repo, nil
}

// ParseRepositoryOverride parses an annotation value naming a repository: a URL accepted by
// ParseRepositoryURL, or owner/name on github.com. Surrounding whitespace is ignored.
func ParseRepositoryOverride(value string) (Repository, error) {
	value = strings.TrimSpace(value)
	if strings.Contains(value, "://") || strings.ContainsAny(value, ":@") {
		return ParseRepositoryURL(value)
	}
	repo, reason := parseRepositoryPath(value)
	if reason != "" {
		return Repository{}, repositoryURLError(value, reason)
	}
	repo.Host = defaultRepositoryHost
	return repo, nil
}

func parseRepositoryURL(raw string) (Repository, string) {
	if raw == "" {
		return Repository{}, "empty"
	}
	if strings.IndexFunc(raw, func(c rune) bool { return c == utf8.RuneError || unicode.IsSpace(c) || unicode.IsControl(c) }) >= 0 {
		return Repository{}, "contains whitespace, control characters or invalid UTF-8"
	}

	var host, path string
	if i := strings.Index(raw, "://"); i >= 0 {
		switch scheme := strings.ToLower(raw[:i]); {
		case scheme == "http", scheme == "https", scheme == "ssh":
		case validURLScheme(scheme):
			return Repository{}, fmt.Sprintf("unsupported scheme %q, want https, http or ssh", scheme)
		default:
			return Repository{}, "malformed scheme"
		}
		// url.Parse errors repeat the input, credentials included, so only say that it failed.
		u, err := url.Parse(raw)
		if err != nil {
			return Repository{}, "malformed URL"
		}
		if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
			return Repository{}, "has a query or fragment"
		}
		host, path = u.Hostname(), u.Path
	} else {
		// scp-like user@host:path; the user is required so owner/name and drive letters are not mistaken for hosts.
		colon := strings.IndexByte(raw, ':')
		if colon < 0 || strings.IndexByte(raw[:colon], '/') >= 0 {
			return Repository{}, "not a URL: want scheme://host/owner/name or user@host:owner/name"
		}
		at := strings.LastIndexByte(raw[:colon], '@')
		if at <= 0 {
			return Repository{}, "scp-like URL needs user@host:owner/name"
		}
		host, path = raw[at+1:colon], raw[colon+1:]
	}

	host = strings.ToLower(host)
	if !validRepositoryHost(host) {
		return Repository{}, "missing or invalid host name"
	}
	repo, reason := parseRepositoryPath(strings.TrimPrefix(path, "/"))
	if reason != "" {
		return Repository{}, reason
	}
	repo.Host = host
	return repo, ""
}

// parseRepositoryPath parses owner/name[.git][/].
func parseRepositoryPath(path string) (Repository, string) {
	path = strings.TrimSuffix(path, "/")
	owner, name, ok := strings.Cut(path, "/")
	if !ok || owner == "" || name == "" {
		return Repository{}, "want exactly owner/name in the path"
	}
	if strings.Contains(name, "/") {
		return Repository{}, "path has segments beyond owner/name"
	}
	name = strings.TrimSuffix(name, ".git")
	if !validRepositoryPathSegment(owner) {
		return Repository{}, "invalid owner"
	}
	// A name still ending in .git would not survive a round trip through Repository.String.
	if !validRepositoryPathSegment(name) || strings.HasSuffix(name, ".git") {
		return Repository{}, "invalid repository name"
	}
	return Repository{Owner: owner, Name: name}, ""
}

// validRepositoryPathSegment reports whether s can be a GitHub owner or repository name.
func validRepositoryPathSegment(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// validRepositoryHost reports whether s is a lower-case DNS name or IPv4 address (no port, no IPv6).
func validRepositoryHost(s string) bool {
	if s == "" || s[0] == '.' || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// validURLScheme reports whether s has RFC 3986 scheme syntax, so it is safe to repeat.
func validURLScheme(s string) bool {
	if s == "" || !('a' <= s[0] && s[0] <= 'z') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// repositoryURLError wraps ErrInvalidRepositoryURL, quoting raw with its userinfo redacted.
func repositoryURLError(raw, reason string) error {
	return fmt.Errorf("%w %s: %s", ErrInvalidRepositoryURL, quoteRepositoryURL(redactRepositoryURL(raw)), reason)
}

// redactRepositoryURL replaces everything before the last '@' (after a well-formed scheme) with "redacted",
// covering userinfo even in URLs too malformed to parse.
func redactRepositoryURL(raw string) string {
	at := strings.LastIndexByte(raw, '@')
	if at < 0 {
		return raw
	}
	prefix := ""
	if i := strings.Index(raw, "://"); i >= 0 && i < at && validURLScheme(strings.ToLower(raw[:i])) {
		prefix = raw[:i+3]
	}
	return prefix + "redacted" + raw[at:]
}

// quoteRepositoryURL quotes s for an error message, truncated to 100 bytes on a rune boundary.
func quoteRepositoryURL(s string) string {
	const max = 100
	if len(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q…(%d bytes)", s[:cut], len(s))
}
