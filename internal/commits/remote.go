package commits

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Repository URLs as git reads them: the scheme, where credentials go, and which provider reads them. Every
// decision about a source's URL is made here, once.

// URL schemes that carry credentials in the clear (http) or encrypted (https).
const (
	SchemeHTTP  = "http"
	SchemeHTTPS = "https"
	SchemeSSH   = "ssh"
	SchemeGit   = "git"
)

// Provider kinds: how a repository is read, as the provider annotation names them.
const (
	ProviderGitHub = "github"
	ProviderGit    = "git"
)

// ParseProviderAnnotation returns the provider kind the provider annotation names: github, git, or "" when unset.
func ParseProviderAnnotation(value string) (string, error) {
	switch kind := strings.ToLower(value); kind {
	case "", ProviderGitHub, ProviderGit:
		return kind, nil
	}
	return "", fmt.Errorf("unknown provider %q (want %s or %s)", value, ProviderGitHub, ProviderGit)
}

// ChooseProvider returns kind when set, else GitHub for a repository on one of githubHosts, else plain git.
func ChooseProvider(raw, kind string, githubHosts []string) string {
	if kind != "" {
		return kind
	}
	if repo, err := ParseRepositoryURL(raw); err == nil && slices.Contains(githubHosts, repo.Host) {
		return ProviderGitHub
	}
	return ProviderGit
}

// Scheme returns raw's lower-cased scheme: ssh for scp-like user@host:path, "helper::" for git's
// helper::address, "" for a local path.
func Scheme(raw string) string {
	raw = strings.TrimSpace(raw)
	if i := strings.Index(raw, "://"); i >= 0 {
		return strings.ToLower(raw[:i])
	}
	if helper, _, ok := strings.Cut(raw, "::"); ok && helper != "" && !strings.ContainsAny(helper, `:/\@`) {
		return strings.ToLower(helper) + "::" // git's transport::address, a remote helper (ext:: runs a command)
	}
	if before, _, ok := strings.Cut(raw, ":"); ok && before != "" && !strings.ContainsAny(before, `/\`) {
		return SchemeSSH // git's rule: a colon with no slash before it is scp-like ssh
	}
	return ""
}

// CarriesCredentials reports whether a Secret's credentials apply to raw's scheme: git:// has none.
func CarriesCredentials(raw string) bool {
	switch Scheme(raw) {
	case SchemeHTTPS, SchemeHTTP, SchemeSSH:
		return true
	}
	return false
}

// origin is where credentials are sent: scheme, lower-cased host and port, the scheme's default when absent.
type origin struct{ scheme, host, port string }

var defaultPorts = map[string]string{SchemeHTTPS: "443", SchemeHTTP: "80", SchemeSSH: "22", SchemeGit: "9418"}

// originOf returns raw's origin; ok is false when raw names none (a local path, a malformed URL).
func originOf(raw string) (o origin, ok bool) {
	raw = strings.TrimSpace(raw)
	o.scheme = Scheme(raw)
	switch {
	case o.scheme == "":
		return origin{}, false
	case strings.Contains(raw, "://"):
		u, err := url.Parse(raw)
		if err != nil || u.Hostname() == "" {
			return origin{}, false
		}
		o.host, o.port = strings.ToLower(u.Hostname()), u.Port()
	default: // scp-like [user@]host:path
		hostPart, _, _ := strings.Cut(raw, ":")
		o.host = strings.ToLower(hostPart[strings.LastIndexByte(hostPart, '@')+1:])
	}
	if o.host == "" {
		return origin{}, false
	}
	if o.port == "" {
		o.port = defaultPorts[o.scheme]
	}
	return o, true
}

// SameOrigin reports whether a and b send credentials to the same scheme, host and port.
func SameOrigin(a, b string) bool {
	oa, okA := originOf(a)
	ob, okB := originOf(b)
	return okA && okB && oa == ob
}

// ParseGitRepository names a plain-git repository by its URL without credentials; local accepts a file:// URL or
// a local path, named by its path.
func ParseGitRepository(raw string, local bool) (Repository, error) {
	repo, err := ParseRepositoryURL(raw)
	if err == nil {
		return repo, nil
	}
	if local {
		path := strings.TrimSuffix(strings.TrimRight(strings.TrimPrefix(raw, "file://"), "/"), ".git")
		return Repository{Host: "localhost", Name: path[strings.LastIndex(path, "/")+1:], URL: raw}, nil
	}
	u, perr := url.Parse(raw)
	if perr != nil || u.Host == "" || strings.Trim(u.Path, "/") == "" {
		return Repository{}, err
	}
	switch u.Scheme {
	case SchemeHTTP, SchemeHTTPS, SchemeSSH, SchemeGit:
	default:
		return Repository{}, err
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	path := strings.TrimSuffix(strings.Trim(u.Path, "/"), ".git")
	return Repository{Host: strings.ToLower(u.Hostname()), Name: path[strings.LastIndex(path, "/")+1:], URL: u.String()}, nil
}
