// Package stack runs a local Flux pipeline for end-to-end tests and demos: etcd and kube-apiserver (envtest) with
// the Flux CRDs, a git server on 127.0.0.1, and the real source-controller and kustomize-controller binaries.
// Manifests are ConfigMaps: there is no kube-controller-manager, so nothing runs Pods.
//
// The tracker binary never links this package; the e2e suite and `make demo` do.
package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/flux-commit-tracker/flux-commit-tracker/test/testenv"
)

// FluxNamespace is the namespace the Flux controllers run "in" (RUNTIME_NAMESPACE); Start creates it.
const FluxNamespace = "flux-system"

// Options configures Start. Empty fields take the defaults named on each.
type Options struct {
	// FluxBinDir holds source-controller and kustomize-controller (hack/flux-assets.sh prints it).
	// Default: $FLUX_BIN_DIR.
	FluxBinDir string
	// KubebuilderAssets holds etcd and kube-apiserver (hack/test-assets.sh prints it). Default: $KUBEBUILDER_ASSETS.
	KubebuilderAssets string
	// CRDDir holds the Flux CRDs installed on start. Default: $FLUX_CRDS_DIR.
	CRDDir string
	// Interval is the default spec.interval of the Flux objects created through the Stack. Default: 10s.
	Interval time.Duration
	// Logf receives progress lines. Default: discard.
	Logf func(format string, args ...any)
	// WorkDir holds the kubeconfig, git repositories, artifact storage and controller logs. Default: a temporary
	// directory that Stop removes; a WorkDir given here is kept, so its logs can be read afterwards.
	WorkDir string
	// StopGrace is how long a controller gets between SIGTERM and SIGKILL on Stop. Default: 10s.
	StopGrace time.Duration
}

func (o *Options) defaults() error {
	if o.FluxBinDir == "" {
		o.FluxBinDir = os.Getenv("FLUX_BIN_DIR")
	}
	if o.KubebuilderAssets == "" {
		o.KubebuilderAssets = os.Getenv("KUBEBUILDER_ASSETS")
	}
	if o.CRDDir == "" {
		o.CRDDir = os.Getenv("FLUX_CRDS_DIR")
	}
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 10 * time.Second
	}
	var missing []error
	for _, f := range []struct{ field, env, dir, hint string }{
		{"FluxBinDir", "FLUX_BIN_DIR", o.FluxBinDir, "hack/flux-assets.sh"},
		{"KubebuilderAssets", "KUBEBUILDER_ASSETS", o.KubebuilderAssets, "hack/test-assets.sh"},
		{"CRDDir", "FLUX_CRDS_DIR", o.CRDDir, "hack/test-assets.sh"},
	} {
		if f.dir == "" {
			missing = append(missing, fmt.Errorf("%s (or $%s) is not set: %s prints it", f.field, f.env, f.hint))
		}
	}
	return errors.Join(missing...)
}

// Stack is a running local Flux pipeline. Its methods are safe for concurrent use.
type Stack struct {
	opts       Options
	ownWorkDir bool
	env        *envtest.Environment
	cfg        *rest.Config
	scheme     *runtime.Scheme
	client     client.Client
	kubeconfig string
	git        *gitServer
	procs      []*process

	stopOnce sync.Once
	stopErr  error
	stopped  chan struct{}
}

// Start brings the stack up: envtest with the Flux CRDs and the flux-system namespace, an admin kubeconfig, the
// git server, then source-controller and kustomize-controller, returning once both report ready. When ctx is
// cancelled the stack stops itself (Ctrl-C in a demo); callers still call Stop, which waits for that. On error,
// whatever had started is stopped again.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	begin := time.Now()
	s := &Stack{opts: opts, stopped: make(chan struct{})}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Stop())
		}
	}()
	if s.opts.WorkDir == "" {
		if s.opts.WorkDir, err = os.MkdirTemp("", "fct-stack-"); err != nil {
			return nil, err
		}
		s.ownWorkDir = true
	} else if err := os.MkdirAll(s.opts.WorkDir, 0o755); err != nil {
		return nil, err
	}
	// Relative paths would break the controllers' --storage-path and git's remotes.
	if s.opts.WorkDir, err = filepath.Abs(s.opts.WorkDir); err != nil {
		return nil, err
	}

	if err := s.startAPIServer(ctx); err != nil {
		return nil, err
	}
	if s.git, err = startGitServer(filepath.Join(s.opts.WorkDir, "git")); err != nil {
		return nil, err
	}
	s.opts.Logf("stack: git server on %s", s.git.url)
	if err := s.startControllers(ctx); err != nil {
		return nil, err
	}
	go func() {
		select {
		case <-ctx.Done():
			select {
			case <-s.stopped: // stopped already; Logf may no longer be usable (a finished test's t.Logf)
				return
			default:
			}
			s.opts.Logf("stack: context done, stopping")
			_ = s.Stop()
		case <-s.stopped:
		}
	}()
	s.opts.Logf("stack: up in %v (work dir %s)", time.Since(begin).Round(10*time.Millisecond), s.opts.WorkDir)
	return s, nil
}

// startAPIServer starts etcd and kube-apiserver, installs the CRDs, creates flux-system and writes the kubeconfig.
func (s *Stack) startAPIServer(ctx context.Context) error {
	scheme, err := testenv.Scheme()
	if err != nil {
		return err
	}
	s.scheme = scheme
	// Paths are set explicitly so a stray $KUBEBUILDER_ASSETS cannot override Options.KubebuilderAssets.
	cp := envtest.ControlPlane{
		Etcd:      &envtest.Etcd{Path: filepath.Join(s.opts.KubebuilderAssets, "etcd")},
		APIServer: &envtest.APIServer{Path: filepath.Join(s.opts.KubebuilderAssets, "kube-apiserver")},
	}
	for name, set := range map[string]func(f *os.File){
		"etcd":           func(f *os.File) { cp.Etcd.Out, cp.Etcd.Err = f, f },
		"kube-apiserver": func(f *os.File) { cp.APIServer.Out, cp.APIServer.Err = f, f },
	} {
		f, err := os.Create(filepath.Join(s.opts.WorkDir, name+".log"))
		if err != nil {
			return err
		}
		// The child processes hold their own copy of the descriptor.
		defer func() { _ = f.Close() }()
		set(f)
	}
	env := &envtest.Environment{
		ControlPlane:          cp,
		CRDDirectoryPaths:     []string{s.opts.CRDDir},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	s.opts.Logf("stack: starting etcd and kube-apiserver from %s", s.opts.KubebuilderAssets)
	cfg, err := env.Start()
	if err != nil {
		// envtest stops what it started when Start fails part-way.
		return fmt.Errorf("start envtest: %w\n%s", err, tailFile(filepath.Join(s.opts.WorkDir, "kube-apiserver.log"), 20))
	}
	s.env, s.cfg = env, cfg
	if s.client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return fmt.Errorf("client for envtest: %w", err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: FluxNamespace}}
	if err := s.client.Create(ctx, ns); err != nil {
		return fmt.Errorf("create namespace %s: %w", FluxNamespace, err)
	}
	s.kubeconfig = filepath.Join(s.opts.WorkDir, "kubeconfig")
	return testenv.WriteKubeconfig(cfg, s.kubeconfig, FluxNamespace)
}

// Stop stops the controllers (SIGTERM to their process groups, SIGKILL after Options.StopGrace), the git server
// and envtest, then removes the work dir when Start created it. It is idempotent and safe to call concurrently;
// every call returns the first call's result.
func (s *Stack) Stop() error {
	s.stopOnce.Do(func() {
		defer close(s.stopped)
		var errs []error
		var wg sync.WaitGroup
		stopErrs := make([]error, len(s.procs))
		for i, p := range s.procs {
			wg.Go(func() { stopErrs[i] = p.stop(s.opts.StopGrace) })
		}
		wg.Wait()
		errs = append(errs, stopErrs...)
		if s.git != nil {
			errs = append(errs, s.git.close())
		}
		if s.env != nil {
			if err := s.env.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("stop envtest: %w", err))
			}
		}
		if s.ownWorkDir {
			errs = append(errs, os.RemoveAll(s.opts.WorkDir))
		}
		s.stopErr = errors.Join(errs...)
		s.opts.Logf("stack: stopped")
	})
	<-s.stopped
	return s.stopErr
}

// Kubeconfig is the path of an admin kubeconfig for the apiserver (current namespace flux-system).
func (s *Stack) Kubeconfig() string { return s.kubeconfig }

// RESTConfig is the admin rest.Config for the apiserver.
func (s *Stack) RESTConfig() *rest.Config { return rest.CopyConfig(s.cfg) }

// Client is an admin client whose scheme holds the core kinds and the Flux kinds (testenv.Scheme).
func (s *Stack) Client() client.Client { return s.client }

// WorkDir is the directory holding the kubeconfig, repositories, artifact storage and logs.
func (s *Stack) WorkDir() string { return s.opts.WorkDir }

// Interval is the default spec.interval of Flux objects created through the Stack.
func (s *Stack) Interval() time.Duration { return s.opts.Interval }

// PIDs are the process IDs of the Flux controllers, for tests that check nothing outlives Stop.
func (s *Stack) PIDs() []int {
	pids := make([]int, 0, len(s.procs))
	for _, p := range s.procs {
		pids = append(pids, p.cmd.Process.Pid)
	}
	return pids
}

// Logs returns the last n lines of each controller's log, for failure messages.
func (s *Stack) Logs(n int) string {
	var out string
	for _, p := range s.procs {
		out += fmt.Sprintf("--- %s (last %d lines of %s)\n%s", p.name, n, p.logPath, tailFile(p.logPath, n))
	}
	return out
}
