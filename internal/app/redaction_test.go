package app_test

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/git/gittest"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/flux"
)

// Canaries planted where credentials hide: URL userinfo, query strings and Secret values.
const (
	canaryUserinfo = "CANARY1userinfo"
	canaryQuery    = "CANARY2query"
	canaryPassword = "CANARY3password"
	canaryToken    = "CANARY3bearer"
)

var canaries = []string{canaryUserinfo, canaryQuery, canaryPassword, canaryToken}

// createGitSource creates a GitRepository at url, with a Secret of data as its secretRef when data is set.
func (s *scenario) createGitSource(name, url string, data map[string][]byte) {
	s.t.Helper()
	ctx := context.Background()
	gr := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: name},
		Spec: sourcev1.GitRepositorySpec{URL: url, Interval: metav1.Duration{Duration: time.Minute},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"}},
	}
	if data != nil {
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: name + "-auth"}, Data: data}
		if err := env.Client.Create(ctx, secret); err != nil {
			s.t.Fatal(err)
		}
		gr.Spec.SecretRef = &meta.LocalObjectReference{Name: secret.Name}
	}
	if err := env.Client.Create(ctx, gr); err != nil {
		s.t.Fatal(err)
	}
}

// createKustomizationOn creates a Kustomization on GitRepository source with annotations, applied at sha 5 s after t0.
func (s *scenario) createKustomizationOn(name, source string, annotations map[string]string, sha string) {
	s.t.Helper()
	k := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: name, Annotations: annotations},
		Spec: kustomizev1.KustomizationSpec{Interval: metav1.Duration{Duration: time.Minute}, Path: "./", Prune: true,
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: source}},
	}
	if err := env.Client.Create(context.Background(), k); err != nil {
		s.t.Fatal(err)
	}
	s.apply(name, "main@sha1:"+sha, s.at(5))
}

// TestNoCredentialsInTelemetry plants canaries in source URLs, repository annotations and Secrets, runs the
// tracker into the errors they cause (and one success), and finds none of them in /metrics, the JSON logs or
// the spans printed to stdout.
func TestNoCredentialsInTelemetry(t *testing.T) {
	s := newScenario(t)
	root := t.TempDir()
	repo := gittest.NewRepo(t, filepath.Join(root, "manifests"))
	repo.Now, repo.Step = s.t0, 10*time.Second
	srv := gittest.NewHTTPServer(t, root)
	plain := srv.URL("manifests")                                                             // http://127.0.0.1:port/manifests
	withUserinfo := strings.Replace(plain, "http://", "http://deploy:"+canaryUserinfo+"@", 1) // anonymous http, creds in the URL
	basic := map[string][]byte{"username": []byte("bot"), "password": []byte(canaryPassword)}
	bearer := map[string][]byte{"bearerToken": []byte(canaryToken)}

	// Userinfo and a query in spec.url, basic credentials over plain http: refused.
	s.createGitSource("userinfo-query", withUserinfo+"?token="+canaryQuery, basic)
	// Userinfo in spec.url, nothing else: fetched anonymously and recorded.
	s.createGitSource("userinfo", withUserinfo, nil)
	// A bearer token for a host that does not answer, and an annotation pointing at another host with its own
	// userinfo and query: credentials withheld, the annotation's URL refused for its query.
	s.createGitSource("private", "https://127.0.0.1:1/private.git", bearer)
	// The GitHub API with userinfo and a query in the URL.
	s.createGitSource("github", "https://x-access-token:"+canaryUserinfo+"@github.com/acme/manifests.git?ref="+canaryQuery, nil)

	c0 := repo.Commit("base", map[string]string{"app.yaml": "v0"})
	override := map[string]string{
		flux.AnnotationRepository: withUserinfo + "?private_token=" + canaryQuery,
		flux.AnnotationProvider:   "git",
	}
	gh0 := s.commit(0, nil)
	s.createKustomizationOn("refused", "userinfo-query", nil, c0)
	s.createKustomizationOn("recorded", "userinfo", nil, c0)
	s.createKustomizationOn("annotated", "private", override, c0)
	s.createKustomizationOn("unreachable", "private", nil, c0)
	s.createKustomizationOn("github", "github", nil, gh0)
	s.createKustomizationOn("invalid", "userinfo-query", nil, c0)
	tr := s.startTracker("--git-read-source-secrets", "--telemetry-mode", "stdout-all", "--exporter-info-path=")
	for _, name := range []string{"refused", "recorded", "annotated", "unreachable", "github", "invalid"} {
		eventually(t, 20*time.Second, name+" baseline", func() bool { return s.ledgerRevision(name) != "" })
	}

	c1 := repo.Commit("one", map[string]string{"app.yaml": "v1"})
	gh1 := s.commit(10, nil)
	for _, name := range []string{"refused", "recorded", "annotated", "unreachable"} {
		s.apply(name, "main@sha1:"+c1, s.at(60))
	}
	s.apply("github", "main@sha1:"+gh1, s.at(60))
	s.apply("invalid", "main@sha1:not-a-sha", s.at(60)) // counted before the repository is even looked up
	wantCommits(t, tr, map[string]float64{c1: 50})
	// Every other Kustomization failed: the errors are counted, logged and on their spans.
	eventually(t, 30*time.Second, "errors of the five failing Kustomizations", func() bool {
		for _, name := range []string{"refused", "annotated", "unreachable", "github", "invalid"} {
			if tr.Metric("flux_commit_tracker_errors_total", `flux_name="`+name+`"`) == 0 {
				return false
			}
		}
		return true
	})
	resp, err := http.Get("http://" + tr.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	tr.Stop() // flushes the spans still batched
	out := tr.String()
	if !strings.Contains(out, `"name":"flux-commit-tracker.apply"`) && !strings.Contains(out, `"Name":"flux-commit-tracker.apply"`) {
		t.Fatalf("no apply span on stdout: the scan would find nothing:\n%.2000s", out)
	}
	if !strings.Contains(string(metrics), "flux_commit_tracker_errors_total") {
		t.Fatalf("no error counter in /metrics:\n%.2000s", metrics)
	}
	for _, canary := range canaries {
		for where, text := range map[string]string{"/metrics": string(metrics), "logs and spans": out} {
			for _, line := range strings.Split(text, "\n") {
				if strings.Contains(line, canary) {
					t.Errorf("%s holds %s: %.1500s", where, canary, line)
				}
			}
		}
	}
}
