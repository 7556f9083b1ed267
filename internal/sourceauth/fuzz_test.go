package sourceauth_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/redact"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/sourceauth"
)

// FuzzFromSecretData feeds arbitrary Secret data: FromSecretData never panics, what it accepts passes Validate,
// and neither its errors nor any printed form of the Auth hold the password or the token.
func FuzzFromSecretData(f *testing.F) {
	f.Add("bot", "hunter2-password", "", "", "", "")
	f.Add("", "", "token-0123456789abcdef", "", "", "")
	f.Add("", "key-passphrase-42", "", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n", knownHosts, "")
	f.Add("", "", "", "", "|1|bad|hash ssh-rsa AAAA\n", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	f.Add("u", "p", "t", "\x00", "\xff", "garbage")
	f.Fuzz(func(t *testing.T, username, password, bearer, identity, hosts, ca string) {
		data := map[string][]byte{}
		for k, v := range map[string]string{
			sourceauth.KeyUsername: username, sourceauth.KeyPassword: password, sourceauth.KeyBearerToken: bearer,
			sourceauth.KeyIdentity: identity, sourceauth.KeyKnownHosts: hosts, sourceauth.KeyCACert: ca,
		} {
			if v != "" {
				data[k] = []byte(v)
			}
		}
		a, err := sourceauth.FromSecretData(data)
		var shown []string
		if err != nil {
			if a.Fingerprint() != "" || !a.Empty() {
				t.Fatalf("error %v with material: %v", err, a)
			}
			shown = append(shown, err.Error())
		} else {
			if verr := a.Validate(); verr != nil {
				t.Fatalf("accepted data fails Validate: %v", verr)
			}
			if a.Password != password || a.BearerToken != bearer || a.Username != username {
				t.Fatalf("fields changed: %v", a)
			}
			js, jerr := json.Marshal(struct{ Auth sourceauth.Auth }{a})
			if jerr != nil {
				t.Fatal(jerr)
			}
			var log strings.Builder
			dropTime := func(_ []string, at slog.Attr) slog.Attr {
				if at.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return at
			}
			slog.New(slog.NewJSONHandler(&log, &slog.HandlerOptions{ReplaceAttr: dropTime})).Info("auth", "auth", a)
			shown = append(shown, a.String(), fmt.Sprintf("%v %+v %#v %x %q %d", a, a, a, a, a, a), string(js), log.String())
		}
		for _, secret := range []string{password, bearer} {
			if !secretLike(secret) {
				continue
			}
			for _, s := range shown {
				if strings.Contains(s, secret) {
					t.Fatalf("%q shows the secret %q", s, secret)
				}
			}
			// The values were registered: any text that carries them is masked.
			if got := redact.Text("x " + secret + " y"); strings.Contains(got, strings.TrimSpace(secret)) {
				t.Fatalf("secret %q not registered: %q", secret, got)
			}
		}
	})
}

// secretLike reports whether finding s in printed text is a leak, not a coincidence with that text's own
// words: the summaries, errors and log lines checked hold no digits, so a value with one cannot come from them.
func secretLike(s string) bool {
	return len(s) >= 8 && strings.TrimSpace(s) == s && !strings.ContainsAny(s, "\n\r") && strings.ContainsAny(s, "0123456789")
}

func TestFromSecretDataRegistersSecrets(t *testing.T) {
	// Registered even when the data is invalid (a password without a user name): errors elsewhere may quote it.
	for _, data := range []map[string][]byte{
		{sourceauth.KeyUsername: []byte("bot"), sourceauth.KeyBearerToken: []byte("registered-token-31337")},
		{sourceauth.KeyPassword: []byte("registered-password-4242")},
	} {
		_, _ = sourceauth.FromSecretData(data)
	}
	got := redact.Text("server echoed registered-token-31337 and registered-password-4242")
	if want := "server echoed " + redact.Mask + " and " + redact.Mask; got != want {
		t.Errorf("Text = %q, want %q", got, want)
	}
}
