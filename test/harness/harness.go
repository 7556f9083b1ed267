// Package harness runs the tracker binary as its own process against a test apiserver and reads back what it
// did (its JSON log, its /metrics, its ledger), for the fault and scale suites.
package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
)

// Build compiles the tracker binary into dir and returns its path.
func Build(dir string) (string, error) {
	binary := filepath.Join(dir, "flux-commit-tracker")
	build := exec.Command("go", "build", "-o", binary, "github.com/flux-commit-tracker/flux-commit-tracker/cmd/flux-commit-tracker")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build tracker: %w", err)
	}
	return binary, nil
}

// Tracker is one flux-commit-tracker process, logging JSON to its own file.
type Tracker struct {
	t           testing.TB
	Name        string
	LogPath     string
	MetricsAddr string
	HealthAddr  string
	cmd         *exec.Cmd
	exited      chan struct{}
}

// Start runs binary with args (plus --metrics-addr, --health-addr and JSON logs) and env added to the
// environment; the process is killed when the test ends.
func Start(t testing.TB, binary, name string, args, env []string) *Tracker {
	t.Helper()
	addrs := FreeAddrs(t, 2)
	dir := t.TempDir()
	tr := &Tracker{t: t, Name: name, LogPath: filepath.Join(dir, "tracker.log"), MetricsAddr: addrs[0], HealthAddr: addrs[1],
		exited: make(chan struct{})}
	args = append(append([]string{}, args...), "--metrics-addr", tr.MetricsAddr, "--health-addr", tr.HealthAddr,
		"--telemetry-mode", "stdout-logs")
	logFile, err := os.Create(tr.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = logFile.Close() }()
	tr.cmd = exec.Command(binary, args...)
	tr.cmd.Env = append(append(os.Environ(), "KUBECONFIG="), env...)
	tr.cmd.Stdout, tr.cmd.Stderr = logFile, logFile
	tr.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := tr.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = tr.cmd.Wait(); close(tr.exited) }()
	t.Cleanup(tr.Kill)
	return tr
}

// WaitReady waits for /readyz; a standby replica under leader election is ready too.
func (tr *Tracker) WaitReady(timeout time.Duration) {
	tr.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !tr.Running() {
			tr.t.Fatalf("%s exited during start:\n%s", tr.Name, Tail(tr.LogPath))
		}
		if resp, err := http.Get("http://" + tr.HealthAddr + "/readyz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	tr.t.Fatalf("%s not ready:\n%s", tr.Name, Tail(tr.LogPath))
}

// Kill sends SIGKILL: no shutdown, no flush, as a node failure or an OOM kill.
func (tr *Tracker) Kill() {
	_ = syscall.Kill(-tr.cmd.Process.Pid, syscall.SIGKILL)
	<-tr.exited
}

// Signal sends sig to the process group.
func (tr *Tracker) Signal(sig syscall.Signal) { _ = syscall.Kill(-tr.cmd.Process.Pid, sig) }

// Running reports whether the process has not exited.
func (tr *Tracker) Running() bool {
	select {
	case <-tr.exited:
		return false
	default:
		return true
	}
}

// Pid is the process's id.
func (tr *Tracker) Pid() int { return tr.cmd.Process.Pid }

// Scrape returns the body of the tracker's /metrics in the Prometheus text format.
func (tr *Tracker) Scrape(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+tr.MetricsAddr+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("scrape %s: %w", tr.Name, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("scrape %s: status %d: %w", tr.Name, resp.StatusCode, err)
	}
	return string(b), nil
}

// Applied is one "commit applied" log line.
type Applied struct {
	Time             time.Time `json:"time"`
	Namespace        string    `json:"namespace"`
	Name             string    `json:"name"`
	Commit           string    `json:"commit"`
	ReconcileSeconds float64   `json:"reconcile_seconds"`
}

// Recorded reads every "commit applied" line the tracker logged.
func (tr *Tracker) Recorded() ([]Applied, error) {
	f, err := os.Open(tr.LogPath)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	var out []Applied
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg string `json:"msg"`
			Applied
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "commit applied" {
			out = append(out, line.Applied)
		}
	}
	return out, sc.Err()
}

// Ledger reads the tracker's ledger in namespace as the tracker would, keyed by object UID.
func Ledger(ctx context.Context, c client.Client, namespace string) (map[string]ledger.Entry, error) {
	l, err := ledger.NewConfigMaps(ledger.ConfigMapsOptions{Client: c, Namespace: namespace})
	if err != nil {
		return nil, err
	}
	if err := l.Load(ctx); err != nil {
		return nil, err
	}
	return l.Entries(), nil
}

// FreeAddrs returns n loopback addresses free at the time of the call.
func FreeAddrs(t testing.TB, n int) []string {
	t.Helper()
	var out []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	for _, ln := range lns {
		_ = ln.Close()
	}
	return out
}

// Tail returns the last lines of a log, for failure messages.
func Tail(path string) string {
	const n = 30
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
