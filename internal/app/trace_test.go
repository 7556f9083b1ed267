package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/app"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/github/githubtest"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/fluxstatus"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/testenv"
)

// traceNS is the base name of the trace tests' namespace (see freshNamespace).
const traceNS = "trace-cmd"

// traceFixture is, in the suite's apiserver, a GitRepository shop on github.com/acme/shop (a GitHub fake
// holding main c0 → c1 → c2, where c0 adds deploy/prod and charts/app, c1 changes deploy/prod and c2 only the
// README) fetched at c2; a Kustomization apps (path ./deploy/prod/) that applied c0, c1 (60 s after its commit)
// and c2, as the tracker's ledger records, applying the ConfigMap app-config; a HelmRelease web released from
// c2, which the ledger does not know, applying the Deployment web; a Kustomization stale applied at a commit the
// repository does not hold; and an unmanaged ConfigMap.
type traceFixture struct {
	t          *testing.T
	ns         string
	gh         *githubtest.Server
	kubeconfig string
	c          [3]string
	base       time.Time
}

func newTraceFixture(t *testing.T) *traceFixture {
	t.Helper()
	f := &traceFixture{t: t, ns: freshNamespace(traceNS), gh: githubtest.NewServer(), base: time.Date(2026, 2, 2, 9, 0, 0, 0, time.UTC)}
	t.Cleanup(f.gh.Close)
	repo := f.gh.Repo("acme", "shop")
	for i, files := range []map[string]string{
		{"deploy/prod/app.yaml": "replicas: 1", "charts/app/Chart.yaml": "name: app", "README.md": "shop"},
		{"deploy/prod/app.yaml": "replicas: 3"},
		{"README.md": "the shop"},
	} {
		msg := []string{"initial", "raise replicas\n\nfor the sale", "docs: readme"}[i]
		f.c[i] = repo.Commit(githubtest.CommitSpec{Message: msg, AuthorName: "Grace", AuthorTime: f.at(100 * i), Files: files})
	}
	f.kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	if err := testenv.WriteContexts(f.kubeconfig, testenv.Context{Name: "one", Config: env.Config, Namespace: f.ns}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	create := func(obj client.Object, status func()) {
		t.Helper()
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
		if status != nil {
			status()
			if err := env.Client.Status().Update(ctx, obj); err != nil {
				t.Fatal(err)
			}
		}
	}
	create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}}, nil)
	gr := &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "shop"},
		Spec: sourcev1.GitRepositorySpec{URL: "https://github.com/acme/shop.git", Interval: metav1.Duration{Duration: time.Minute},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"}}}
	create(gr, func() { fluxstatus.Fetched(gr, f.c[2], f.at(230)) })
	kustomization := func(name, sha string) *kustomizev1.Kustomization {
		k := &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
			Spec: kustomizev1.KustomizationSpec{Interval: metav1.Duration{Duration: time.Minute}, Path: "./deploy/prod/", Prune: true,
				SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "shop"}}}
		create(k, func() { fluxstatus.Applied(k, fluxstatus.Revision(sha), f.at(260)) })
		return k
	}
	apps := kustomization("apps", f.c[2])
	kustomization("stale", "0123456789abcdef0123456789abcdef01234567")
	led, err := ledger.NewConfigMaps(ledger.ConfigMapsOptions{Client: env.Client, Namespace: f.ns, Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := led.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := led.Swap(ctx, string(apps.UID), nil, ledger.Entry{Kind: "Kustomization", Namespace: f.ns, Name: "apps", Revision: fluxstatus.Revision(f.c[2]),
		Applies: []ledger.Apply{{Digest: f.c[0], At: f.at(60)}, {Digest: f.c[1], At: f.at(160)}, {Digest: f.c[2], At: f.at(260)}}}); err != nil {
		t.Fatal(err)
	}
	hr, chart := fluxstatus.HelmRelease(f.ns, "web", "shop")
	create(chart, func() { fluxstatus.ChartBuilt(chart, f.c[2], f.at(240)) })
	create(hr, func() { fluxstatus.Released(hr, 1, f.c[2], f.at(290)) })
	create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "app-config", Labels: map[string]string{
		"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": f.ns}}}, nil)
	create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "handmade"}}, nil)
	labels := map[string]string{"app": "web"}
	create(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "web", Labels: map[string]string{
		"helm.toolkit.fluxcd.io/name": "web", "helm.toolkit.fluxcd.io/namespace": f.ns}},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web:1"}}}}}}, nil)
	return f
}

func (f *traceFixture) at(sec int) time.Time { return f.base.Add(time.Duration(sec) * time.Second) }

// run runs trace with args and returns its exit code, stdout and stderr.
func (f *traceFixture) run(args ...string) (int, string, string) {
	f.t.Helper()
	var out, errOut bytes.Buffer
	all := append(append([]string{"trace"}, args...), "--kubeconfig", f.kubeconfig, "--github-api-url", f.gh.URL,
		"--git-cache-dir", f.t.TempDir(), "--request-timeout", "5s", "--tracker-namespace", f.ns)
	code := app.Run(context.Background(), all, app.Deps{Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &errOut})
	return code, out.String(), errOut.String()
}

// The trace of an applied object, of a Kustomization itself and of an object a HelmRelease applied, as trees; the
// JSON of the first, field by field; and the exit codes of what cannot be traced.
func TestTrace(t *testing.T) {
	f := newTraceFixture(t)
	var trees strings.Builder
	for _, obj := range []string{"configmap/app-config", "kustomization/apps", "deployment.apps/web"} {
		code, out, stderr := f.run(obj)
		if code != 0 {
			t.Fatalf("trace %s = exit %d: %s", obj, code, stderr)
		}
		trees.WriteString("$ trace " + obj + "\n" + out + "\n")
	}
	wantGolden(t, "trace.golden", trees.String())

	// A short name, as the cluster's discovery lists it, reads the same object.
	code, out, stderr := f.run("cm/app-config", "-o", "json")
	if code != 0 {
		t.Fatalf("trace -o json = exit %d: %s", code, stderr)
	}
	var tr app.Trace
	if err := json.Unmarshal([]byte(out), &tr); err != nil {
		t.Fatalf("trace -o json: %v\n%s", err, out)
	}
	if tr.Context != "one" || tr.Object != (app.TraceObject{APIVersion: "v1", Kind: "ConfigMap", Namespace: f.ns, Name: "app-config"}) {
		t.Errorf("context %q, object %+v", tr.Context, tr.Object)
	}
	if tr.Flux.Kind != "Kustomization" || tr.Flux.Namespace != f.ns || tr.Flux.Name != "apps" || tr.Flux.Path != "deploy/prod" ||
		!strings.Contains(tr.Flux.Message, fluxstatus.Revision(f.c[2])) {
		t.Errorf("flux %+v", tr.Flux)
	}
	if tr.Source != (app.TraceSource{Kind: "GitRepository", Namespace: f.ns, Name: "shop", URL: "https://github.com/acme/shop.git",
		Branch: "main", Revision: fluxstatus.Revision(f.c[2])}) {
		t.Errorf("source %+v", tr.Source)
	}
	if tr.Revision != fluxstatus.Revision(f.c[2]) {
		t.Errorf("revision %q", tr.Revision)
	}
	// The commit that last changed deploy/prod, not the revision's README commit, applied when the ledger says.
	if c := tr.Commit; c == nil || !tr.LastChange || c.SHA != f.c[1] || c.Subject != "raise replicas" || c.Author != "Grace" ||
		!c.Committed.Equal(f.at(100)) || c.Repository != "https://github.com/acme/shop" {
		t.Errorf("commit %+v, last change %t; want %s, the last change of deploy/prod", tr.Commit, tr.LastChange, f.c[1])
	}
	if tr.Applied == nil || !tr.Applied.Equal(f.at(160)) || !tr.AppliedExact || tr.LatencySeconds == nil || *tr.LatencySeconds != 60 {
		t.Errorf("applied %v (exact %t), latency %v; want exactly +160s, 60 s after the commit", tr.Applied, tr.AppliedExact, tr.LatencySeconds)
	}
	if tr.TreeURL != "https://github.com/acme/shop/tree/main/deploy/prod" || tr.CommitURL != "https://github.com/acme/shop/commit/"+f.c[1] {
		t.Errorf("links %q %q", tr.TreeURL, tr.CommitURL)
	}
	if tr.Error != "" {
		t.Errorf("error %q", tr.Error)
	}

	for _, tt := range []struct {
		name, obj string
		code      int
		want      string
	}{
		{"unmanaged", "configmap/handmade", 3, "ConfigMap " + f.ns + "/handmade is not managed by Flux: it has no kustomize.toolkit.fluxcd.io or helm.toolkit.fluxcd.io labels"},
		{"missing", "configmap/nothing", 3, "ConfigMap " + f.ns + "/nothing not found"},
		{"unknown kind", "frobnicator/x", app.ExitUsage, `unknown kind "frobnicator": the cluster serves no such resource`},
		{"no name", "configmap", app.ExitUsage, "want <kind>/<name>"},
		{"commit not in the repository", "kustomization/stale", 1, "commit 0123456 in https://github.com/acme/shop"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := f.run(tt.obj)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("trace %s = exit %d\nstdout %s\nstderr %s\nwant exit %d and %q", tt.obj, code, out, stderr, tt.code, tt.want)
			}
			if tt.code == 1 && !strings.Contains(out, "GitRepository "+f.ns+"/shop") {
				t.Errorf("trace %s printed %q, want what it traced before the commit lookup failed", tt.obj, out)
			}
		})
	}
}

// The pages of a path and a commit on each forge, found by host or by the forge annotation.
func TestTraceBrowseURLs(t *testing.T) {
	const sha = "0123456789abcdef0123456789abcdef01234567"
	github := commits.Repository{Host: "github.com", Owner: "acme", Name: "shop"}
	for _, tt := range []struct {
		name                string
		repo                commits.Repository
		annotation          string
		branch, dir         string
		wantTree, wantBrows string
	}{
		{"github", github, "", "main", "./deploy/prod/", "https://github.com/acme/shop/tree/main/deploy/prod", "https://github.com/acme/shop/commit/" + sha},
		{"github root", github, "", "main", "./", "https://github.com/acme/shop/tree/main", "https://github.com/acme/shop/commit/" + sha},
		{"github no branch", github, "", "", "apps", "https://github.com/acme/shop/tree/" + sha + "/apps", "https://github.com/acme/shop/commit/" + sha},
		{"github enterprise by --github-api-url", commits.Repository{Host: "ghe.corp", Owner: "acme", Name: "shop"}, "", "release/1.2", "a b",
			"https://ghe.corp/acme/shop/tree/release/1.2/a%20b", "https://ghe.corp/acme/shop/commit/" + sha},
		{"gitlab subgroup", commits.Repository{Host: "gitlab.com", Name: "shop", URL: "https://gitlab.com/acme/platform/shop.git"}, "", "main", "deploy",
			"https://gitlab.com/acme/platform/shop/-/tree/main/deploy", "https://gitlab.com/acme/platform/shop/-/commit/" + sha},
		{"gitlab over ssh", commits.Repository{Host: "gitlab.example.com", Name: "shop", URL: "ssh://git@gitlab.example.com:2222/acme/shop.git"}, "", "main", "",
			"https://gitlab.example.com/acme/shop/-/tree/main", "https://gitlab.example.com/acme/shop/-/commit/" + sha},
		{"gitea by annotation", commits.Repository{Host: "git.corp", Name: "shop", URL: "https://git.corp:3000/acme/shop.git"}, "Gitea", "main", "deploy",
			"https://git.corp:3000/acme/shop/src/branch/main/deploy", "https://git.corp:3000/acme/shop/commit/" + sha},
		{"forgejo no branch", commits.Repository{Host: "codeberg.org", Owner: "acme", Name: "shop"}, "", "", "deploy",
			"https://codeberg.org/acme/shop/src/commit/" + sha + "/deploy", "https://codeberg.org/acme/shop/commit/" + sha},
		{"bitbucket", commits.Repository{Host: "bitbucket.org", Owner: "acme", Name: "shop"}, "", "main", "deploy",
			"https://bitbucket.org/acme/shop/src/" + sha + "/deploy", "https://bitbucket.org/acme/shop/commits/" + sha},
		{"annotation wins over host", github, "gitlab", "main", "", "https://github.com/acme/shop/-/tree/main", "https://github.com/acme/shop/-/commit/" + sha},
		{"unknown forge", commits.Repository{Host: "git.corp", Name: "shop", URL: "https://git.corp/shop.git"}, "", "main", "deploy", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tree, browse := app.BrowseURLs(tt.repo, tt.annotation, []string{"github.com", "ghe.corp"}, tt.branch, tt.dir, sha)
			if tree != tt.wantTree || browse != tt.wantBrows {
				t.Errorf("BrowseURLs = %q, %q; want %q, %q", tree, browse, tt.wantTree, tt.wantBrows)
			}
		})
	}
}
