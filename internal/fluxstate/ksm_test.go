package fluxstate

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// This file evaluates a kube-state-metrics customResourceState configuration the way kube-state-metrics does,
// for the parts Flux's configuration uses: metricNamePrefix, commonLabels and labelsFromPath on resources and
// metrics, and metrics of type Info with their own labelsFromPath. It is the reference the collector is held to.

// ksmSpec is the customResourceState configuration, under kube-state-metrics.customResourceState.config of
// the Helm values file that carries it.
type ksmSpec struct {
	Spec struct {
		Resources []ksmResource `json:"resources"`
	} `json:"spec"`
}

type ksmLabels struct {
	CommonLabels   map[string]string   `json:"commonLabels"`
	LabelsFromPath map[string][]string `json:"labelsFromPath"`
}

type ksmResource struct {
	ksmLabels        `json:",inline"`
	GroupVersionKind struct {
		Group   string `json:"group"`
		Version string `json:"version"`
		Kind    string `json:"kind"`
	} `json:"groupVersionKind"`
	MetricNamePrefix *string `json:"metricNamePrefix"`
	Metrics          []struct {
		ksmLabels `json:",inline"`
		Name      string `json:"name"`
		Help      string `json:"help"`
		Each      struct {
			Type string `json:"type"`
			Info *struct {
				Path           []string            `json:"path"`
				LabelsFromPath map[string][]string `json:"labelsFromPath"`
				LabelFromKey   string              `json:"labelFromKey"`
			} `json:"info"`
		} `json:"each"`
	} `json:"metrics"`
}

// ksmSeries is one series: its metric name and labels.
type ksmSeries struct {
	name   string
	labels map[string]string
}

// loadKSMConfig reads the reference configuration, failing on anything the evaluator does not implement.
func loadKSMConfig(t testing.TB) []ksmResource {
	t.Helper()
	raw, err := os.ReadFile("testdata/kube-state-metrics-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		KSM struct {
			CustomResourceState struct {
				Config any `json:"config"`
			} `json:"customResourceState"`
		} `json:"kube-state-metrics"`
	}
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	// Strict below: a field the evaluator does not model fails the test instead of being ignored.
	cfg, err := yaml.Marshal(values.KSM.CustomResourceState.Config)
	if err != nil {
		t.Fatal(err)
	}
	var spec ksmSpec
	if err := yaml.UnmarshalStrict(cfg, &spec); err != nil {
		t.Fatalf("reference configuration: %v", err)
	}
	res := spec.Spec.Resources
	if len(res) == 0 {
		t.Fatal("no customResourceState resources in the reference configuration")
	}
	for _, r := range res {
		for _, m := range r.Metrics {
			if m.Each.Type != "Info" || m.Each.Info == nil {
				t.Fatalf("%s metric %s: each.type %q is not evaluated by this test", r.GroupVersionKind.Kind, m.Name, m.Each.Type)
			}
		}
	}
	return res
}

// ksmEvaluate is what kube-state-metrics serves for obj under resource r.
func ksmEvaluate(t testing.TB, r ksmResource, obj map[string]any) []ksmSeries {
	t.Helper()
	prefix := "kube_customresource"
	if r.MetricNamePrefix != nil {
		prefix = *r.MetricNamePrefix
	}
	common := map[string]string{}
	maps.Copy(common, r.CommonLabels)
	common["customresource_group"] = r.GroupVersionKind.Group
	common["customresource_version"] = r.GroupVersionKind.Version
	common["customresource_kind"] = r.GroupVersionKind.Kind
	var out []ksmSeries
	for _, m := range r.Metrics {
		// Metric labels override resource labels of the same name.
		commonLabels := maps.Clone(common)
		maps.Copy(commonLabels, m.CommonLabels)
		paths := map[string][]string{}
		maps.Copy(paths, r.LabelsFromPath)
		maps.Copy(paths, m.LabelsFromPath)
		base := commonLabels
		ksmAddPathLabels(t, obj, paths, base)

		name := m.Name
		if prefix != "" {
			name = prefix + "_" + m.Name
		}
		info := m.Each.Info
		for _, labels := range ksmInfoValues(t, ksmGet(t, obj, info.Path), info.LabelsFromPath, info.LabelFromKey) {
			for k, v := range base {
				if _, ok := labels[k]; !ok {
					labels[k] = v
				}
			}
			out = append(out, ksmSeries{name: name, labels: labels})
		}
	}
	return out
}

// ksmInfoValues are the label sets of an Info metric over v, the value at its path.
func ksmInfoValues(t testing.TB, v any, paths map[string][]string, labelFromKey string) []map[string]string {
	one := func(v any) []map[string]string {
		if v == nil {
			return nil
		}
		labels := map[string]string{}
		ksmAddPathLabels(t, v, paths, labels)
		if len(labels) == 0 {
			return nil
		}
		return []map[string]string{labels}
	}
	switch it := v.(type) {
	case []any:
		var out []map[string]string
		for _, e := range it {
			out = append(out, one(e)...)
		}
		return out
	case map[string]any:
		out := one(v)
		// Every entry of a map is a candidate value too, labelled with its key.
		for key, e := range it {
			labels := map[string]string{}
			if key != "" && labelFromKey != "" {
				labels[labelFromKey] = key
			}
			ksmAddPathLabels(t, e, paths, labels)
			if len(labels) > 0 {
				out = append(out, labels)
			}
		}
		return out
	default:
		return one(v)
	}
}

// ksmAddPathLabels sets each label whose path resolves, printed with %v.
func ksmAddPathLabels(t testing.TB, obj any, paths map[string][]string, into map[string]string) {
	for name, p := range paths {
		if strings.HasPrefix(name, "*") || strings.HasSuffix(name, "*") {
			t.Fatalf("label %q: copying maps into labels is not evaluated by this test", name)
		}
		if v := ksmGet(t, obj, p); v != nil {
			into[name] = fmt.Sprintf("%v", v)
		}
	}
}

// ksmGet walks a path: map fields, list indexes and [key=value] lookups of list elements.
func ksmGet(t testing.TB, obj any, path []string) any {
	for _, part := range path {
		if obj == nil {
			return nil
		}
		if strings.HasPrefix(part, "[") && strings.HasSuffix(part, "]") {
			key, val, ok := strings.Cut(part[1:len(part)-1], "=")
			if !ok {
				t.Fatalf("invalid list lookup %q", part)
			}
			obj = ksmLookup(t, obj, key, val)
			continue
		}
		switch o := obj.(type) {
		case map[string]any:
			if strings.Contains(part, "=") {
				t.Fatalf("path part %q: key=value on maps is not evaluated by this test", part)
			}
			obj = o[part]
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil {
				return nil
			}
			if i < 0 {
				i += len(o)
			}
			if i < 0 || i >= len(o) {
				return nil
			}
			obj = o[i]
		default:
			return nil
		}
	}
	return obj
}

// ksmLookup is the first map in list obj whose key equals val, as a string (or as a number or boolean when val
// reads as one).
func ksmLookup(t testing.TB, obj any, key, val string) any {
	list, ok := obj.([]any)
	if !ok {
		return nil
	}
	if _, err := strconv.ParseFloat(val, 64); err == nil {
		t.Fatalf("lookup [%s=%s]: numeric lookups are not evaluated by this test", key, val)
	}
	b, boolErr := strconv.ParseBool(val)
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		c, set := m[key]
		if !set {
			continue
		}
		if c == any(val) {
			return m
		}
		if cb, ok := c.(bool); ok && boolErr == nil && cb == b {
			return m
		}
	}
	return nil
}

// seriesKey names a series by its kind and object for diffs.
func seriesKey(labels map[string]string) string {
	return labels["customresource_kind"] + " " + labels["exported_namespace"] + "/" + labels["name"]
}

// diffSeries compares two sets of gotk series label by label; empty when equal.
func diffSeries(want, got []ksmSeries) string {
	index := func(s []ksmSeries) (map[string]map[string]string, []string) {
		out := map[string]map[string]string{}
		var dups []string
		for _, e := range s {
			k := e.name + " " + seriesKey(e.labels)
			if _, dup := out[k]; dup {
				dups = append(dups, k)
			}
			out[k] = e.labels
		}
		return out, dups
	}
	w, wd := index(want)
	g, gd := index(got)
	var b strings.Builder
	for _, d := range wd {
		fmt.Fprintf(&b, "kube-state-metrics: more than one series %s\n", d)
	}
	for _, d := range gd {
		fmt.Fprintf(&b, "collector: more than one series %s\n", d)
	}
	for _, k := range slices.Sorted(maps.Keys(w)) {
		gl, ok := g[k]
		if !ok {
			fmt.Fprintf(&b, "%s: missing\n", k)
			continue
		}
		wl := w[k]
		names := slices.Sorted(maps.Keys(wl))
		for n := range gl {
			if _, ok := wl[n]; !ok {
				names = append(names, n)
			}
		}
		for _, n := range names {
			wv, wok := wl[n]
			gv, gok := gl[n]
			switch {
			case wok && !gok:
				fmt.Fprintf(&b, "%s: label %s missing, want %q\n", k, n, wv)
			case !wok && gok:
				fmt.Fprintf(&b, "%s: label %s=%q, want no such label\n", k, n, gv)
			case wv != gv:
				fmt.Fprintf(&b, "%s: label %s=%q, want %q\n", k, n, gv, wv)
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(g)) {
		if _, ok := w[k]; !ok {
			fmt.Fprintf(&b, "%s: not served by kube-state-metrics\n", k)
		}
	}
	return b.String()
}
