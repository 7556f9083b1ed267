package fluxstate

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flux-commit-tracker/flux-commit-tracker/test/testenv"
)

// The apiserver starts with the first test that needs it, so that unit tests, fuzzing and benchmarks run without.
var (
	envOnce sync.Once
	env     *testenv.Env
	envErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if env != nil {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop envtest:", err)
		}
	}
	os.Exit(code)
}

func apiserver(t *testing.T) *testenv.Env {
	t.Helper()
	envOnce.Do(func() { env, envErr = testenv.Start() })
	if envErr != nil {
		t.Fatal(envErr)
	}
	return env
}

// namespace creates a namespace for one test.
func namespace(t *testing.T, e *testenv.Env) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "fluxstate-"}}
	if err := e.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// createObjects creates objs with their status, as Flux's controllers leave them.
func createObjects(t *testing.T, c client.Client, objs []*unstructured.Unstructured) {
	t.Helper()
	ctx := context.Background()
	for _, u := range objs {
		status, hasStatus := u.Object["status"]
		obj := u.DeepCopy()
		delete(obj.Object, "status")
		if err := c.Create(ctx, obj); err != nil {
			t.Fatalf("create %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		if hasStatus {
			obj.Object["status"] = status
			if err := c.Status().Update(ctx, obj); err != nil {
				t.Fatalf("status of %s %s: %v", u.GetKind(), u.GetName(), err)
			}
		}
	}
}

// listed is every object of the reference configuration's kinds in namespace, as the apiserver returns them.
func listed(t *testing.T, c client.Client, namespace string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, r := range loadKSMConfig(t) {
		var list unstructured.UnstructuredList
		gvk := schema.GroupVersionKind(r.GroupVersionKind)
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := c.List(context.Background(), &list, client.InNamespace(namespace)); err != nil {
			t.Fatalf("list %s: %v", gvk, err)
		}
		for i := range list.Items {
			out = append(out, &list.Items[i])
		}
	}
	return out
}

// logBuffer collects log lines from goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// run starts a Collector until the test ends.
func run(t *testing.T, opts Options) (*Collector, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	opts.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return c, logs
}

// eventually waits for cond, up to 30 s; on timeout it fails with what last returns.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s:\n%s", what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// matchesReference waits until c serves the series kube-state-metrics would for the objects in namespace.
func matchesReference(t *testing.T, e *testenv.Env, c *Collector, namespace string) []ksmSeries {
	t.Helper()
	var got []ksmSeries
	eventually(t, "the series kube-state-metrics would serve", func() (bool, string) {
		want := reference(t, listed(t, e.Client, namespace))
		got = scrape(t, c)
		d := diffSeries(want, got)
		return d == "", d
	})
	return got
}

// The series of every Flux kind are those kube-state-metrics serves from Flux's configuration, label by label,
// and those of a deleted object go.
func TestSeriesMatchKubeStateMetrics(t *testing.T) {
	e := apiserver(t)
	ns := namespace(t, e)
	objs := loadObjects(t, ns)
	createObjects(t, e.Client, objs)
	c, logs := run(t, Options{Config: e.Config, Namespace: ns, Recheck: 200 * time.Millisecond})
	got := matchesReference(t, e, c, ns)
	if len(got) != len(objs) {
		t.Errorf("%d series for %d objects", len(got), len(objs))
	}
	kinds := map[string]bool{}
	for _, s := range got {
		kinds[s.labels["customresource_kind"]] = true
	}
	for _, k := range Kinds {
		if !kinds[k.Kind] {
			t.Errorf("no series of %s; logs:\n%s", k.Kind, logs)
		}
	}

	// A change shows at the next scrape.
	var k unstructured.Unstructured
	k.SetGroupVersionKind(schema.GroupVersionKind{Group: kustomizeGroup, Version: "v1", Kind: "Kustomization"})
	if err := e.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "full"}, &k); err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedField(k.Object, false, "spec", "suspend"); err != nil {
		t.Fatal(err)
	}
	if err := e.Client.Update(context.Background(), &k); err != nil {
		t.Fatal(err)
	}
	got = matchesReference(t, e, c, ns)
	if s := find(got, "Kustomization", "full"); s == nil || s.labels["suspended"] != "false" {
		t.Errorf("resumed Kustomization: %v, want suspended=\"false\"", s)
	}

	// A deleted object's series goes.
	for _, name := range []string{"full", "bare"} {
		if err := e.Client.Delete(context.Background(), objs[indexOf(t, objs, "GitRepository", name)]); err != nil {
			t.Fatal(err)
		}
	}
	got = matchesReference(t, e, c, ns)
	for _, name := range []string{"full", "bare"} {
		if s := find(got, "GitRepository", name); s != nil {
			t.Errorf("series of deleted GitRepository %s still served: %v", name, s.labels)
		}
	}
	if find(got, "GitRepository", "failing") == nil {
		t.Error("series of the GitRepository left went too")
	}
}

func find(series []ksmSeries, kind, name string) *ksmSeries {
	for i := range series {
		if series[i].labels["customresource_kind"] == kind && series[i].labels["name"] == name {
			return &series[i]
		}
	}
	return nil
}

func indexOf(t *testing.T, objs []*unstructured.Unstructured, kind, name string) int {
	t.Helper()
	for i, u := range objs {
		if u.GetKind() == kind && u.GetName() == name {
			return i
		}
	}
	t.Fatalf("no %s %s", kind, name)
	return -1
}

// widget is a kind no cluster serves until the test installs its CRD.
var widget = Kind{Group: "fluxstate.example.com", Version: "v1", Kind: "Widget", Ready: true,
	Labels: map[string][]string{"url": {"spec", "url"}}}

// A kind the cluster does not serve is skipped with a warning, the others are reported, and the kind is
// reported once its CRD is installed.
func TestKindNotServedIsSkippedAndPickedUpLater(t *testing.T) {
	e := apiserver(t)
	ns := namespace(t, e)
	objs := loadObjects(t, ns)
	createObjects(t, e.Client, objs)
	kinds := append([]Kind{widget}, Kinds...)
	c, logs := run(t, Options{Config: e.Config, Namespace: ns, Kinds: kinds, Recheck: 200 * time.Millisecond})
	matchesReference(t, e, c, ns)
	eventually(t, "a warning that Widget is not reported", func() (bool, string) {
		return strings.Contains(logs.String(), `"level":"WARN","msg":"Flux kind not reported in gotk_resource_info","kind":"Widget"`) &&
			strings.Contains(logs.String(), "the cluster does not serve it"), logs.String()
	})
	if n := strings.Count(logs.String(), `"kind":"Widget"`); n != 1 {
		t.Errorf("Widget logged %d times over several rechecks, want once:\n%s", n, logs)
	}

	installWidgetCRD(t, e)
	w := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"url": "https://widgets.example.com"}}}
	w.SetGroupVersionKind(widget.GroupVersionKind())
	w.SetNamespace(ns)
	w.SetName("late")
	// The CRD takes a moment to be served.
	eventually(t, "the Widget made", func() (bool, string) {
		err := e.Client.Create(context.Background(), w.DeepCopy())
		return err == nil, fmt.Sprint(err)
	})
	eventually(t, "the series of a Widget made after start", func() (bool, string) {
		s := find(scrape(t, c), "Widget", "late")
		return s != nil && s.labels["url"] == "https://widgets.example.com" && s.labels["customresource_group"] == widget.Group, logs.String()
	})
}

// installWidgetCRD serves the Widget kind, as installing a Flux controller would serve its kinds.
func installWidgetCRD(t *testing.T, e *testenv.Env) {
	t.Helper()
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "widgets." + widget.Group},
		"spec": map[string]any{
			"group": widget.Group, "scope": "Namespaced",
			"names": map[string]any{"kind": "Widget", "listKind": "WidgetList", "plural": "widgets", "singular": "widget"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
		},
	}}
	if err := e.Client.Create(context.Background(), crd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Client.Delete(context.Background(), crd) })
}

// A kind the tracker may not list is skipped with a warning naming it, and the kinds it may list are reported.
func TestForbiddenKindIsSkipped(t *testing.T) {
	e := apiserver(t)
	ns := namespace(t, e)
	objs := loadObjects(t, ns)
	createObjects(t, e.Client, objs)
	ctx := context.Background()
	user := "fluxstate-" + ns
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kustomizations-only"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{kustomizeGroup}, Resources: []string{"kustomizations"}, Verbs: []string{"get", "list", "watch"}}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kustomizations-only"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}}
	for _, o := range []client.Object{role, binding} {
		if err := e.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	cfg := rest.CopyConfig(e.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, logs := run(t, Options{Config: cfg, Namespace: ns, Recheck: 200 * time.Millisecond})
	eventually(t, "the Kustomizations' series", func() (bool, string) {
		got := scrape(t, c)
		return find(got, "Kustomization", "full") != nil && find(got, "Kustomization", "bare") != nil, logs.String()
	})
	for _, s := range scrape(t, c) {
		if s.labels["customresource_kind"] != "Kustomization" {
			t.Errorf("series of a kind the user may not list: %v", s.labels)
		}
	}
	eventually(t, "a warning that GitRepository is forbidden", func() (bool, string) {
		return strings.Contains(logs.String(), `"kind":"GitRepository","api_version":"source.toolkit.fluxcd.io/v1","reason":"access is forbidden`), logs.String()
	})
}
