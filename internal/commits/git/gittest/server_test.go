package gittest_test

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/git/gittest"
)

func TestServerServesWorkTreeOverSmartHTTP(t *testing.T) {
	root := t.TempDir()
	srv := gittest.NewHTTPServer(t, root)
	repo := gittest.NewRepo(t, filepath.Join(root, "manifests"))
	first := repo.Commit("first", map[string]string{"a/b.txt": "hello"})
	second := repo.Commit("second", nil)

	clone := gittest.NewRepo(t, filepath.Join(t.TempDir(), "clone"))
	// Protocol v0, as go-git speaks it: one ref advertisement, one upload-pack POST per fetch.
	clone.Git("-c", "protocol.version=0", "fetch", "-q", srv.URL("manifests"), "main")
	if got := clone.Git("rev-parse", "FETCH_HEAD"); got != second {
		t.Fatalf("fetched %s, want %s", got, second)
	}
	if got := clone.Git("show", first+":a/b.txt"); got != "hello" {
		t.Fatalf("a/b.txt = %q", got)
	}
	if srv.InfoRefs() != 1 || srv.UploadPacks() != 1 {
		t.Fatalf("info/refs %d, upload-pack %d; want 1 and 1", srv.InfoRefs(), srv.UploadPacks())
	}

	// Commit times follow the clock, one Step apart.
	if got := repo.Git("log", "-1", "--format=%ct", first); got != "1704067200" {
		t.Fatalf("first commit time %s", got)
	}
	if got := repo.Git("log", "-1", "--format=%ct", second); got != "1704067260" {
		t.Fatalf("second commit time %s", got)
	}
}

func TestServerFailNext(t *testing.T) {
	root := t.TempDir()
	srv := gittest.NewHTTPServer(t, root)
	gittest.NewRepo(t, filepath.Join(root, "r")).Commit("c", nil)

	srv.FailNext(1, http.StatusServiceUnavailable)
	cmd := exec.Command("git", "ls-remote", srv.URL("r"))
	cmd.Env = append(cmd.Environ(), "GIT_TERMINAL_PROMPT=0")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "503") {
		t.Fatalf("want a 503 failure, got err %v: %s", err, out)
	}
	if out, err := exec.Command("git", "ls-remote", srv.URL("r")).CombinedOutput(); err != nil {
		t.Fatalf("second request should pass: %v: %s", err, out)
	}
}

func TestFastImport(t *testing.T) {
	repo := gittest.NewRepo(t, t.TempDir())
	base := repo.Commit("base", map[string]string{"keep.txt": "x"})
	start := repo.Now
	shas := repo.FastImport(300)
	if len(shas) != 300 || repo.Head() != shas[299] {
		t.Fatalf("got %d commits, head %s", len(shas), repo.Head())
	}
	if got := repo.Git("rev-parse", shas[0]+"^"); got != base {
		t.Fatalf("first generated commit's parent %s, want %s", got, base)
	}
	if got := repo.Git("log", "-1", "--format=%ct", shas[0]); got != "1704067260" || !repo.Now.Equal(start.Add(300*time.Minute)) {
		t.Fatalf("first generated commit time %s, clock %s", got, repo.Now)
	}
	// The work tree follows, so later commits build on the generated history.
	next := repo.Commit("after", nil)
	if got := repo.Git("rev-parse", next+"^"); got != shas[299] {
		t.Fatalf("parent %s", got)
	}
	if got := repo.Git("show", next+":keep.txt"); got != "x" {
		t.Fatalf("keep.txt = %q", got)
	}
}

func TestServerAuth(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      gittest.ServerOptions
		set       func(*http.Request)
		challenge string
	}{
		{"basic", gittest.ServerOptions{Username: "u", Password: "p"}, func(r *http.Request) { r.SetBasicAuth("u", "p") }, "Basic"},
		{"bearer", gittest.ServerOptions{BearerToken: "tok"}, func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok") }, "Bearer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			srv := gittest.NewServer(t, root, tc.opts)
			gittest.NewRepo(t, filepath.Join(root, "r")).Commit("c", nil)
			get := func(set func(*http.Request)) *http.Response {
				req, err := http.NewRequest(http.MethodGet, srv.URL("r")+"/info/refs?service=git-upload-pack", nil)
				if err != nil {
					t.Fatal(err)
				}
				if set != nil {
					set(req)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				_ = resp.Body.Close()
				return resp
			}
			if resp := get(nil); resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), tc.challenge) {
				t.Fatalf("anonymous: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
			wrong := func(r *http.Request) {
				r.SetBasicAuth("u", "wrong")
				r.Header.Set("Authorization", r.Header.Get("Authorization")+"x")
			}
			if resp := get(wrong); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("wrong credentials: %d", resp.StatusCode)
			}
			if resp := get(tc.set); resp.StatusCode != http.StatusOK {
				t.Fatalf("right credentials: %d", resp.StatusCode)
			}
			if srv.InfoRefs() != 3 {
				t.Fatalf("%d ref advertisements counted, want 3", srv.InfoRefs())
			}
		})
	}
}

func TestSSHServerServesUploadPack(t *testing.T) {
	root := t.TempDir()
	identity, public := gittest.NewSSHKey(t, "")
	srv := gittest.NewSSHServer(t, root, public)
	head := gittest.NewRepo(t, filepath.Join(root, "r")).Commit("c", nil)
	signer, err := ssh.ParsePrivateKey(identity)
	if err != nil {
		t.Fatal(err)
	}
	_, _, pub, _, _, err := ssh.ParseKnownHosts(srv.KnownHosts())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(srv.URL("r"), "ssh://git@127.0.0.1:") {
		t.Fatalf("URL %s", srv.URL("r"))
	}
	client, err := ssh.Dial("tcp", srv.Addr(), &ssh.ClientConfig{
		User: "git", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: ssh.FixedHostKey(pub),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Close() }()
	session, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	// The ref advertisement names HEAD; then a flush-pkt from us ends the conversation.
	session.Stdin = strings.NewReader("0000")
	out, err := session.Output("git-upload-pack '/r'")
	if err != nil {
		t.Fatalf("upload-pack: %v: %s", err, out)
	}
	if !strings.Contains(string(out), head) {
		t.Fatalf("advertisement %q does not name %s", out, head)
	}
	if srv.UploadPacks() != 1 || srv.Handshakes() != 1 {
		t.Fatalf("%d upload-packs, %d handshakes", srv.UploadPacks(), srv.Handshakes())
	}

	// A key the server was not told about is refused.
	stranger, _ := gittest.NewSSHKey(t, "")
	other, err := ssh.ParsePrivateKey(stranger)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ssh.Dial("tcp", srv.Addr(), &ssh.ClientConfig{
		User: "git", Auth: []ssh.AuthMethod{ssh.PublicKeys(other)}, HostKeyCallback: ssh.FixedHostKey(pub),
	}); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("stranger's key: %v", err)
	}
}
