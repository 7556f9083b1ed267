package app_test

import (
	"context"
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
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/oci"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/oci/ocitest"
)

// TestOCIRepositorySource: a Kustomization from an OCIRepository, statuses as source- and kustomize-controller
// write them; the commit and repository come from the artifact's annotations, upstream commits from its
// exporter-info layer.
func TestOCIRepositorySource(t *testing.T) {
	s := newScenario(t)
	reg := ocitest.NewRegistry(t)
	ctx := context.Background()
	push := func(sha string, info []byte) string {
		return reg.Push(t, "manifests", "latest", map[string]string{
			oci.AnnotationRevision: "main@sha1:" + sha, oci.AnnotationSource: "https://github.com/acme/manifests",
		}, info)
	}
	setArtifact := func(sha, digest string, fetched time.Time) {
		var src sourcev1.OCIRepository
		if err := env.Client.Get(ctx, keyOf(s.ns, "artifacts"), &src); err != nil {
			t.Fatal(err)
		}
		src.Status.Artifact = &meta.Artifact{
			Revision: "latest@" + digest, Digest: digest, Path: "x", URL: "http://x", LastUpdateTime: metav1.NewTime(fetched),
			Metadata: map[string]string{oci.AnnotationRevision: "main@sha1:" + sha, oci.AnnotationSource: "https://github.com/acme/manifests"},
		}
		if err := env.Client.Status().Update(ctx, &src); err != nil {
			t.Fatal(err)
		}
	}
	applyOCI := func(sha, digest string, at time.Time) {
		var k kustomizev1.Kustomization
		if err := env.Client.Get(ctx, keyOf(s.ns, "app"), &k); err != nil {
			t.Fatal(err)
		}
		k.Status.LastAppliedRevision, k.Status.LastAttemptedRevision = "latest@"+digest, "latest@"+digest
		k.Status.LastAppliedOriginRevision = "main@sha1:" + sha
		k.Status.Conditions = []metav1.Condition{{Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Reason: meta.ReconciliationSucceededReason,
			Message: "Applied revision: latest@" + digest, LastTransitionTime: metav1.NewTime(at)}}
		if err := env.Client.Status().Update(ctx, &k); err != nil {
			t.Fatal(err)
		}
	}

	repo := &sourcev1.OCIRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "artifacts"},
		Spec:       sourcev1.OCIRepositorySpec{URL: reg.URL("manifests"), Interval: metav1.Duration{Duration: time.Minute}, Insecure: true},
	}
	if err := env.Client.Create(ctx, repo); err != nil {
		t.Fatal(err)
	}
	c0 := s.commit(0, nil)
	d0 := push(c0, nil)
	setArtifact(c0, d0, s.at(2))
	k := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "app"},
		Spec: kustomizev1.KustomizationSpec{Interval: metav1.Duration{Duration: time.Minute}, Path: "./", Prune: true,
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.OCIRepositoryKind, Name: "artifacts"}},
	}
	if err := env.Client.Create(ctx, k); err != nil {
		t.Fatal(err)
	}
	applyOCI(c0, d0, s.at(5))
	tr := s.startTracker("--oci-insecure")
	eventually(t, 10*time.Second, "baseline", func() bool { return s.ledgerRevision("app") == "main@sha1:"+c0 })

	c1 := s.commit(100, nil)
	upstream := s.at(40).Format(time.RFC3339)
	d1 := push(c1, []byte(`{"commit":"`+strings.Repeat("1a", 20)+`","commits_since_last_export":[{"hash":"`+strings.Repeat("1a", 20)+`","message":"m","author":"a","email":"a@b","time":"`+upstream+`"}]}`))
	setArtifact(c1, d1, s.at(130))
	applyOCI(c1, d1, s.at(160))
	wantCommits(t, tr, map[string]float64{c1: 60})
	for metric, want := range map[string]float64{
		exportSum: 60, e2eSum: 120,
		"flux_commit_tracker_flux_fetch_time_seconds_sum": 30, "flux_commit_tracker_flux_apply_time_seconds_sum": 30,
	} {
		if got := tr.Metric(metric, `flux_name="app"`, `vcs_repository_url_full="https://github.com/acme/manifests"`); got != want {
			t.Errorf("%s = %v, want %v", metric, got, want)
		}
	}
}

// TestPrivateGitFromSourceSecret: a repository behind basic auth is read with the GitRepository's secretRef when
// --git-read-source-secrets is set; without it the tracker reads anonymously, fails, and counts it.
func TestPrivateGitFromSourceSecret(t *testing.T) {
	s := newScenario(t)
	root := t.TempDir()
	repo := gittest.NewRepo(t, filepath.Join(root, "manifests"))
	repo.Now, repo.Step = s.t0, 10*time.Second
	// Credentials are only ever sent over TLS: the Secret carries the server's CA, as Flux reads it.
	srv := gittest.NewServer(t, root, gittest.ServerOptions{Username: "bot", Password: "s3cret", TLS: true})
	ctx := context.Background()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "git-auth"},
		Data: map[string][]byte{"username": []byte("bot"), "password": []byte("s3cret"), "ca.crt": srv.CACert()}}
	if err := env.Client.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	var gr sourcev1.GitRepository
	if err := env.Client.Get(ctx, keyOf(s.ns, "manifests"), &gr); err != nil {
		t.Fatal(err)
	}
	gr.Spec.URL, gr.Spec.SecretRef = srv.URL("manifests"), &meta.LocalObjectReference{Name: "git-auth"}
	if err := env.Client.Update(ctx, &gr); err != nil {
		t.Fatal(err)
	}
	c0 := repo.Commit("base", map[string]string{"a": "0"})
	s.createKustomization("app", c0, 5)

	anonymous := s.startTracker()
	eventually(t, 10*time.Second, "baseline", func() bool { return s.ledgerRevision("app") != "" })
	c1 := repo.Commit("one", map[string]string{"a": "1"}) // t0+10
	s.apply("app", "main@sha1:"+c1, s.at(70))
	eventually(t, 20*time.Second, "anonymous read refused and counted", func() bool {
		return anonymous.Metric(errorsTotal, `reason="git"`) >= 1
	})
	if strings.Contains(anonymous.String(), "s3cret") {
		t.Error("the password appears in the tracker's output")
	}
	anonymous.Stop()

	private := s.startTracker("--git-read-source-secrets")
	wantCommits(t, private, map[string]float64{c1: 60})
	if strings.Contains(private.String(), "s3cret") {
		t.Error("the password appears in the tracker's output")
	}
}

// TestPrivateGitOverSSHFromSourceSecret: an SSH git server on 127.0.0.1 that accepts one key; the GitRepository's
// Secret holds the identity and known_hosts, as Flux expects them.
func TestPrivateGitOverSSHFromSourceSecret(t *testing.T) {
	s := newScenario(t)
	root := t.TempDir()
	repo := gittest.NewRepo(t, filepath.Join(root, "manifests"))
	repo.Now, repo.Step = s.t0, 10*time.Second
	identity, public := gittest.NewSSHKey(t, "")
	srv := gittest.NewSSHServer(t, root, public)
	ctx := context.Background()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "ssh-auth"},
		Data: map[string][]byte{"identity": identity, "known_hosts": srv.KnownHosts()}}
	if err := env.Client.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	var gr sourcev1.GitRepository
	if err := env.Client.Get(ctx, keyOf(s.ns, "manifests"), &gr); err != nil {
		t.Fatal(err)
	}
	gr.Spec.URL, gr.Spec.SecretRef = srv.URL("manifests"), &meta.LocalObjectReference{Name: "ssh-auth"}
	if err := env.Client.Update(ctx, &gr); err != nil {
		t.Fatal(err)
	}
	c0 := repo.Commit("base", map[string]string{"a": "0"})
	s.createKustomization("app", c0, 5)
	tr := s.startTracker("--git-read-source-secrets")
	eventually(t, 10*time.Second, "baseline", func() bool { return s.ledgerRevision("app") != "" })
	c1 := repo.Commit("one", map[string]string{"a": "1"}) // t0+10
	c2 := repo.Commit("two", map[string]string{"a": "2"}) // t0+20
	s.apply("app", "main@sha1:"+c2, s.at(80))
	wantCommits(t, tr, map[string]float64{c1: 70, c2: 60})
	if srv.UploadPacks() == 0 {
		t.Error("no upload-pack over SSH")
	}
	if strings.Contains(tr.String(), "PRIVATE KEY") {
		t.Error("the identity appears in the tracker's output")
	}
}
