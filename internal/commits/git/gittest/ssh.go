package gittest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHServer serves the repositories under one root over SSH on 127.0.0.1, as git hosts do: clients
// authenticate with a public key the server was told to accept, and an exec request for
// git-upload-pack '<path>' runs `git upload-pack` on root/<path> with the channel as its stdin and
// stdout. It presents an ed25519 host key of its own; KnownHosts gives the line that trusts it.
type SSHServer struct {
	t       testing.TB
	root    string
	ln      net.Listener
	hostKey ssh.Signer
	config  *ssh.ServerConfig

	mu         sync.Mutex
	authorized [][]byte // marshaled public keys
	conns      map[net.Conn]bool
	closed     bool
	wg         sync.WaitGroup

	handshakes   atomic.Int64
	authFailures atomic.Int64
	uploadPacks  atomic.Int64
}

// NewSSHServer serves every repository under root (bare name.git or a work tree name/.git) at
// URL(name) until the test ends, accepting the authorized keys (more with Authorize). It skips the
// test when git is not installed.
func NewSSHServer(t testing.TB, root string, authorized ...ssh.PublicKey) *SSHServer {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &SSHServer{t: t, root: root, ln: ln, hostKey: hostKey, conns: map[net.Conn]bool{}}
	for _, k := range authorized {
		s.Authorize(k)
	}
	s.config = &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if s.isAuthorized(key) {
				return nil, nil
			}
			return nil, errors.New("key not authorized")
		},
	}
	s.config.AddHostKey(hostKey)
	s.wg.Go(s.accept)
	t.Cleanup(s.close)
	return s
}

// Authorize makes the server accept key.
func (s *SSHServer) Authorize(key ssh.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authorized = append(s.authorized, key.Marshal())
}

func (s *SSHServer) isAuthorized(key ssh.PublicKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.authorized {
		if bytes.Equal(k, key.Marshal()) {
			return true
		}
	}
	return false
}

// Addr returns the server's host:port.
func (s *SSHServer) Addr() string { return s.ln.Addr().String() }

// URL returns the clone URL of the repository at root/name: ssh://git@127.0.0.1:port/name.
func (s *SSHServer) URL(name string) string {
	return "ssh://git@" + s.Addr() + "/" + strings.TrimPrefix(name, "/")
}

// KnownHosts returns the known_hosts line that trusts the server's host key at its address.
func (s *SSHServer) KnownHosts() []byte {
	return []byte(knownhosts.Line([]string{knownhosts.Normalize(s.Addr())}, s.hostKey.PublicKey()) + "\n")
}

// Handshakes counts connections whose SSH handshake (host key and client authentication) succeeded.
func (s *SSHServer) Handshakes() int64 { return s.handshakes.Load() }

// AuthFailures counts connections that ended before a completed handshake: refused keys, and
// clients that rejected the host key.
func (s *SSHServer) AuthFailures() int64 { return s.authFailures.Load() }

// UploadPacks counts git-upload-pack runs: one per fetch.
func (s *SSHServer) UploadPacks() int64 { return s.uploadPacks.Load() }

// NewSSHKey returns a new ed25519 private key in OpenSSH PEM form, encrypted with passphrase unless it
// is empty, and its public key.
func NewSSHKey(t testing.TB, passphrase string) (privatePEM []byte, public ssh.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "gittest")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "gittest", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	public, err = ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block), public
}

func (s *SSHServer) accept() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = conn.Close()
			return
		}
		s.conns[conn] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serve(conn)
			s.mu.Lock()
			delete(s.conns, conn)
			s.mu.Unlock()
		}()
	}
}

func (s *SSHServer) serve(conn net.Conn) {
	defer func() { _ = conn.Close() }()
	sconn, chans, reqs, err := ssh.NewServerConn(conn, s.config)
	if err != nil {
		s.authFailures.Add(1)
		return
	}
	defer func() { _ = sconn.Close() }()
	s.handshakes.Add(1)
	go ssh.DiscardRequests(reqs)
	var sessions sync.WaitGroup
	defer sessions.Wait()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only session channels")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			continue
		}
		sessions.Go(func() { s.session(ch, chReqs) })
	}
}

// session runs the first exec request of a channel and ends the channel with its exit status.
func (s *SSHServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer func() { _ = ch.Close() }()
	for req := range reqs {
		switch req.Type {
		case "env":
			_ = req.Reply(true, nil) // git may send GIT_PROTOCOL; upload-pack speaks v0 without it
		case "exec":
			var payload struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
				_ = req.Reply(false, nil)
				return
			}
			_ = req.Reply(true, nil)
			status := s.exec(ch, payload.Command)
			_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
			go ssh.DiscardRequests(reqs)
			return
		default:
			_ = req.Reply(false, nil)
		}
	}
}

// exec runs git-upload-pack '<path>' with the channel as its stdin and stdout and returns its exit status.
func (s *SSHServer) exec(ch ssh.Channel, command string) uint32 {
	dir, err := s.repoDir(command)
	if err != nil {
		_, _ = fmt.Fprintf(ch.Stderr(), "gittest: %v\n", err)
		return 128
	}
	s.uploadPacks.Add(1)
	cmd := exec.Command("git", "upload-pack", dir)
	cmd.Env = append(cmd.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 128
	}
	if err := cmd.Start(); err != nil {
		_, _ = fmt.Fprintf(ch.Stderr(), "gittest: %v\n", err)
		return 128
	}
	// Not waited for: it ends when the client closes its side, or when the channel is closed.
	go func() {
		_, _ = io.Copy(stdin, ch)
		_ = stdin.Close()
	}()
	if err := cmd.Wait(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return uint32(exit.ExitCode())
		}
		return 128
	}
	return 0
}

// repoDir maps "git-upload-pack '/name'" (or "git upload-pack …") to root/name.
func (s *SSHServer) repoDir(command string) (string, error) {
	arg, ok := strings.CutPrefix(command, "git-upload-pack ")
	if !ok {
		if arg, ok = strings.CutPrefix(command, "git upload-pack "); !ok {
			return "", fmt.Errorf("only git-upload-pack is served, not %q", command)
		}
	}
	arg = strings.TrimSpace(arg)
	if len(arg) >= 2 && arg[0] == '\'' && arg[len(arg)-1] == '\'' {
		arg = strings.ReplaceAll(arg[1:len(arg)-1], `'\''`, `'`)
	}
	clean := path.Clean("/" + strings.TrimPrefix(arg, "~/"))
	if clean == "/" {
		return "", fmt.Errorf("no repository in %q", command)
	}
	return filepath.Join(s.root, filepath.FromSlash(clean)), nil
}

func (s *SSHServer) close() {
	s.mu.Lock()
	s.closed = true
	_ = s.ln.Close()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
