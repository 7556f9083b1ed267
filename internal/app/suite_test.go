package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/app"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/github/githubtest"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/testenv"
)

var (
	env        *testenv.Env
	kubeconfig string
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop envtest:", err)
		}
	}()
	dir, err := os.MkdirTemp("", "fct-suite-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// writeKubeconfig writes an admin kubeconfig for the envtest apiserver.
func writeKubeconfig(path string) error {
	cfg := env.Config
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.CurrentContext = "envtest"
	return clientcmd.WriteToFile(*kc, path)
}

// scenario is one namespace with a GitRepository, a Kustomization and a fake GitHub repository.
type scenario struct {
	t    testing.TB
	ns   string
	gh   *githubtest.Server
	repo *githubtest.Repo
	// t0 anchors commit times a little in the past, whole seconds like git and Flux.
	t0 time.Time
}

func newScenario(t testing.TB) *scenario {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "fct-"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	gh := githubtest.NewServer()
	t.Cleanup(gh.Close)
	s := &scenario{t: t, ns: ns.Name, gh: gh, repo: gh.Repo("acme", "manifests"), t0: time.Now().Add(-time.Hour).Truncate(time.Second).UTC()}
	gitRepo := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "manifests"},
		Spec: sourcev1.GitRepositorySpec{
			URL:       "https://github.com/acme/manifests.git",
			Interval:  metav1.Duration{Duration: time.Minute},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"},
		},
	}
	if err := env.Client.Create(ctx, gitRepo); err != nil {
		t.Fatal(err)
	}
	return s
}

// commit adds a commit on main committed at t0+sec.
func (s *scenario) commit(sec int, files map[string]string) string {
	at := s.t0.Add(time.Duration(sec) * time.Second)
	return s.repo.Commit(githubtest.CommitSpec{AuthorTime: at.Add(-time.Hour), CommitterTime: at, Files: files})
}

func (s *scenario) at(sec int) time.Time { return s.t0.Add(time.Duration(sec) * time.Second) }

// createKustomization creates a Kustomization on the GitRepository, already applied at sha, as Flux leaves it.
func (s *scenario) createKustomization(name, sha string, appliedSec int) {
	s.t.Helper()
	k := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: name},
		Spec: kustomizev1.KustomizationSpec{
			Interval:  metav1.Duration{Duration: time.Minute},
			Path:      "./",
			Prune:     true,
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "manifests"},
		},
	}
	if err := env.Client.Create(context.Background(), k); err != nil {
		s.t.Fatal(err)
	}
	s.apply(name, "main@sha1:"+sha, s.at(appliedSec))
}

// apply writes the status kustomize-controller writes after applying revision at time at.
func (s *scenario) apply(name, revision string, at time.Time) {
	s.t.Helper()
	ctx := context.Background()
	var k kustomizev1.Kustomization
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: name}, &k); err != nil {
		s.t.Fatal(err)
	}
	k.Status.ObservedGeneration = k.Generation
	k.Status.LastAppliedRevision = revision
	k.Status.LastAttemptedRevision = revision
	k.Status.Conditions = []metav1.Condition{{
		Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Reason: meta.ReconciliationSucceededReason,
		Message: "Applied revision: " + revision, LastTransitionTime: metav1.NewTime(at), ObservedGeneration: k.Generation,
	}}
	if err := env.Client.Status().Update(ctx, &k); err != nil {
		s.t.Fatal(err)
	}
}

// tracker is one running flux-commit-tracker process (in-process, through app.Run).
type tracker struct {
	t       testing.TB
	cancel  context.CancelFunc
	done    chan int
	stdout  *syncBuffer
	metrics string
	health  string
	once    sync.Once
}

func (s *scenario) startTracker(extra ...string) *tracker {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tr := &tracker{t: s.t, cancel: cancel, done: make(chan int, 1), stdout: &syncBuffer{recorded: make(chan struct{}, 1<<16)}, metrics: freeAddr(s.t), health: freeAddr(s.t)}
	args := append([]string{
		"--kubeconfig", kubeconfig, "--namespace", s.ns, "--watch-namespace", s.ns,
		"--github-api-url", s.gh.URL, "--metrics-addr", tr.metrics, "--health-addr", tr.health,
		"--cluster-name", "test-cluster", "--log-level", "debug",
	}, extra...)
	env := map[string]string{"GITHUB_TOKEN": "test-token"}
	go func() {
		tr.done <- app.Run(ctx, args, app.Deps{Getenv: func(k string) string { return env[k] }, Stdout: tr.stdout, Stderr: tr.stdout, Version: "test"})
	}()
	s.t.Cleanup(tr.stop)
	eventually(s.t, 30*time.Second, "tracker ready", func() bool {
		resp, err := http.Get("http://" + tr.health + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return tr
}

// stop ends the tracker and waits for it; it is safe to call twice.
func (tr *tracker) stop() {
	tr.once.Do(func() {
		tr.cancel()
		select {
		case code := <-tr.done:
			if code != 0 {
				tr.t.Errorf("tracker exited with %d:\n%s", code, tr.stdout.String())
			}
		case <-time.After(30 * time.Second):
			tr.t.Error("tracker did not stop within 30s")
		}
	})
}

// commitLog is one "commit applied" log line.
type commitLog struct {
	Commit           string  `json:"commit"`
	Name             string  `json:"name"`
	ReconcileSeconds float64 `json:"reconcile_seconds"`
	AppliedFromFlux  bool    `json:"applied_from_flux"`
	UpstreamCommits  int     `json:"upstream_commits"`
}

func (tr *tracker) appliedCommits() []commitLog {
	var out []commitLog
	for _, line := range tr.stdout.lines() {
		var l struct {
			Msg string `json:"msg"`
			commitLog
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "commit applied" {
			out = append(out, l.commitLog)
		}
	}
	return out
}

func (tr *tracker) logged(msg string) bool {
	for _, line := range tr.stdout.lines() {
		var l struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == msg {
			return true
		}
	}
	return false
}

// metric returns the value of the Prometheus series whose name and labels contain every given fragment.
func (tr *tracker) metric(name string, labelFragments ...string) float64 {
	tr.t.Helper()
	resp, err := http.Get("http://" + tr.metrics + "/metrics")
	if err != nil {
		tr.t.Fatalf("scrape: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	total := 0.0
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		match := true
		for _, f := range labelFragments {
			if !strings.Contains(line, f) {
				match = false
			}
		}
		if !match {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			tr.t.Fatalf("metric line %q: %v", line, err)
		}
		total += v
	}
	return total
}

func (s *scenario) ledgerRevision(name string) string {
	var cms corev1.ConfigMapList
	if err := env.Client.List(context.Background(), &cms, client.InNamespace(s.ns), client.MatchingLabels{ledger.LabelKey: "v1"}); err != nil {
		s.t.Fatal(err)
	}
	for _, cm := range cms.Items {
		for _, raw := range cm.Data {
			var e ledger.Entry
			if json.Unmarshal([]byte(raw), &e) == nil && e.Name == name {
				return e.Revision
			}
		}
	}
	return ""
}

func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// consistently fails if cond turns false within d.
func consistently(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !cond() {
			t.Fatalf("%s stopped holding", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	// recorded, when set, gets a value per "commit applied" line written.
	recorded chan struct{}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.recorded != nil {
		for range bytes.Count(p, []byte(`"msg":"commit applied"`)) {
			b.recorded <- struct{}{}
		}
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) lines() []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func keyOf(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }
