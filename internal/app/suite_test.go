package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/github/githubtest"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/apptest"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/fluxstatus"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/testenv"
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
	if err := testenv.WriteKubeconfig(env.Config, kubeconfig, ""); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
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
	fluxstatus.Applied(&k, revision, at)
	if err := env.Client.Status().Update(ctx, &k); err != nil {
		s.t.Fatal(err)
	}
}

func (s *scenario) startTracker(extra ...string) *apptest.Tracker {
	s.t.Helper()
	return s.startTrackerEnv(nil, extra...)
}

// startTrackerEnv is startTracker with env added to the tracker's environment.
func (s *scenario) startTrackerEnv(env map[string]string, extra ...string) *apptest.Tracker {
	s.t.Helper()
	all := map[string]string{"GITHUB_TOKEN": "test-token"}
	maps.Copy(all, env)
	return apptest.Start(s.t, append([]string{
		"--kubeconfig", kubeconfig, "--namespace", s.ns, "--watch-namespace", s.ns,
		"--github-api-url", s.gh.URL, "--cluster-name", "test-cluster", "--log-level", "debug", "--git-cache-dir", s.t.TempDir(),
	}, extra...), all)
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

func keyOf(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }

var (
	eventually   = apptest.Eventually
	consistently = apptest.Consistently
)
