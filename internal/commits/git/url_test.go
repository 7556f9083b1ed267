package git

import (
	"errors"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

func TestNormalizeURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://GitHub.com/Org/Repo.git", "https://github.com/Org/Repo.git"},
		{"HTTPS://host/org/repo/", "https://host/org/repo"},
		{"https://user:s3cret@host:8443/org/repo", "https://host:8443/org/repo"},
		{"http://token@host/repo", "http://host/repo"},
		{"ssh://git:pw@Host.example:2222/org/repo.git", "ssh://git@host.example:2222/org/repo.git"},
		{"git@GitHub.com:org/repo.git", "git@github.com:org/repo.git"},
		{"host.example:org/repo/", "host.example:org/repo"},
		{"git://host/repo", "git://host/repo"},
		{"file:///srv/git/repo", "file:///srv/git/repo"},
		{"  https://host/r  ", "https://host/r"},
	}
	for _, tt := range tests {
		got, err := normalizeURL(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("normalizeURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{
		"", "repo", "/abs/path", "./rel:path", "ftp://host/r", "https://host", "https://host/",
		"https://host/r?token=s3cret", "https://host/r#frag", "file://host/r", "https://h/a b", "https://h/a\x00",
		"user@:path", "host:", "user:s3cret@host:org/repo",
		`host:\srv\repo`, `git@host:\\server\share\repo`, // go-git reads these as local paths
	} {
		if got, err := normalizeURL(bad); !errors.Is(err, errInvalidURL) {
			t.Errorf("normalizeURL(%q) = %q, %v; want errInvalidURL", bad, got, err)
		}
	}
}

func FuzzNormalizeURL(f *testing.F) {
	for _, s := range []string{"https://u:p@host/r", "git@host:r", "ssh://u:p@h:22/r", "file:///x", "h:p", "https://h/%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := normalizeURL(raw)
		if err != nil {
			if strings.Contains(raw, "s3cret") && strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error repeats the input: %v", err)
			}
			return
		}
		again, err := normalizeURL(got)
		if err != nil || again != got {
			t.Fatalf("not idempotent: %q → %q → %q, %v", raw, got, again, err)
		}
		if ep, err := transport.NewEndpoint(got); err != nil || (ep.Protocol == "file") != strings.HasPrefix(got, "file://") {
			t.Fatalf("%q → %q is read as %v, %v", raw, got, ep, err)
		}
		if mirrorName(got) != mirrorName(again) || len(mirrorName(got)) != 36 {
			t.Fatalf("mirror name %q", mirrorName(got))
		}
	})
}
