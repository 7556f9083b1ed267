package git

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/redact"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/sourceauth"
)

// Errors a fetch wraps when the server or its certificate is not trusted or does not trust us. They
// are permanent: the fetch is not retried, and they are never commits.ErrNotFound.
var (
	// ErrAuthFailed reports that the server wants credentials, refused the ones given, or forbids access.
	ErrAuthFailed = errors.New("authentication failed")
	// ErrHostKey reports that an SSH server's host key is not in known_hosts or differs from it.
	ErrHostKey = errors.New("ssh host key not trusted")
	// ErrUntrustedCertificate reports that an HTTPS server's certificate does not verify.
	ErrUntrustedCertificate = errors.New("server certificate not trusted")
)

// sshTimeout bounds connecting to an SSH server and its handshake.
const sshTimeout = 30 * time.Second

// access is how one mirror is fetched for one set of credentials.
type access struct {
	// key names the fetches that may be shared: the mirror URL, then the credentials' fingerprint.
	key string
	// kind says which credentials are used, for logs and spans: anonymous, basic, bearer or ssh.
	kind     string
	method   transport.AuthMethod // nil: anonymous
	caBundle []byte
	// secrets are scrubbed from fetch errors should a server or library ever echo one.
	secrets []string
}

// newAccess prepares auth for fetches of the normalized url. HTTP(S) uses the bearer token when there
// is one, else basic credentials, and the CA bundle; SSH needs an identity and known_hosts (a host key
// is always verified); git:// and file:// take no credentials and ignore them.
func newAccess(url string, auth sourceauth.Auth, tempDir string) (*access, error) {
	if auth.Empty() {
		return &access{key: url, kind: "anonymous"}, nil
	}
	a := &access{key: url + "\x00" + auth.Fingerprint(), kind: "anonymous", secrets: secretsOf(auth)}
	for _, s := range a.secrets {
		redact.Secret(s) // should a server or library echo one anywhere, it is masked
	}
	switch {
	case strings.HasPrefix(url, "http://"), strings.HasPrefix(url, "https://"):
		if strings.HasPrefix(url, "https://") {
			a.caBundle = auth.CAFile
		}
		switch {
		case auth.BearerToken != "":
			a.kind, a.method = "bearer", &githttp.TokenAuth{Token: auth.BearerToken}
		case auth.Username != "" || auth.Password != "":
			a.kind, a.method = "basic", &githttp.BasicAuth{Username: auth.Username, Password: auth.Password}
		}
	case strings.HasPrefix(url, "ssh://"), !strings.Contains(url, "://"): // ssh:// or scp-like
		method, err := newSSHAuth(url, auth, tempDir)
		if err != nil {
			return nil, fmt.Errorf("git: credentials for %s: %w", url, err)
		}
		a.kind, a.method = "ssh", method
	}
	return a, nil
}

// secretsOf lists the strings of auth that must never appear in an error: the password, the token and
// the lines of the private key.
func secretsOf(auth sourceauth.Auth) []string {
	var out []string
	for _, s := range []string{auth.Password, auth.BearerToken} {
		if len(s) >= 4 { // shorter ones would blank out ordinary words; they are no secret anyway
			out = append(out, s)
		}
	}
	for line := range strings.Lines(string(auth.SSHIdentity)) {
		if line = strings.TrimSpace(line); len(line) >= 16 && !strings.HasPrefix(line, "-----") {
			out = append(out, line)
		}
	}
	return out
}

// redact masks a's secrets, and any URL's userinfo and query, in err's message; the chain stays for errors.Is
// and errors.As.
func (a *access) redact(err error) error { return redactAll(err, a.secrets) }

// redactAll registers secrets with redact, so they are masked wherever they turn up, and redacts err.
func redactAll(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	for _, s := range secrets {
		redact.Secret(s)
	}
	return redact.Error(err)
}

// classify wraps a failed fetch's error in ErrAuthFailed, ErrHostKey or ErrUntrustedCertificate when it
// is one, with a hint for whoever reads it.
func (a *access) classify(err error) error {
	var (
		hostKey  *hostKeyError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
	)
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired) && a.method == nil:
		return fmt.Errorf("%w: the server wants credentials and access was anonymous (credentials come from the source's secretRef, when the tracker may read it): %w", ErrAuthFailed, err)
	case errors.Is(err, transport.ErrAuthenticationRequired):
		return fmt.Errorf("%w: the server refused the %s credentials: %w", ErrAuthFailed, a.kind, err)
	case errors.Is(err, transport.ErrAuthorizationFailed):
		return fmt.Errorf("%w: access forbidden with %s credentials: %w", ErrAuthFailed, a.kind, err)
	case errors.As(err, &hostKey):
		return err // wraps ErrHostKey already
	case strings.Contains(err.Error(), "ssh: unable to authenticate"):
		return fmt.Errorf("%w: the ssh server refused the identity: %w", ErrAuthFailed, err)
	case errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify):
		return fmt.Errorf("%w (a private CA goes in the source's secret as ca.crt): %w", ErrUntrustedCertificate, err)
	}
	return err
}

// sshAuth authenticates with one private key and verifies the server against known_hosts.
type sshAuth struct {
	user     string
	signer   ssh.Signer
	hostKeys ssh.HostKeyCallback
	algos    []string
}

var _ gitssh.AuthMethod = (*sshAuth)(nil)

func (a *sshAuth) Name() string   { return gitssh.PublicKeysName }
func (a *sshAuth) String() string { return "ssh public key for user " + a.user }

func (a *sshAuth) ClientConfig() (*ssh.ClientConfig, error) {
	return &ssh.ClientConfig{
		User:              a.user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(a.signer)},
		HostKeyCallback:   a.hostKeys,
		HostKeyAlgorithms: a.algos,
		Timeout:           sshTimeout,
	}, nil
}

func newSSHAuth(url string, auth sourceauth.Auth, tempDir string) (*sshAuth, error) {
	if len(auth.SSHIdentity) == 0 || len(auth.SSHKnownHosts) == 0 {
		return nil, fmt.Errorf("%w: ssh needs %q and %q in the source's secret", sourceauth.ErrInvalid, sourceauth.KeyIdentity, sourceauth.KeyKnownHosts)
	}
	signer, err := auth.SSHSigner()
	if err != nil {
		return nil, err
	}
	ep, err := transport.NewEndpoint(url)
	if err != nil {
		return nil, fmt.Errorf("%w: endpoint", errInvalidURL)
	}
	user := ep.User
	if user == "" {
		user = "git" // what Flux and the git hosts use
	}
	port := ep.Port
	if port <= 0 {
		port = gitssh.DefaultPort
	}
	db, err := knownHosts(auth.SSHKnownHosts, tempDir)
	if err != nil {
		return nil, err
	}
	verify := db.HostKeyCallback()
	return &sshAuth{
		user:   user,
		signer: signer,
		hostKeys: func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			if err := verify(hostname, remote, key); err != nil {
				return &hostKeyError{host: hostname, err: err}
			}
			return nil
		},
		// Offer the host key types known_hosts holds for this host, so the server presents one of them.
		algos: db.HostKeyAlgorithms(net.JoinHostPort(ep.Host, strconv.Itoa(port))),
	}, nil
}

// knownHosts parses known_hosts data. The parsers read files only, so it goes through a private
// temporary file, removed before returning; host keys are public, but the file is 0600 anyway.
func knownHosts(data []byte, tempDir string) (interface {
	HostKeyCallback() ssh.HostKeyCallback
	HostKeyAlgorithms(hostWithPort string) []string
}, error) {
	f, err := os.CreateTemp(tempDir, ".known_hosts-")
	if err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	defer func() { _ = os.Remove(f.Name()) }()
	_, werr := f.Write(data)
	if err := errors.Join(werr, f.Close()); err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	db, err := gitssh.NewKnownHostsDb(f.Name())
	if err != nil {
		return nil, fmt.Errorf("%w: %q does not parse", sourceauth.ErrInvalid, sourceauth.KeyKnownHosts)
	}
	return db, nil
}

// hostKeyError is what the host key callback returns: it survives the SSH handshake's wrapping.
type hostKeyError struct {
	host string
	err  error
}

func (e *hostKeyError) Error() string {
	return fmt.Sprintf("%s: %s presented a host key that known_hosts does not hold for it: %v", ErrHostKey, e.host, e.err)
}

func (e *hostKeyError) Unwrap() []error { return []error{ErrHostKey, e.err} }
