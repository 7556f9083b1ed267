package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// process is one controller binary running in its own process group, logging to a file.
type process struct {
	name    string
	logPath string
	health  string // host:port of its health endpoint
	cmd     *exec.Cmd
	exited  chan struct{} // closed once Wait returns
	waitErr error
	stopped atomic.Bool // set by stop, so an exit before it is reported as unexpected
}

// startProcess runs bin with args and extra environment in its own process group, output to logPath.
func startProcess(name, bin, logPath, health string, args, env []string, logf func(string, ...any)) (*process, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s binary: %w (hack/flux-assets.sh builds it)", name, err)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	// The child holds its own copy of the descriptor.
	defer func() { _ = logFile.Close() }()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Own process group: a terminal's Ctrl-C reaches only us and Stop signals the whole group. Pdeathsig kills
	// the controller should this process die without running Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, logPath: logPath, health: health, cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
		if !p.stopped.Load() {
			logf("stack: %s exited unexpectedly: %v\n%s", name, p.waitErr, tailFile(logPath, 20))
		}
	}()
	return p, nil
}

// waitReady polls the health endpoint's /readyz until it answers 200, the process exits or ctx ends.
func (p *process) waitReady(ctx context.Context) error {
	url := "http://" + p.health + "/readyz"
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if resp, err := http.Get(url); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited during start: %v\n%s", p.name, p.waitErr, tailFile(p.logPath, 30))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w\n%s", p.name, ctx.Err(), tailFile(p.logPath, 30))
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM to the process group, SIGKILL after grace, and waits for the process to be reaped.
func (p *process) stop(grace time.Duration) error {
	p.stopped.Store(true)
	select {
	case <-p.exited:
		return nil // exited on its own; that was logged when it happened
	default:
	}
	pgid := p.cmd.Process.Pid
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop %s: %w", p.name, err)
	}
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.exited
		return fmt.Errorf("%s ignored SIGTERM for %v and was killed\n%s", p.name, grace, tailFile(p.logPath, 20))
	}
	// Anything left in the group (the controllers start none) goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return nil
}

// freeAddrs returns n distinct 127.0.0.1 addresses with ports free at the time of the call.
func freeAddrs(n int) ([]string, error) {
	addrs := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		// Held open until all are picked so the kernel hands out distinct ports.
		defer func() { _ = ln.Close() }()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

// tailFile returns the last n lines of the file at path, or a note saying why it cannot.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)\n", err)
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n"))) + "\n"
}

// startControllers starts source-controller and kustomize-controller and waits until both are ready.
func (s *Stack) startControllers(ctx context.Context) error {
	// storage, source-controller metrics and health, kustomize-controller metrics and health.
	addrs, err := freeAddrs(5)
	if err != nil {
		return err
	}
	storage := filepath.Join(s.opts.WorkDir, "storage")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		return err
	}
	env := []string{"KUBECONFIG=" + s.kubeconfig, "RUNTIME_NAMESPACE=" + FluxNamespace}
	common := []string{"--events-addr=", "--enable-leader-election=false", "--log-encoding=json", "--log-level=info"}
	specs := []struct {
		name   string
		health string
		args   []string
	}{
		{"source-controller", addrs[2], append([]string{
			"--storage-path=" + storage,
			"--storage-addr=" + addrs[0],
			"--storage-adv-addr=" + addrs[0],
			"--metrics-addr=" + addrs[1],
			"--health-addr=" + addrs[2],
		}, common...)},
		{"kustomize-controller", addrs[4], append([]string{
			"--metrics-addr=" + addrs[3],
			"--health-addr=" + addrs[4],
			// A Kustomization created before its source has an artifact is retried after this.
			"--requeue-dependency=2s",
			"--no-remote-bases=true",
		}, common...)},
	}
	for _, sp := range specs {
		bin := filepath.Join(s.opts.FluxBinDir, sp.name)
		logPath := filepath.Join(s.opts.WorkDir, sp.name+".log")
		s.opts.Logf("stack: starting %s %s", sp.name, strings.Join(sp.args, " "))
		p, err := startProcess(sp.name, bin, logPath, sp.health, sp.args, env, s.opts.Logf)
		if err != nil {
			return err
		}
		s.procs = append(s.procs, p)
	}
	readyCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, p := range s.procs {
		if err := p.waitReady(readyCtx); err != nil {
			return err
		}
	}
	// The artifact server starts after the manager; kustomize-controller downloads from it.
	return waitListening(readyCtx, addrs[0])
}

// waitListening waits until something accepts TCP connections on addr.
func waitListening(ctx context.Context, addr string) error {
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return conn.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("artifact server on %s: %w", addr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
