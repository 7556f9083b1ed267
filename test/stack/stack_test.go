package stack_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flux-commit-tracker/flux-commit-tracker/test/stack"
)

// TestStack pushes two commits through real Flux controllers and checks each is applied, then that Stop leaves no
// process or directory behind.
func TestStack(t *testing.T) {
	requireFlux(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	begin := time.Now()
	// A 1m interval: every apply below comes from RequestReconcile, not from polling.
	s, err := stack.Start(ctx, stack.Options{Interval: time.Minute, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	t.Logf("stack started in %v", time.Since(begin).Round(time.Millisecond))

	c := s.Client()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	repo, err := s.NewRepo("manifests")
	if err != nil {
		t.Fatal(err)
	}
	manifest := func(version string) map[string]string {
		return map[string]string{"app/configmap.yaml": stack.ConfigMapManifest("apps", "app", map[string]string{"version": version})}
	}
	committed := time.Now().Add(-time.Minute).Truncate(time.Second)
	sha1, err := repo.Commit("first", manifest("1"), committed)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateGitRepository(ctx, "apps", "manifests", repo.URL()); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateKustomization(ctx, "apps", "app", "manifests", "./app"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WaitApplied(ctx, "apps", "app", sha1); err != nil {
		t.Fatal(err)
	}
	assertVersion(ctx, t, c, "1")
	t.Logf("first commit applied %v after Start was called", time.Since(begin).Round(time.Millisecond))

	sha2, err := repo.Commit("second", manifest("2"), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	pushed := time.Now()
	if err := s.RequestReconcile(ctx, "apps", "manifests"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WaitApplied(ctx, "apps", "app", sha2); err != nil {
		t.Fatal(err)
	}
	assertVersion(ctx, t, c, "2")
	t.Logf("second commit applied %v after push + requestedAt", time.Since(pushed).Round(time.Millisecond))
	if head, err := repo.Head(); err != nil || head != sha2 {
		t.Errorf("Head() = %q, %v; want %q", head, err, sha2)
	}
	var cm corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: "apps", Name: "app"}, &cm); err != nil {
		t.Fatal(err)
	}

	pids, workDir := s.PIDs(), s.WorkDir()
	if len(pids) != 2 {
		t.Fatalf("PIDs() = %v, want the two controllers", pids)
	}
	stopped := time.Now()
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("stopped in %v", time.Since(stopped).Round(time.Millisecond))
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	assertGone(t, pids, workDir)
}

// TestStackStopsWhenContextEnds is Ctrl-C in `make demo`: cancelling Start's context stops the stack.
func TestStackStopsWhenContextEnds(t *testing.T) {
	requireFlux(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	s, err := stack.Start(ctx, stack.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	pids, workDir := s.PIDs(), s.WorkDir()
	cancel()
	// Stop waits for the stop the cancellation began and returns its result.
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	assertGone(t, pids, workDir)
}

// TestStartFailureCleansUp checks a Start that fails part-way (no controller binaries) stops envtest and removes
// its work dir.
func TestStartFailureCleansUp(t *testing.T) {
	requireFlux(t)
	parent := t.TempDir()
	t.Setenv("TMPDIR", parent)
	_, err := stack.Start(t.Context(), stack.Options{FluxBinDir: t.TempDir(), Logf: t.Logf})
	if err == nil || !strings.Contains(err.Error(), "hack/flux-assets.sh") {
		t.Fatalf("Start with no controller binaries: %v, want an error naming hack/flux-assets.sh", err)
	}
	assertGone(t, nil, "")
	if left, _ := filepath.Glob(filepath.Join(parent, "fct-stack-*")); len(left) > 0 {
		t.Errorf("work dir left after a failed Start: %v", left)
	}
}

func requireFlux(t *testing.T) {
	t.Helper()
	if os.Getenv("FLUX_BIN_DIR") == "" {
		t.Skip("FLUX_BIN_DIR is not set: it is the folder `bash hack/flux-assets.sh` prints, holding source-controller " +
			"and kustomize-controller built from the Go module proxy (about 5 min the first time)")
	}
}

// assertGone checks that the controller pids, every child process of this test binary and workDir are gone.
func assertGone(t *testing.T, pids []int, workDir string) {
	t.Helper()
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("controller pid %d still exists after Stop (kill 0: %v)", pid, err)
		}
	}
	if children := childProcesses(t); len(children) > 0 {
		t.Errorf("child processes left after Stop: %v", children)
	}
	if workDir == "" {
		return
	}
	if _, err := os.Stat(workDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("work dir %s still there after Stop (stat: %v)", workDir, err)
	}
}

func assertVersion(ctx context.Context, t *testing.T, c client.Client, want string) {
	t.Helper()
	var cm corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: "apps", Name: "app"}, &cm); err != nil {
		t.Fatal(err)
	}
	if got := cm.Data["version"]; got != want {
		t.Errorf("ConfigMap apps/app version = %q, want %q", got, want)
	}
}

// childProcesses lists the processes (as "pid command") whose parent is this test binary: etcd, kube-apiserver,
// the controllers and git all are while the stack runs.
func childProcesses(t *testing.T) []string {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	self := strconv.Itoa(os.Getpid())
	var out []string
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces, so split after the last ')'.
		s := string(b)
		end := strings.LastIndexByte(s, ')')
		if end < 0 {
			continue
		}
		fields := strings.Fields(s[end+1:])
		if len(fields) > 1 && fields[1] == self {
			out = append(out, s[:end+1])
		}
	}
	return out
}
