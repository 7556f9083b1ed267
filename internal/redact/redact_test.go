package redact_test

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/redact"
)

func TestURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"https://github.com/acme/app", "https://github.com/acme/app"},
		{"https://gitlab-ci-token:CANARY1@gitlab.example.com/g/r.git", "https://gitlab.example.com/g/r.git"},
		{"https://ghp_tokenonly@github.com/o/r", "https://github.com/o/r"},
		{"ssh://git@github.com/o/r", "ssh://git@github.com/o/r"},
		{"ssh://deploy:pw123456@host:2222/o/r", "ssh://host:2222/o/r"},
		{"git@github.com:o/r.git", "git@github.com:o/r.git"},
		{"oauth2:CANARY1@gitlab.com:g/r.git", "gitlab.com:g/r.git"},
		{"https://host/r.git?token=CANARY2", "https://host/r.git?" + redact.Mask},
		{"https://host/r.git?token=CANARY2#frag", "https://host/r.git?" + redact.Mask},
		{"https://host/r.git#CANARY2", "https://host/r.git"},
		{"https://host/r.git?", "https://host/r.git"},
		// Malformed: a password holding '/', '#', '?' or a bad escape still goes.
		{"https://user:pa/ss3cret@github.com/o/r", "https://github.com/o/r"},
		{"https://user:pa#ss3cret@github.com/o/r", "https://github.com/o/r"},
		{"https://user:pa?ss3cret@github.com/o/r", "https://github.com/o/r"},
		{"https://user:s3cret%zz@github.com/o/r", "https://github.com/o/r"},
		{"https://a:b@c:d@host/o/r", "https://host/o/r"},
		// A path holding '@' is no userinfo.
		{"https://host/o/r@v1", "https://host/o/r@v1"},
		{"acme/app", "acme/app"},
		{"not a url https://u:CANARY1@h/x", "not a url https://h/x"},
	}
	for _, tt := range tests {
		if got := redact.URL(tt.in); got != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"nothing to hide: main@sha1:0123abcd", "nothing to hide: main@sha1:0123abcd"},
		{`git: fetch "https://u:CANARY1@host/r.git": 401`, `git: fetch "https://host/r.git": 401`},
		{"fetch https://u:CANARY1@host/r.git: failed.", "fetch https://host/r.git: failed."},
		{"(see https://host/r?token=CANARY2).", "(see https://host/r?" + redact.Mask + ")."},
		{"remote oauth2:CANARY1@gitlab.com:g/r failed", "remote " + redact.Mask + "@gitlab.com:g/r failed"},
		{"ssh://git@host:22/o/r and git@host:o/r", "ssh://git@host:22/o/r and git@host:o/r"},
		{"query was token=CANARY2&x=1 and password=CANARY3", "query was token=" + redact.Mask + "&x=1 and password=" + redact.Mask},
		{`{"url":"https://u:CANARY1@h/x\"}`, `{"url":"https://h/x\"}`},
	}
	for _, tt := range tests {
		if got := redact.Text(tt.in); got != tt.want {
			t.Errorf("Text(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSecret(t *testing.T) {
	redact.Secret("Canary3-secret/with:odd@chars")
	redact.Secret("short") // too short to mask ordinary words
	redact.Secret("-----BEGIN KEY-----\nCanary3keyline0123456789\nCanary3keyline9876543210\n-----END KEY-----\n")
	for _, in := range []string{
		"bearer Canary3-secret/with:odd@chars in a header",
		"escaped " + url.QueryEscape("Canary3-secret/with:odd@chars"),
		"path " + url.PathEscape("Canary3-secret/with:odd@chars"),
		"key line Canary3keyline9876543210 echoed",
	} {
		got := redact.Text(in)
		if strings.Contains(got, "Canary3") {
			t.Errorf("Text(%q) = %q, still holds the secret", in, got)
		}
		if !strings.Contains(got, redact.Mask) {
			t.Errorf("Text(%q) = %q, want %s in its place", in, got, redact.Mask)
		}
	}
	if got := redact.Text("a short word"); got != "a short word" {
		t.Errorf("a short value masked ordinary text: %q", got)
	}
	if got := redact.URL("https://host/Canary3keyline0123456789"); got != "https://host/"+redact.Mask {
		t.Errorf("URL does not mask registered secrets: %q", got)
	}
}

func TestSecretLongestFirst(t *testing.T) {
	redact.Secret("inner-secret")
	redact.Secret("outer-inner-secret-tail")
	if got := redact.Text("x outer-inner-secret-tail y"); got != "x "+redact.Mask+" y" {
		t.Errorf("Text = %q, want the longer secret masked whole", got)
	}
}

func TestError(t *testing.T) {
	if redact.Error(nil) != nil {
		t.Fatal("Error(nil) is not nil")
	}
	base := fmt.Errorf("clone https://u:CANARY1@host/r: %w", fs.ErrNotExist)
	err := redact.Error(base)
	if strings.Contains(err.Error(), "CANARY1") || !strings.Contains(err.Error(), "https://host/r") {
		t.Errorf("Error() = %q", err)
	}
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, base) {
		t.Error("the chain is lost")
	}
	if again := redact.Error(err); again != err {
		t.Error("Error wraps a redacted error again")
	}
	// A secret registered after the error was made is masked when it is read.
	late := redact.Error(errors.New("server echoed late-registered-secret"))
	redact.Secret("late-registered-secret")
	if strings.Contains(late.Error(), "late-registered-secret") {
		t.Errorf("Error() = %q", late)
	}
}

// seeds are URLs with credentials in every place they turn up.
var seeds = []string{
	"https://user:CANARY1pass@host/o/r.git",
	"https://host/o/r?token=CANARY2query",
	"http://u:p%40ss@h:8080/x?a=b&token=q#f",
	"oauth2:CANARY1pass@gitlab.com:g/r",
	"ssh://git:pw@host/o/r",
	"https://user:pa/ss@github.com/o/r",
	"https://x/y?#",
	"git@host:o/r",
	"::@:?",
}

// secretsOf lists the password and query values url.Parse finds in raw.
func secretsOf(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	var out []string
	if p, ok := u.User.Password(); ok {
		out = append(out, p)
	}
	if u.User != nil && u.User.Username() != "git" {
		out = append(out, u.User.Username())
	}
	for _, vs := range u.Query() {
		out = append(out, vs...)
	}
	return out
}

// assertHidden fails when out holds a password or query value of in longer than 3 bytes (shorter ones are
// found in any text by chance: a scheme, a host, the mask) that the text around in does not hold as well.
func assertHidden(t *testing.T, fn, in, around, out string) {
	t.Helper()
	for _, s := range secretsOf(in) {
		if len(s) > 3 && strings.Contains(out, s) && !strings.Contains(redact.Mask, s) && !strings.Contains(around, s) && !strings.Contains(in[:strings.Index(in, "://")+3]+hostOf(in), s) {
			t.Fatalf("%s(%q) = %q holds %q", fn, in, out, s)
		}
	}
}

// hostOf is the host url.Parse finds; a secret that is also the host cannot be removed without the host.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host + u.Path
}

func FuzzURL(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := redact.URL(in)
		if strings.Contains(in, "://") && !strings.ContainsAny(in, " \t\n\r\v\f") {
			assertHidden(t, "URL", in, "", out)
		}
		if again := redact.URL(out); again != out {
			t.Fatalf("URL not idempotent: %q -> %q -> %q", in, out, again)
		}
	})
}

func FuzzText(f *testing.F) {
	for _, s := range seeds {
		f.Add("error: " + s + ": failed")
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := redact.Text(in)
		for _, field := range strings.Fields(in) {
			field = strings.Trim(field, `"'<>`+"`")
			if i := strings.Index(field, "://"); i > 0 && !strings.ContainsAny(field, `"'<>`+"`") {
				assertHidden(t, "Text", field, strings.Replace(in, field, "", 1), out)
			}
		}
		if again := redact.Text(out); again != out {
			t.Fatalf("Text not idempotent: %q -> %q -> %q", in, out, again)
		}
	})
}

// A secret registered again is the newest: the values registered after it do not push it out first.
func TestSecretRegisteredAgainIsKeptTheLongest(t *testing.T) {
	for i := range 4096 {
		redact.Secret(fmt.Sprintf("flush-%04d", i)) // the registry holds these alone now
	}
	const keep = "kept-secret-value"
	redact.Secret(keep)
	for i := range 4095 {
		redact.Secret(fmt.Sprintf("fill-%04d", i)) // keep is the oldest now
	}
	redact.Secret(keep) // in use again: the newest
	redact.Secret("one-more-secret")
	if got := redact.Text("x " + keep + " y"); strings.Contains(got, keep) {
		t.Errorf("Text = %q: the secret registered again was forgotten first", got)
	}
}
