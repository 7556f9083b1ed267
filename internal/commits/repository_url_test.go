package commits

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRepositoryURL(t *testing.T) {
	gh := Repository{Host: "github.com", Owner: "o", Name: "r"}
	tests := []struct {
		in   string
		want Repository
	}{
		{"https://github.com/o/r", gh},
		{"https://github.com/o/r.git", gh},
		{"https://github.com/o/r/", gh},
		{"https://github.com/o/r.git/", gh},
		{"http://github.com/o/r", gh},
		{"HTTPS://GitHub.COM/o/r", gh},
		{"https://user:token@github.com/o/r.git", gh},
		{"https://x-access-token@github.com/o/r", gh},
		{"https://github.com:443/o/r", gh},
		{"ssh://git@github.com/o/r", gh},
		{"ssh://git@github.com:22/o/r.git", gh},
		{"git@github.com:o/r.git", gh},
		{"git@github.com:o/r", gh},
		{"git@github.com:/o/r.git", gh},
		{"git@GITHUB.com:o/r.git/", gh},
		{"https://ghe.example.com/org/repo.git", Repository{Host: "ghe.example.com", Owner: "org", Name: "repo"}},
		{"ssh://git@ghe.example.com:2222/Org/Repo", Repository{Host: "ghe.example.com", Owner: "Org", Name: "Repo"}},
		{"https://10.0.0.1/o/r", Repository{Host: "10.0.0.1", Owner: "o", Name: "r"}},
		{"https://github.com/my-org/my_repo.v2", Repository{Host: "github.com", Owner: "my-org", Name: "my_repo.v2"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRepositoryURL(tt.in)
			if err != nil {
				t.Fatalf("ParseRepositoryURL(%q) error: %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseRepositoryURL(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseRepositoryURLErrors(t *testing.T) {
	tests := []struct {
		name, in, wantInMsg string
	}{
		{"empty", "", "empty"},
		{"owner/name needs a host", "o/r", "not a URL"},
		{"host only", "https://github.com", "owner/name"},
		{"host and slash", "https://github.com/", "owner/name"},
		{"no name", "https://github.com/o", "owner/name"},
		{"empty name", "https://github.com/o/", "owner/name"},
		{"empty owner", "https://github.com//r", "owner/name"},
		{"only .git", "https://github.com/o/.git", "invalid repository name"},
		{"double .git", "https://github.com/o/r.git.git", "invalid repository name"},
		{"dot-dot name", "https://github.com/o/..", "invalid repository name"},
		{"extra segments", "https://github.com/o/r/tree/main", "beyond owner/name"},
		{"extra scp segments", "git@github.com:o/r/x", "beyond owner/name"},
		{"file scheme", "file:///tmp/o/r", `unsupported scheme "file"`},
		{"ftp scheme", "ftp://github.com/o/r", `unsupported scheme "ftp"`},
		{"git scheme", "git://github.com/o/r", `unsupported scheme "git"`},
		{"empty scheme", "://github.com/o/r", "malformed scheme"},
		{"leading space", " https://github.com/o/r", "whitespace"},
		{"trailing newline", "https://github.com/o/r\n", "whitespace"},
		{"space in path", "https://github.com/o/r x", "whitespace"},
		{"query", "https://github.com/o/r?ref=main", "query"},
		{"fragment", "https://github.com/o/r#main", "query or fragment"},
		{"no host", "https:///o/r", "host"},
		{"ipv6 host", "https://[::1]/o/r", "host"},
		{"bad port", "ssh://git@github.com:o/r", "malformed URL"},
		{"scp without user", "github.com:o/r", "user@host"},
		{"scp empty user", "@github.com:o/r", "user@host"},
		{"scp empty host", "git@:o/r", "host"},
		{"windows path", `C:\repos\o\r`, "user@host"},
		{"bad owner character", "https://github.com/o~x/r", "invalid owner"},
		{"percent-encoded slash", "https://github.com/o%2Fx/r", "beyond owner/name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRepositoryURL(tt.in)
			if err == nil {
				t.Fatalf("ParseRepositoryURL(%q) = %+v, want error", tt.in, got)
			}
			if !errors.Is(err, ErrInvalidRepositoryURL) {
				t.Errorf("error %v does not wrap ErrInvalidRepositoryURL", err)
			}
			if got != (Repository{}) {
				t.Errorf("returned %+v with error, want zero Repository", got)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.wantInMsg) {
				t.Errorf("error %q does not mention %q", msg, tt.wantInMsg)
			}
		})
	}
}

func TestParseRepositoryURLRedactsCredentials(t *testing.T) {
	tests := []struct {
		in, secret, wantQuoted string
	}{
		{"https://user:hunter2secret@github.com/o/r/tree/main", "hunter2secret", `"https://redacted@github.com/o/r/tree/main"`},
		{"https://ghp_tokenABC123@github.com/o", "ghp_tokenABC123", `"https://redacted@github.com/o"`},
		{"https://user:s3cret%zz@github.com/o/r", "s3cret", `"https://redacted@github.com/o/r"`},
		{"https://user:pa/ss3cret@github.com/o/r", "ss3cret", `"https://redacted@github.com/o/r"`},
		{"https://user:pa#ss3cret@github.com/o/r", "ss3cret", `"https://redacted@github.com/o/r"`},
		{"user:pa55word@github.com:o/r/x", "pa55word", `"redacted@github.com:o/r/x"`},
		{"us:er:pa55word@host://o/r", "pa55word", `"redacted@host://o/r"`},
		{"ftp://user:pa55word@example.com/o/r", "pa55word", `"ftp://redacted@example.com/o/r"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseRepositoryURL(tt.in)
			if err == nil {
				t.Fatalf("ParseRepositoryURL(%q) succeeded, want error", tt.in)
			}
			msg := err.Error()
			if strings.Contains(msg, tt.secret) {
				t.Errorf("error %q leaks %q", msg, tt.secret)
			}
			if !strings.Contains(msg, tt.wantQuoted) {
				t.Errorf("error %q does not quote the redacted input %s", msg, tt.wantQuoted)
			}
		})
	}
}

func TestParseRepositoryURLTruncatesLongInput(t *testing.T) {
	in := "https://github.com/o/" + strings.Repeat("r/", 1000)
	_, err := ParseRepositoryURL(in)
	if err == nil {
		t.Fatal("want error")
	}
	if msg := err.Error(); len(msg) > 250 || !strings.Contains(msg, "…(2021 bytes)") {
		t.Errorf("error not truncated to about 100 bytes of input: %q", msg)
	}
}

func TestParseRepositoryURLRoundTrip(t *testing.T) {
	for _, in := range []string{"git@ghe.example.com:Org/Repo.git", "ssh://git@github.com:22/o/r.git", "https://u:p@github.com/o/r/"} {
		repo, err := ParseRepositoryURL(in)
		if err != nil {
			t.Fatalf("ParseRepositoryURL(%q): %v", in, err)
		}
		again, err := ParseRepositoryURL(repo.String())
		if err != nil {
			t.Fatalf("ParseRepositoryURL(%q): %v", repo.String(), err)
		}
		if again != repo {
			t.Errorf("round trip of %q: %+v then %+v", in, repo, again)
		}
	}
}

func TestParseRepositoryOverride(t *testing.T) {
	tests := []struct {
		in   string
		want Repository
	}{
		{"o/r", Repository{Host: "github.com", Owner: "o", Name: "r"}},
		{"my-org/my.repo", Repository{Host: "github.com", Owner: "my-org", Name: "my.repo"}},
		{"o/r.git", Repository{Host: "github.com", Owner: "o", Name: "r"}},
		{" o/r\n", Repository{Host: "github.com", Owner: "o", Name: "r"}},
		{"https://ghe.example.com/org/repo.git", Repository{Host: "ghe.example.com", Owner: "org", Name: "repo"}},
		{"git@ghe.example.com:org/repo.git", Repository{Host: "ghe.example.com", Owner: "org", Name: "repo"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRepositoryOverride(tt.in)
			if err != nil {
				t.Fatalf("ParseRepositoryOverride(%q) error: %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseRepositoryOverride(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseRepositoryOverrideErrors(t *testing.T) {
	tests := []struct {
		in, wantInMsg string
	}{
		{"", "owner/name"},
		{"o", "owner/name"},
		{"o/", "owner/name"},
		{"/r", "owner/name"},
		{"o/r/x", "beyond owner/name"},
		{"o r/x", "invalid owner"},
		{"o/r x", "invalid repository name"},
		{"github.com/o/r", "beyond owner/name"},
		{"ftp://github.com/o/r", "unsupported scheme"},
		{"https://github.com/o/r/tree/main", "beyond owner/name"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRepositoryOverride(tt.in)
			if err == nil {
				t.Fatalf("ParseRepositoryOverride(%q) = %+v, want error", tt.in, got)
			}
			if !errors.Is(err, ErrInvalidRepositoryURL) {
				t.Errorf("error %v does not wrap ErrInvalidRepositoryURL", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.wantInMsg) {
				t.Errorf("error %q does not mention %q", msg, tt.wantInMsg)
			}
		})
	}
}
