package faults_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

var (
	restartMu sync.Mutex
	restarted *exec.Cmd // the kube-apiserver this suite started in place of envtest's, killed at the end
)

// restartAPIServer kills kube-apiserver with SIGKILL and starts it again with the same arguments (same
// certificates, port and etcd), then waits until it answers /readyz.
func restartAPIServer(t *testing.T) {
	t.Helper()
	restartMu.Lock()
	defer restartMu.Unlock()
	pid, args := apiserverProcess(t)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	if restarted != nil {
		_ = restarted.Wait()
	} else {
		waitGone(pid)
	}
	time.Sleep(2 * time.Second) // down for a while, as a rolling control-plane restart
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("restart kube-apiserver: %v", err)
	}
	restarted = cmd
	// Back means serving the API to an authenticated client, not only answering on its port.
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var list corev1.NamespaceList
		err := env.Client.List(ctx, &list)
		cancel()
		if err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("kube-apiserver did not come back")
}

// apiserverProcess finds this test process's kube-apiserver child and its command line.
func apiserverProcess(t *testing.T) (int, []string) {
	t.Helper()
	if restarted != nil {
		return restarted.Process.Pid, restarted.Args
	}
	self := strconv.Itoa(os.Getpid())
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 2 || fields[1] != self {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if filepath.Base(args[0]) == "kube-apiserver" {
			pid, _ := strconv.Atoi(filepath.Base(d))
			return pid, args
		}
	}
	t.Fatal("no kube-apiserver child process found")
	return 0, nil
}

func waitGone(pid int) {
	for range 100 {
		if err := syscall.Kill(pid, 0); err != nil {
			return
		}
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		time.Sleep(50 * time.Millisecond)
	}
}

// stopRestarted kills the kube-apiserver this suite started, if any.
func stopRestarted() {
	restartMu.Lock()
	defer restartMu.Unlock()
	if restarted != nil {
		_ = restarted.Process.Kill()
		_ = restarted.Wait()
	}
}
