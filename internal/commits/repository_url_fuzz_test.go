package commits

import (
	"errors"
	"strings"
	"testing"
)

var repositoryURLSeeds = []string{
	"https://github.com/o/r",
	"https://github.com/o/r.git/",
	"http://github.com/o/r",
	"https://user:token@github.com/o/r.git",
	"ssh://git@github.com:22/o/r.git",
	"git@github.com:o/r.git",
	"https://ghe.example.com/org/repo.git",
	"https://github.com/o/r/tree/main",
	"https://github.com/o/r.git.git",
	"https://[::1]/o/r",
	"https://u:p%zz@h/o/r",
	"file:///tmp/o/r",
	"o/r",
	"github.com:o/r",
	"",
	"://",
	"@:/",
}

// checkRepository asserts the invariants of a successful parse of in.
func checkRepository(t *testing.T, in string, repo Repository) {
	t.Helper()
	for field, v := range map[string]string{"Host": repo.Host, "Owner": repo.Owner, "Name": repo.Name} {
		if v == "" || strings.Contains(v, "/") {
			t.Fatalf("parse of %q = %+v: %s %q is empty or has '/'", in, repo, field, v)
		}
	}
	if repo.Host != strings.ToLower(repo.Host) {
		t.Fatalf("parse of %q: host %q not lower-case", in, repo.Host)
	}
	again, err := ParseRepositoryURL(repo.String())
	if err != nil {
		t.Fatalf("parse of %q ok but ParseRepositoryURL(%q) failed: %v", in, repo.String(), err)
	}
	if again != repo {
		t.Fatalf("round trip of %q: %+v then %+v", in, repo, again)
	}
}

func FuzzParseRepositoryURL(f *testing.F) {
	for _, s := range repositoryURLSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		repo, err := ParseRepositoryURL(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidRepositoryURL) {
				t.Fatalf("error %v does not wrap ErrInvalidRepositoryURL", err)
			}
			return
		}
		checkRepository(t, in, repo)
	})
}

func FuzzParseRepositoryOverride(f *testing.F) {
	for _, s := range append(repositoryURLSeeds, "my-org/my.repo", " o/r\n", "o/r/x") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		repo, err := ParseRepositoryOverride(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidRepositoryURL) {
				t.Fatalf("error %v does not wrap ErrInvalidRepositoryURL", err)
			}
			return
		}
		checkRepository(t, in, repo)
	})
}

// FuzzParseRepositoryURLRedacts builds URLs with a distinctive password and checks no error repeats it.
func FuzzParseRepositoryURLRedacts(f *testing.F) {
	f.Add("https", "user", "hunter2", "github.com/o/r/tree/main")
	f.Add("https", "x-access-token", "ghp_abc", "github.com/o")
	f.Add("ssh", "git", "p%zz", "github.com:o/r")
	f.Add("http", "u", "pa#ss", "h/o/r?q")
	f.Add("ftp", "", "x", "[::1]/o/r")
	f.Add("", "us:er", "p", "host:o/r/x")
	f.Fuzz(func(t *testing.T, scheme, user, password, rest string) {
		// A '/' or '@' in user or password moves the userinfo boundary; those inputs are another URL.
		if strings.ContainsAny(user+password, "/@") {
			return
		}
		secret := "S3CRET" + password
		in := user + ":" + secret + "@" + rest
		if scheme != "" {
			in = scheme + "://" + in
		}
		if strings.Contains(rest, secret) || strings.Contains(scheme, secret) {
			return
		}
		_, err := ParseRepositoryURL(in)
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Fatalf("error for %q leaks the password: %v", in, err)
		}
		_, err = ParseRepositoryOverride(in)
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Fatalf("override error for %q leaks the password: %v", in, err)
		}
	})
}
