package sourceauth_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/sourceauth"
)

const (
	password   = "hunter2-password"
	token      = "token-0123456789abcdef"
	passphrase = "key-passphrase-42"
	knownHosts = "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
)

func sshKey(t *testing.T, passphrase string) []byte {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

func caCert(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestFromSecretData(t *testing.T) {
	identity, encrypted, ca := sshKey(t, ""), sshKey(t, passphrase), caCert(t)
	otherCA := caCert(t)
	for _, tc := range []struct {
		name    string
		data    map[string][]byte
		want    sourceauth.Auth
		wantErr string // a substring; "" wants no error
	}{
		{name: "no data is anonymous", data: nil, want: sourceauth.Auth{}},
		{name: "only unknown keys is anonymous", data: map[string][]byte{"identity.pub": []byte("ssh-ed25519 AAAA"), "other": []byte("x")}},
		{
			name: "basic",
			data: map[string][]byte{"username": []byte("bot"), "password": []byte(password)},
			want: sourceauth.Auth{Username: "bot", Password: password},
		},
		{name: "username alone", data: map[string][]byte{"username": []byte("bot")}, want: sourceauth.Auth{Username: "bot"}},
		{name: "bearer", data: map[string][]byte{"bearerToken": []byte(token)}, want: sourceauth.Auth{BearerToken: token}},
		{
			name: "bearer beside basic keeps both (bearer wins over HTTP)",
			data: map[string][]byte{"bearerToken": []byte(token), "username": []byte("bot"), "password": []byte(password)},
			want: sourceauth.Auth{BearerToken: token, Username: "bot", Password: password},
		},
		{
			name: "ssh",
			data: map[string][]byte{"identity": identity, "identity.pub": []byte("ssh-ed25519 AAAA"), "known_hosts": []byte(knownHosts)},
			want: sourceauth.Auth{SSHIdentity: identity, SSHKnownHosts: []byte(knownHosts)},
		},
		{
			name: "encrypted identity with its passphrase as password",
			data: map[string][]byte{"identity": encrypted, "known_hosts": []byte(knownHosts), "password": []byte(passphrase)},
			want: sourceauth.Auth{SSHIdentity: encrypted, SSHKnownHosts: []byte(knownHosts), Password: passphrase},
		},
		{name: "ca.crt", data: map[string][]byte{"ca.crt": ca}, want: sourceauth.Auth{CAFile: ca}},
		{name: "caFile", data: map[string][]byte{"caFile": ca}, want: sourceauth.Auth{CAFile: ca}},
		{name: "ca.crt wins over caFile", data: map[string][]byte{"ca.crt": ca, "caFile": otherCA}, want: sourceauth.Auth{CAFile: ca}},
		{name: "empty ca.crt falls back to caFile", data: map[string][]byte{"ca.crt": {}, "caFile": ca}, want: sourceauth.Auth{CAFile: ca}},

		{name: "identity without known_hosts", data: map[string][]byte{"identity": identity}, wantErr: `"identity" needs "known_hosts"`},
		{name: "password without username", data: map[string][]byte{"password": []byte(password)}, wantErr: `"password" needs "username"`},
		{name: "bearer does not excuse a lone password", data: map[string][]byte{"bearerToken": []byte(token), "password": []byte(password)}, wantErr: `"password" needs "username"`},
		{
			name:    "identity that is not a key",
			data:    map[string][]byte{"identity": []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbCBob25lc3Q=\n-----END OPENSSH PRIVATE KEY-----\n"), "known_hosts": []byte(knownHosts)},
			wantErr: `"identity" is not a PEM private key`,
		},
		{name: "encrypted identity without password", data: map[string][]byte{"identity": encrypted, "known_hosts": []byte(knownHosts)}, wantErr: "is encrypted"},
		{
			name:    "encrypted identity with the wrong password",
			data:    map[string][]byte{"identity": encrypted, "known_hosts": []byte(knownHosts), "password": []byte(password)},
			wantErr: "cannot be decrypted",
		},
		{name: "known_hosts without a host key", data: map[string][]byte{"identity": identity, "known_hosts": []byte("# nothing\n")}, wantErr: `"known_hosts" holds no host key`},
		{name: "ca that is not PEM", data: map[string][]byte{"ca.crt": []byte("not a certificate " + password)}, wantErr: "holds no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sourceauth.FromSecretData(tc.data)
			if tc.wantErr != "" {
				if err == nil || !errors.Is(err, sourceauth.ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an ErrInvalid containing %q", err, tc.wantErr)
				}
				assertNoSecret(t, err.Error(), tc.data)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Username != tc.want.Username || got.Password != tc.want.Password || got.BearerToken != tc.want.BearerToken ||
				!bytes.Equal(got.SSHIdentity, tc.want.SSHIdentity) || !bytes.Equal(got.SSHKnownHosts, tc.want.SSHKnownHosts) ||
				!bytes.Equal(got.CAFile, tc.want.CAFile) {
				t.Fatalf("got %#v fields %q %q %q, want %q %q %q", got, got.Username, got.Password, got.BearerToken,
					tc.want.Username, tc.want.Password, tc.want.BearerToken)
			}
			if got.Empty() != tc.want.Empty() {
				t.Fatalf("Empty() = %t", got.Empty())
			}
		})
	}
}

func TestFromSecretDataCopies(t *testing.T) {
	identity := sshKey(t, "")
	data := map[string][]byte{"identity": identity, "known_hosts": []byte(knownHosts)}
	a, err := sourceauth.FromSecretData(data)
	if err != nil {
		t.Fatal(err)
	}
	before := a.Fingerprint()
	for i := range identity {
		identity[i] = 0
	}
	if a.Fingerprint() != before {
		t.Fatal("Auth shares the secret's bytes")
	}
}

// assertNoSecret fails when s contains any secret value of data (anything but the public identity.pub).
func assertNoSecret(t *testing.T, s string, data map[string][]byte) {
	t.Helper()
	for key, v := range data {
		if key == "identity.pub" || key == "known_hosts" || key == "username" {
			continue
		}
		for line := range strings.Lines(string(v)) {
			line = strings.TrimSpace(line)
			if len(line) >= 6 && !strings.HasPrefix(line, "-----") && strings.Contains(s, line) {
				t.Fatalf("%q shows %s", s, key)
			}
		}
	}
}

func TestEmptyAndFingerprint(t *testing.T) {
	identity, ca := sshKey(t, ""), caCert(t)
	base := sourceauth.Auth{Username: "bot", Password: password}
	variants := []sourceauth.Auth{
		{},
		{Username: "bot"},
		{Username: "bo", Password: "t" + password}, // same bytes, other boundary
		base,
		{Username: "bot", Password: password + "x"},
		{BearerToken: token},
		{Password: token}, // same bytes in another field
		{SSHIdentity: identity, SSHKnownHosts: []byte(knownHosts)},
		{SSHIdentity: identity, SSHKnownHosts: []byte(knownHosts + knownHosts)},
		{CAFile: ca},
		{Username: "bot", Password: password, CAFile: ca},
	}
	seen := map[string]int{}
	for i, a := range variants {
		fp := a.Fingerprint()
		if a.Empty() != (i == 0) {
			t.Fatalf("variant %d: Empty() = %t", i, a.Empty())
		}
		if i == 0 {
			if fp != "" {
				t.Fatalf("anonymous fingerprint %q, want empty", fp)
			}
			continue
		}
		if !strings.HasPrefix(fp, "sha256:") || len(fp) != len("sha256:")+64 {
			t.Fatalf("variant %d: fingerprint %q", i, fp)
		}
		if j, dup := seen[fp]; dup {
			t.Fatalf("variants %d and %d share fingerprint %s", j, i, fp)
		}
		seen[fp] = i
		if strings.Contains(fp, password) || strings.Contains(fp, token) {
			t.Fatalf("fingerprint shows material: %s", fp)
		}
	}
	again := sourceauth.Auth{Username: "bot", Password: password}
	if again.Fingerprint() != base.Fingerprint() {
		t.Fatal("equal Auths have different fingerprints")
	}
}

func TestNoMaterialWhenPrinted(t *testing.T) {
	identity := sshKey(t, "")
	a := sourceauth.Auth{
		Username: "bot", Password: password, BearerToken: token,
		SSHIdentity: identity, SSHKnownHosts: []byte(knownHosts), CAFile: caCert(t),
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("source", "auth", a)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("source", "auth", a, "ptr", &a)
	doc, err := json.Marshal(struct{ Auth sourceauth.Auth }{a})
	if err != nil {
		t.Fatal(err)
	}
	outputs := []string{a.String(), a.GoString(), logs.String(), string(doc), fmt.Sprint(a), fmt.Sprint(&a), fmt.Sprint([]sourceauth.Auth{a})}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
		outputs = append(outputs, fmt.Sprintf(verb, a), fmt.Sprintf(verb, struct{ A sourceauth.Auth }{a}))
	}
	secretLines := []string{password, token, fmt.Sprintf("%x", password), fmt.Sprintf("%x", token)}
	for line := range strings.Lines(string(identity)) {
		if line = strings.TrimSpace(line); !strings.HasPrefix(line, "-----") && len(line) > 8 {
			secretLines = append(secretLines, line)
		}
	}
	for _, out := range outputs {
		for _, s := range secretLines {
			if strings.Contains(out, s) {
				t.Fatalf("%q shows secret material", out)
			}
		}
	}
	if want := "sourceauth.Auth{basic,bearer,ssh,known_hosts,ca; redacted}"; a.String() != want {
		t.Fatalf("String() = %q, want %q", a.String(), want)
	}
	if !strings.Contains(logs.String(), `"kinds":"basic,bearer,ssh,known_hosts,ca"`) {
		t.Fatalf("log lacks the kinds: %s", logs.String())
	}
	if got := (sourceauth.Auth{}).String(); got != "sourceauth.Auth{anonymous; redacted}" {
		t.Fatalf("anonymous String() = %q", got)
	}
}
