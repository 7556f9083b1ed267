// Package sourceauth holds the credentials of a Flux source — read from the Secret its spec.secretRef
// names — in a form that never shows them: formatting, logging and JSON give a redacted summary, and
// Fingerprint names the material without revealing it.
//
// The keys are Flux source-controller's for a GitRepository: username and password (HTTP basic),
// bearerToken (HTTP bearer), identity and known_hosts (SSH; password then decrypts the identity),
// ca.crt or the older caFile (a CA bundle for HTTPS). Other keys are ignored.
package sourceauth

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/redact"
)

// Secret keys, as Flux names them.
const (
	KeyUsername    = "username"
	KeyPassword    = "password"
	KeyBearerToken = "bearerToken"
	KeyIdentity    = "identity"
	KeyKnownHosts  = "known_hosts"
	KeyCACert      = "ca.crt"
	KeyCAFile      = "caFile" // older name; ca.crt wins when both are set
)

// ErrInvalid is wrapped by every error FromSecretData returns. The errors name keys, never values.
var ErrInvalid = errors.New("invalid source secret")

// Auth is the credential material for one source. The zero Auth is anonymous access.
//
// Which fields apply depends on the URL: HTTP(S) uses BearerToken when set, else Username and
// Password, and CAFile; SSH uses SSHIdentity (decrypted with Password when encrypted) and
// SSHKnownHosts.
type Auth struct {
	Username, Password, BearerToken string
	// SSHIdentity is a PEM private key; SSHKnownHosts is in OpenSSH known_hosts format.
	SSHIdentity, SSHKnownHosts []byte
	// CAFile is a PEM bundle of certificate authorities trusted besides the system's.
	CAFile []byte
}

// FromSecretData maps a Secret's data to Auth and checks that it is usable: an identity needs
// known_hosts and must parse (with password as its passphrase when encrypted); a password needs a
// username unless it is an identity's passphrase; known_hosts and a CA bundle must hold at least one
// entry. Unknown keys are ignored. Empty data is anonymous access. The password, the token and the lines
// of the identity are registered with redact.Secret, valid or not, so they are masked wherever they appear.
func FromSecretData(data map[string][]byte) (Auth, error) {
	for _, key := range []string{KeyPassword, KeyBearerToken, KeyIdentity} {
		redact.Secret(string(data[key]))
	}
	a := Auth{
		Username:      string(data[KeyUsername]),
		Password:      string(data[KeyPassword]),
		BearerToken:   string(data[KeyBearerToken]),
		SSHIdentity:   clone(data[KeyIdentity]),
		SSHKnownHosts: clone(data[KeyKnownHosts]),
		CAFile:        clone(data[KeyCACert]),
	}
	if len(a.CAFile) == 0 {
		a.CAFile = clone(data[KeyCAFile])
	}
	if err := a.Validate(); err != nil {
		return Auth{}, err
	}
	return a, nil
}

// Validate checks a as FromSecretData does.
func (a Auth) Validate() error {
	if len(a.SSHIdentity) > 0 {
		if len(a.SSHKnownHosts) == 0 {
			return fmt.Errorf("%w: %q needs %q: the server's host key cannot be verified", ErrInvalid, KeyIdentity, KeyKnownHosts)
		}
		if _, err := a.SSHSigner(); err != nil {
			return err
		}
	}
	if a.Password != "" && a.Username == "" && len(a.SSHIdentity) == 0 {
		return fmt.Errorf("%w: %q needs %q", ErrInvalid, KeyPassword, KeyUsername)
	}
	if len(a.SSHKnownHosts) > 0 && !hasKnownHost(a.SSHKnownHosts) {
		return fmt.Errorf("%w: %q holds no host key", ErrInvalid, KeyKnownHosts)
	}
	if len(a.CAFile) > 0 && !x509.NewCertPool().AppendCertsFromPEM(a.CAFile) {
		return fmt.Errorf("%w: %q holds no PEM certificate", ErrInvalid, KeyCACert)
	}
	return nil
}

// SSHSigner parses SSHIdentity, decrypting it with Password when it is encrypted. Its errors say what
// is wrong in general terms and never quote the key.
func (a Auth) SSHSigner() (ssh.Signer, error) {
	if len(a.SSHIdentity) == 0 {
		return nil, fmt.Errorf("%w: no %q", ErrInvalid, KeyIdentity)
	}
	signer, err := ssh.ParsePrivateKey(a.SSHIdentity)
	var missing *ssh.PassphraseMissingError
	switch {
	case err == nil:
		return signer, nil
	case errors.As(err, &missing) && a.Password == "":
		return nil, fmt.Errorf("%w: %q is encrypted and there is no %q to decrypt it", ErrInvalid, KeyIdentity, KeyPassword)
	case errors.As(err, &missing):
		if signer, err = ssh.ParsePrivateKeyWithPassphrase(a.SSHIdentity, []byte(a.Password)); err == nil {
			return signer, nil
		}
		return nil, fmt.Errorf("%w: %q cannot be decrypted with %q", ErrInvalid, KeyIdentity, KeyPassword)
	default:
		return nil, fmt.Errorf("%w: %q is not a PEM private key in a supported format", ErrInvalid, KeyIdentity)
	}
}

// hasKnownHost reports whether data holds at least one parsable known_hosts line.
func hasKnownHost(data []byte) bool {
	_, _, _, _, _, err := ssh.ParseKnownHosts(data)
	return err == nil
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// Empty reports whether a holds no material: anonymous access.
func (a Auth) Empty() bool {
	return a.Username == "" && a.Password == "" && a.BearerToken == "" &&
		len(a.SSHIdentity) == 0 && len(a.SSHKnownHosts) == 0 && len(a.CAFile) == 0
}

// Fingerprint names the material: equal for equal Auths, different when any field differs, "" when
// a is Empty. It is a SHA-256 over every field, length-prefixed, so it can key caches and shared
// work without holding the material. It is not meant to be published: a weak password can be
// guessed from it offline.
func (a Auth) Fingerprint() string {
	if a.Empty() {
		return ""
	}
	h := sha256.New()
	h.Write([]byte("flux-commit-tracker/sourceauth v1\x00"))
	for _, field := range [][]byte{
		[]byte(a.Username), []byte(a.Password), []byte(a.BearerToken), a.SSHIdentity, a.SSHKnownHosts, a.CAFile,
	} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(field)))
		h.Write(n[:])
		h.Write(field)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Kinds names the material a holds, in a fixed order: basic, bearer, ssh, known_hosts, ca; or
// anonymous. It is what String and LogValue show.
func (a Auth) Kinds() []string {
	var kinds []string
	if a.Username != "" || a.Password != "" {
		kinds = append(kinds, "basic")
	}
	if a.BearerToken != "" {
		kinds = append(kinds, "bearer")
	}
	if len(a.SSHIdentity) > 0 {
		kinds = append(kinds, "ssh")
	}
	if len(a.SSHKnownHosts) > 0 {
		kinds = append(kinds, "known_hosts")
	}
	if len(a.CAFile) > 0 {
		kinds = append(kinds, "ca")
	}
	if len(kinds) == 0 {
		kinds = append(kinds, "anonymous")
	}
	return kinds
}

// String returns a summary of the kinds of material, never the material.
func (a Auth) String() string {
	return "sourceauth.Auth{" + strings.Join(a.Kinds(), ",") + "; redacted}"
}

// GoString is String: %#v shows no material either.
func (a Auth) GoString() string { return a.String() }

// Format prints String for every verb, so no verb (%d, %x, %+v…) reaches the fields.
func (a Auth) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		_, _ = fmt.Fprintf(f, "%q", a.String())
		return
	}
	_, _ = f.Write([]byte(a.String()))
}

// LogValue logs the kinds of material and a redaction marker.
func (a Auth) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kinds", strings.Join(a.Kinds(), ",")), slog.Bool("redacted", true))
}

// MarshalJSON encodes String, so a struct holding an Auth cannot leak it through JSON.
func (a Auth) MarshalJSON() ([]byte, error) {
	return json.Marshal(a.String())
}
