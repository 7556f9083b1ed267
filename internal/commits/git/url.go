package git

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

// errInvalidURL is wrapped by every error normalizeURL returns.
var errInvalidURL = errors.New("invalid git URL")

// normalizeURL returns the URL the mirror fetches from, which is also its identity: scheme and host
// lower-cased, credentials dropped (access is anonymous; an ssh user name is kept, it is not a secret),
// trailing slashes trimmed. It accepts http(s)://, ssh://, git://, file:// and scp-like user@host:path.
// Errors never repeat the input, which may hold credentials. A URL that go-git would read as a local path
// (an scp-like path starting with a backslash) is refused: only file:// names a local repository.
func normalizeURL(raw string) (string, error) {
	out, err := normalize(raw)
	if err != nil {
		return "", err
	}
	want := "ssh"
	if i := strings.Index(out, "://"); i >= 0 {
		want = out[:i]
	}
	if ep, err := transport.NewEndpoint(out); err != nil || ep.Protocol != want {
		return "", fmt.Errorf("%w: would be read as a local path, not over %s", errInvalidURL, want)
	}
	return out, nil
}

func normalize(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", fmt.Errorf("%w: empty", errInvalidURL)
	}
	if strings.IndexFunc(raw, func(c rune) bool { return unicode.IsSpace(c) || unicode.IsControl(c) }) >= 0 {
		return "", fmt.Errorf("%w: contains whitespace or control characters", errInvalidURL)
	}
	if strings.Contains(raw, "://") {
		return normalizeSchemeURL(raw)
	}
	return normalizeSCPLike(raw)
}

func normalizeSchemeURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%w: malformed URL", errInvalidURL)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", fmt.Errorf("%w: has a query or fragment", errInvalidURL)
	}
	switch u.Scheme {
	case "http", "https", "git":
		u.User = nil
	case "ssh":
		if u.User != nil {
			u.User = url.User(u.User.Username())
		}
	case "file":
		if u.Host != "" || u.User != nil || u.Path == "" {
			return "", fmt.Errorf("%w: want file:///absolute/path", errInvalidURL)
		}
		return u.String(), nil
	default:
		return "", fmt.Errorf("%w: unsupported scheme, want https, http, ssh, git or file", errInvalidURL)
	}
	if u.Hostname() == "" {
		return "", fmt.Errorf("%w: missing host", errInvalidURL)
	}
	u.Host = strings.ToLower(u.Host)
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	if u.Path == "" {
		return "", fmt.Errorf("%w: missing repository path", errInvalidURL)
	}
	return u.String(), nil
}

// normalizeSCPLike handles user@host:path as git does: a colon with no slash before it.
func normalizeSCPLike(raw string) (string, error) {
	colon := strings.IndexByte(raw, ':')
	if colon < 0 || strings.IndexByte(raw[:colon], '/') >= 0 {
		return "", fmt.Errorf("%w: want scheme://host/path or user@host:path", errInvalidURL)
	}
	user, host := "", raw[:colon]
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		user, host = host[:at+1], host[at+1:]
	}
	path := strings.TrimRight(raw[colon+1:], "/")
	if host == "" || path == "" {
		return "", fmt.Errorf("%w: scp-like URL needs host:path", errInvalidURL)
	}
	if dir, _, _ := strings.Cut(path, "/"); strings.Contains(dir, "@") {
		// user:password@host:path parses as host "user", path "password@host:path".
		return "", fmt.Errorf("%w: scp-like URL cannot hold a password", errInvalidURL)
	}
	return user + strings.ToLower(host) + ":" + path, nil
}

// mirrorName is the directory name of the mirror of a normalized URL: a hash, so neither the URL nor
// anything else about the repository appears on disk.
func mirrorName(normalized string) string {
	sum := sha256.Sum256([]byte(normalized))
	return hex.EncodeToString(sum[:16]) + ".git"
}
