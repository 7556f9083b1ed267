package fluxstate

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/yaml"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/redact"
)

// Every kind of the reference configuration is in the table with the same labels and paths, and no other.
func TestKindsAreThoseOfTheReferenceConfiguration(t *testing.T) {
	ref := map[schema.GroupVersionKind]ksmResource{}
	for _, r := range loadKSMConfig(t) {
		ref[schema.GroupVersionKind(r.GroupVersionKind)] = r
	}
	for _, k := range Kinds {
		r, ok := ref[k.GroupVersionKind()]
		if !ok {
			t.Errorf("%s: not in the reference configuration", k.GroupVersionKind())
			continue
		}
		delete(ref, k.GroupVersionKind())
		want := map[string][]string{}
		for _, m := range r.Metrics {
			if prefix := *r.MetricNamePrefix + "_" + m.Name; prefix != MetricName {
				t.Errorf("%s: metric %s, want %s", k.Kind, prefix, MetricName)
			}
			maps.Copy(want, r.LabelsFromPath)
			maps.Copy(want, m.LabelsFromPath)
			maps.Copy(want, m.Each.Info.LabelsFromPath)
		}
		ck, err := compile(k)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]string{}
		for _, l := range ck.labels {
			if l.slot >= 0 {
				got[l.name] = pathOf(t, ck, l.name)
			}
		}
		if !maps.EqualFunc(want, got, slices.Equal) {
			t.Errorf("%s labels:\n got %v\nwant %v", k.Kind, got, want)
		}
	}
	for gvk := range ref {
		t.Errorf("%s: in the reference configuration, not in Kinds", gvk)
	}
}

// pathOf is the path of label name of k, as written in the table.
func pathOf(t *testing.T, k *kind, name string) []string {
	switch name {
	case labelName:
		return namePath
	case labelNamespace:
		return namespacePath
	case labelSuspended:
		return suspendPath
	case labelReady:
		return readyPath
	}
	p, ok := k.Labels[name]
	if !ok {
		t.Fatalf("%s: no path for %s", k.Kind.Kind, name)
	}
	return p
}

func TestCompileRefusesWhatItCannotReadLikeKubeStateMetrics(t *testing.T) {
	for name, k := range map[string]Kind{
		"numeric lookup":   {Group: "g", Version: "v1", Kind: "K", Labels: map[string][]string{"x": {"status", "[code=1]"}}},
		"boolean lookup":   {Group: "g", Version: "v1", Kind: "K", Labels: map[string][]string{"x": {"status", "[ok=true]"}}},
		"key=value part":   {Group: "g", Version: "v1", Kind: "K", Labels: map[string][]string{"x": {"status", "a=b"}}},
		"map copy":         {Group: "g", Version: "v1", Kind: "K", Labels: map[string][]string{"x": {"metadata", "labels*"}}},
		"empty path":       {Group: "g", Version: "v1", Kind: "K", Labels: map[string][]string{"x": {}}},
		"common label":     {Group: "g", Version: "v1", Kind: "K", Labels: map[string][]string{"name": {"spec", "name"}}},
		"constant label":   {Group: "g", Version: "v1", Kind: "K", Labels: map[string][]string{"customresource_kind": {"kind"}}},
		"bad label name":   {Group: "g", Version: "v1", Kind: "K", Labels: map[string][]string{"a-b": {"spec"}}},
		"no group":         {Version: "v1", Kind: "K"},
		"bad lookup":       {Group: "g", Version: "v1", Kind: "K", Labels: map[string][]string{"x": {"[Ready]"}}},
		"empty lookup key": {Group: "g", Version: "v1", Kind: "K", Labels: map[string][]string{"x": {"[=Ready]"}}},
	} {
		if _, err := compile(k); err == nil {
			t.Errorf("%s: compiled, want an error", name)
		}
	}
}

// staticCollector is a Collector over fixed objects, every kind synced.
func staticCollector(t testing.TB, objs []*unstructured.Unstructured) *Collector {
	t.Helper()
	c := &Collector{desc: prometheus.NewDesc(MetricName, metricHelp, nil, nil), watches: map[*kind]*kindWatch{}}
	byGVK := map[schema.GroupVersionKind]*kindWatch{}
	for _, k := range Kinds {
		ck, err := compile(k)
		if err != nil {
			t.Fatal(err)
		}
		w := &kindWatch{kind: ck, store: toolscache.NewStore(toolscache.MetaNamespaceKeyFunc), synced: func() bool { return true }}
		c.kinds = append(c.kinds, ck)
		c.watches[ck] = w
		byGVK[k.GroupVersionKind()] = w
	}
	for _, u := range objs {
		w, ok := byGVK[u.GroupVersionKind()]
		if !ok {
			t.Fatalf("no kind %s", u.GroupVersionKind())
		}
		o, err := w.kind.strip(u)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.store.Add(o); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// scrape gathers c's series.
func scrape(t testing.TB, c prometheus.Collector) []ksmSeries {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []ksmSeries
	for _, mf := range mfs {
		if mf.GetType() != dto.MetricType_GAUGE {
			t.Errorf("%s is a %s, want a gauge", mf.GetName(), mf.GetType())
		}
		for _, m := range mf.Metric {
			if m.GetGauge().GetValue() != 1 {
				t.Errorf("%s %v = %v, want 1", mf.GetName(), m.Label, m.GetGauge().GetValue())
			}
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			out = append(out, ksmSeries{name: mf.GetName(), labels: labels})
		}
	}
	return out
}

// reference is what kube-state-metrics serves for objs under the reference configuration, each value passed
// through the tracker's one redaction step (which leaves every value but a URL with credentials as it is).
func reference(t testing.TB, objs []*unstructured.Unstructured) []ksmSeries {
	t.Helper()
	out := rawReference(t, objs)
	for _, s := range out {
		for k, v := range s.labels {
			s.labels[k] = redact.Text(v)
		}
	}
	return out
}

// rawReference is what kube-state-metrics serves for objs under the reference configuration.
func rawReference(t testing.TB, objs []*unstructured.Unstructured) []ksmSeries {
	t.Helper()
	var out []ksmSeries
	for _, r := range loadKSMConfig(t) {
		for _, u := range objs {
			if u.GroupVersionKind() == schema.GroupVersionKind(r.GroupVersionKind) {
				out = append(out, ksmEvaluate(t, r, u.Object)...)
			}
		}
	}
	return out
}

// loadObjects reads the test objects in testdata/objects.yaml, in namespace.
func loadObjects(t testing.TB, namespace string) []*unstructured.Unstructured {
	t.Helper()
	raw, err := os.ReadFile("testdata/objects.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out []*unstructured.Unstructured
	for _, doc := range bytes.Split(raw, []byte("\n---\n")) {
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			t.Fatal(err)
		}
		u.SetNamespace(namespace)
		out = append(out, u)
	}
	return out
}

func TestSeriesOfTestObjectsAreThoseOfKubeStateMetrics(t *testing.T) {
	objs := loadObjects(t, "apps")
	want := reference(t, objs)
	got := scrape(t, staticCollector(t, objs))
	if d := diffSeries(want, got); d != "" {
		t.Errorf("series differ from kube-state-metrics':\n%s", d)
	}
	if len(got) != len(objs) {
		t.Errorf("%d series for %d objects", len(got), len(objs))
	}
	// Redaction changes only the URL that carries credentials.
	raw := rawReference(t, objs)
	for i := range raw {
		key := seriesKey(raw[i].labels)
		if d := diffSeries(raw[i:i+1], want[i:i+1]); d != "" && key != "GitRepository apps/with-credentials" {
			t.Errorf("redaction changed the series of %s:\n%s", key, d)
		}
		if key == "GitRepository apps/with-credentials" && !strings.Contains(raw[i].labels["url"], "s3cret") {
			t.Errorf("kube-state-metrics would serve %q, want the credentials in it", raw[i].labels["url"])
		}
	}
	// The reference itself: real values, so that a wrong evaluator cannot hide a wrong collector.
	for key, labels := range map[string]map[string]string{
		"Kustomization apps/full": {"customresource_group": "kustomize.toolkit.fluxcd.io", "customresource_kind": "Kustomization",
			"customresource_version": "v1", "name": "full", "exported_namespace": "apps", "ready": "True", "suspended": "true",
			"revision": "main@sha1:0123456789abcdef0123456789abcdef01234567", "source_name": "full"},
		"Kustomization apps/bare": {"customresource_group": "kustomize.toolkit.fluxcd.io", "customresource_kind": "Kustomization",
			"customresource_version": "v1", "name": "bare", "exported_namespace": "apps", "source_name": "full"},
		"GitRepository apps/failing": {"customresource_group": "source.toolkit.fluxcd.io", "customresource_kind": "GitRepository",
			"customresource_version": "v1", "name": "failing", "exported_namespace": "apps", "ready": "False", "suspended": "false",
			"url": "https://example.com/acme/broken.git"},
		"GitRepository apps/reconciling": {"customresource_group": "source.toolkit.fluxcd.io", "customresource_kind": "GitRepository",
			"customresource_version": "v1", "name": "reconciling", "exported_namespace": "apps", "url": "https://example.com/acme/slow.git"},
		"HelmRelease apps/from-chart": {"customresource_group": "helm.toolkit.fluxcd.io", "customresource_kind": "HelmRelease",
			"customresource_version": "v2", "name": "from-chart", "exported_namespace": "apps", "ready": "True", "suspended": "true",
			"revision": "6.5.4", "chart_name": "podinfo", "chart_app_version": "6.5.4", "chart_source_name": "full"},
		"GitRepository apps/with-credentials": {"customresource_group": "source.toolkit.fluxcd.io", "customresource_kind": "GitRepository",
			"customresource_version": "v1", "name": "with-credentials", "exported_namespace": "apps", "url": "https://example.com/acme/private.git?REDACTED"},
		"Alert apps/full": {"customresource_group": "notification.toolkit.fluxcd.io", "customresource_kind": "Alert",
			"customresource_version": "v1beta3", "name": "full", "exported_namespace": "apps", "suspended": "true"},
	} {
		found := false
		for _, s := range want {
			if seriesKey(s.labels) == key {
				found = true
				if !maps.Equal(s.labels, labels) {
					t.Errorf("kube-state-metrics series of %s:\n got %v\nwant %v", key, s.labels, labels)
				}
			}
		}
		if !found {
			t.Errorf("no kube-state-metrics series for %s", key)
		}
	}
}

func TestObjectWithoutNameHasNoSeries(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"namespace": "apps"}, "spec": map[string]any{"suspend": true}}}
	u.SetGroupVersionKind(Kinds[0].GroupVersionKind())
	if got := scrape(t, staticCollector(t, []*unstructured.Unstructured{u})); len(got) != 0 {
		t.Errorf("series %v, want none", got)
	}
	if want := reference(t, []*unstructured.Unstructured{u}); len(want) != 0 {
		t.Errorf("kube-state-metrics series %v, want none", want)
	}
}

func TestStripKeepsOnlyKeyAndLabelValues(t *testing.T) {
	objs := loadObjects(t, "apps")
	c := staticCollector(t, nil)
	for _, u := range objs {
		for _, k := range c.kinds {
			if k.GroupVersionKind() != u.GroupVersionKind() {
				continue
			}
			out, err := k.strip(u)
			if err != nil {
				t.Fatal(err)
			}
			o := out.(*object)
			if o.Name != u.GetName() || o.Namespace != "apps" || len(o.Annotations) != 0 || len(o.ManagedFields) != 0 {
				t.Errorf("%s %s: kept %+v", k.Kind.Kind, u.GetName(), o.ObjectMeta)
			}
			if len(o.values) != len(k.paths) {
				t.Errorf("%s: %d values for %d paths", k.Kind.Kind, len(o.values), len(k.paths))
			}
			// Stripping a stripped object changes nothing.
			again, err := k.strip(o)
			if err != nil || again != any(o) {
				t.Errorf("%s: strip of a stripped object = %v, %v", k.Kind.Kind, again, err)
			}
		}
	}
	if _, err := c.kinds[0].strip("not an object"); err == nil || !strings.Contains(err.Error(), "unexpected") {
		t.Errorf("strip of a string: %v, want an error", err)
	}
}

// FuzzSeriesAreThoseOfKubeStateMetrics holds the collector's reading of any object to kube-state-metrics'.
func FuzzSeriesAreThoseOfKubeStateMetrics(f *testing.F) {
	for _, u := range loadObjects(f, "apps") {
		js, err := json.Marshal(u.Object)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(js)
	}
	f.Add([]byte(`{"metadata":{"name":"x"},"status":{"conditions":[{"type":"Ready"},{"type":"Ready","status":1.5e300}],"history":{"0":{"chartName":true}}}}`))
	f.Add([]byte(`{"metadata":{"name":{"a":[1,2]}},"spec":{"suspend":null,"url":[]},"status":{"history":[null,{"chartVersion":"1"}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var obj map[string]any
		if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
			return
		}
		// kube-state-metrics also reads [metadata, name] under every top-level field of an Info metric's object;
		// Flux's structural CRDs prune such fields, and the collector does not look there.
		for _, v := range obj {
			if m, ok := v.(map[string]any); ok {
				if md, ok := m["metadata"].(map[string]any); ok && md["name"] != nil {
					return
				}
			}
		}
		var objs []*unstructured.Unstructured
		for _, k := range Kinds {
			u := &unstructured.Unstructured{Object: deepCopyJSON(obj)}
			u.SetGroupVersionKind(k.GroupVersionKind())
			// Distinct store keys: the name is the label, the key only keeps objects apart.
			objs = append(objs, u)
		}
		want := reference(t, objs)
		got := scrape(t, staticCollector(t, objs))
		if d := diffSeries(want, got); d != "" {
			t.Errorf("object %s: series differ from kube-state-metrics':\n%s", data, d)
		}
	})
}

func deepCopyJSON(m map[string]any) map[string]any {
	js, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(js, &out)
	return out
}
