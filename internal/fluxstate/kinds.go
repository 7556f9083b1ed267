// Package fluxstate serves gotk_resource_info, one series per Flux object with its readiness, suspension,
// revision and source, so that a cluster needs no kube-state-metrics custom-resource-state configuration for
// Flux's dashboards and alerts. Each Flux kind is watched read-only through a cache that keeps only the values
// of its labels; series are made from the cache at scrape time, so those of deleted objects go with them.
package fluxstate

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// MetricName is the series of every Flux object, with value 1.
const MetricName = "gotk_resource_info"

// metricHelp is the help text of MetricName.
const metricHelp = "The current state of a Flux resource."

// Kind is one Flux kind reported as MetricName: its API, whether its Ready condition is a label, and its own
// labels, each the path of its value in the object as kube-state-metrics' labelsFromPath spells it.
type Kind struct {
	Group, Version, Kind string
	// Ready adds the ready label: the status of the object's Ready condition.
	Ready bool
	// Labels maps a label name to its path: field names, list indexes ("0") and list lookups ("[type=Ready]").
	Labels map[string][]string
}

// GroupVersionKind is the kind's API.
func (k Kind) GroupVersionKind() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: k.Group, Version: k.Version, Kind: k.Kind}
}

const (
	sourceGroup       = "source.toolkit.fluxcd.io"
	kustomizeGroup    = "kustomize.toolkit.fluxcd.io"
	helmGroup         = "helm.toolkit.fluxcd.io"
	notificationGroup = "notification.toolkit.fluxcd.io"
	imageGroup        = "image.toolkit.fluxcd.io"
)

// Kinds are the reported Flux kinds and their labels, those of Flux's own kube-state-metrics configuration
// (fluxcd/flux2-monitoring-example); a new kind is one entry here and one RBAC rule.
var Kinds = []Kind{
	{Group: sourceGroup, Version: "v1", Kind: "GitRepository", Ready: true, Labels: map[string][]string{
		labelRevision: artifactRevision, "url": spec("url")}},
	{Group: sourceGroup, Version: "v1", Kind: "OCIRepository", Ready: true, Labels: map[string][]string{
		labelRevision: artifactRevision, "url": spec("url")}},
	{Group: sourceGroup, Version: "v1", Kind: "HelmRepository", Ready: true, Labels: map[string][]string{
		labelRevision: artifactRevision, "url": spec("url")}},
	{Group: sourceGroup, Version: "v1", Kind: "HelmChart", Ready: true, Labels: map[string][]string{
		labelRevision: artifactRevision, "chart_name": spec("chart"), "chart_version": spec("version")}},
	{Group: sourceGroup, Version: "v1", Kind: "Bucket", Ready: true, Labels: map[string][]string{
		labelRevision: artifactRevision, "endpoint": spec("endpoint"), "bucket_name": spec("bucketName")}},
	{Group: kustomizeGroup, Version: "v1", Kind: "Kustomization", Ready: true, Labels: map[string][]string{
		labelRevision: status("lastAppliedRevision"), labelSourceName: refName(spec(), "sourceRef")}},
	{Group: helmGroup, Version: "v2", Kind: "HelmRelease", Ready: true, Labels: map[string][]string{
		labelRevision:       status("history", "0", "chartVersion"),
		"chart_name":        status("history", "0", "chartName"),
		"chart_app_version": status("history", "0", "appVersion"),
		"chart_ref_name":    refName(spec(), "chartRef"),
		"chart_source_name": refName(spec(), "chart", "spec", "sourceRef")}},
	{Group: imageGroup, Version: "v1", Kind: "ImageRepository", Ready: true, Labels: map[string][]string{
		"image": spec("image")}},
	{Group: imageGroup, Version: "v1", Kind: "ImagePolicy", Ready: true, Labels: map[string][]string{
		labelSourceName: refName(spec(), "imageRepositoryRef")}},
	{Group: imageGroup, Version: "v1", Kind: "ImageUpdateAutomation", Ready: true, Labels: map[string][]string{
		labelSourceName: refName(spec(), "sourceRef")}},
	{Group: notificationGroup, Version: "v1beta3", Kind: "Alert"},
	{Group: notificationGroup, Version: "v1beta3", Kind: "Provider"},
	{Group: notificationGroup, Version: "v1", Kind: "Receiver", Ready: true, Labels: map[string][]string{
		"webhook_path": status("webhookPath")}},
}

// Labels several kinds have.
const (
	labelRevision   = "revision"
	labelSourceName = "source_name"
)

var artifactRevision = status("artifact", labelRevision)

// spec and status are paths under an object's spec and status.
func spec(path ...string) []string   { return append([]string{"spec"}, path...) }
func status(path ...string) []string { return append([]string{"status"}, path...) }

// refName is the path of the name of the reference at path.
func refName(path []string, ref ...string) []string { return append(append(path, ref...), "name") }

// Labels every kind has: the kind's API as constants, and from the object its name, namespace and suspension.
const (
	labelGroup     = "customresource_group"
	labelKind      = "customresource_kind"
	labelVersion   = "customresource_version"
	labelName      = "name"
	labelNamespace = "exported_namespace"
	labelSuspended = "suspended"
	labelReady     = "ready"
)

var (
	namePath      = refName([]string{"metadata"})
	namespacePath = []string{"metadata", "namespace"}
	suspendPath   = spec("suspend")
	readyPath     = status("conditions", "[type=Ready]", "status")
)

// kind is a Kind ready to turn objects into series: every label in name order, constants and paths.
type kind struct {
	Kind
	labels []label
	// paths are the path labels' paths; an object keeps one value per path, in this order.
	paths []path
	// nameSlot is the slot of the name label: an object without a name has no series, as in kube-state-metrics.
	nameSlot int
}

// label is a constant (slot < 0) or the value the object holds in slot.
type label struct {
	name  string
	value string
	slot  int
}

// maxPathLabels bounds the path labels of a kind: an object records which are set in one word.
const maxPathLabels = 64

// compile checks k and orders its labels.
func compile(k Kind) (*kind, error) {
	if k.Group == "" || k.Version == "" || k.Kind == "" {
		return nil, fmt.Errorf("kind %q: group, version and kind are required", k.GroupVersionKind())
	}
	paths := map[string][]string{labelName: namePath, labelNamespace: namespacePath, labelSuspended: suspendPath}
	if k.Ready {
		paths[labelReady] = readyPath
	}
	constants := map[string]string{labelGroup: k.Group, labelKind: k.Kind, labelVersion: k.Version}
	for name, p := range k.Labels {
		if _, taken := paths[name]; taken {
			return nil, fmt.Errorf("kind %s: label %q is one every kind has", k.Kind, name)
		}
		if _, taken := constants[name]; taken {
			return nil, fmt.Errorf("kind %s: label %q is one every kind has", k.Kind, name)
		}
		paths[name] = p
	}
	if len(paths) > maxPathLabels {
		return nil, fmt.Errorf("kind %s: %d labels from paths, at most %d", k.Kind, len(paths), maxPathLabels)
	}
	out := &kind{Kind: k}
	for name, value := range constants {
		out.labels = append(out.labels, label{name: name, value: value, slot: -1})
	}
	for name := range paths {
		out.labels = append(out.labels, label{name: name})
	}
	slices.SortFunc(out.labels, func(a, b label) int { return strings.Compare(a.name, b.name) })
	for i := range out.labels {
		l := &out.labels[i]
		if !model.LegacyValidation.IsValidLabelName(l.name) {
			return nil, fmt.Errorf("kind %s: invalid label name %q", k.Kind, l.name)
		}
		if l.slot < 0 {
			continue
		}
		p, err := compilePath(paths[l.name])
		if err != nil {
			return nil, fmt.Errorf("kind %s: label %s: %w", k.Kind, l.name, err)
		}
		l.slot = len(out.paths)
		if l.name == labelName {
			out.nameSlot = l.slot
		}
		out.paths = append(out.paths, p)
	}
	return out, nil
}

// path is a compiled label path.
type path []step

// step is one part of a path: a field of a map, which is also an index when the value is a list (as
// kube-state-metrics reads a numeric part), or a lookup of the first list element whose key has value.
type step struct {
	field      string
	index      int
	isIndex    bool
	lookup     bool
	key, value string
}

// compilePath parses the parts of a label path. It accepts only what it reads exactly as kube-state-metrics does:
// plain fields and indexes, and lookups by a value that is neither a number nor a boolean.
func compilePath(parts []string) (path, error) {
	if len(parts) == 0 {
		return nil, errors.New("empty path")
	}
	out := make(path, 0, len(parts))
	for _, part := range parts {
		if strings.HasPrefix(part, "[") && strings.HasSuffix(part, "]") {
			key, value, ok := strings.Cut(part[1:len(part)-1], "=")
			if !ok || key == "" {
				return nil, fmt.Errorf("invalid list lookup %q: want [key=value]", part)
			}
			if _, err := strconv.ParseFloat(value, 64); err == nil {
				return nil, fmt.Errorf("list lookup %q: numeric values are not supported", part)
			}
			if _, err := strconv.ParseBool(value); err == nil {
				return nil, fmt.Errorf("list lookup %q: boolean values are not supported", part)
			}
			out = append(out, step{lookup: true, key: key, value: value})
			continue
		}
		if part == "" || strings.Contains(part, "=") || strings.HasPrefix(part, "*") || strings.HasSuffix(part, "*") {
			return nil, fmt.Errorf("unsupported path part %q", part)
		}
		s := step{field: part}
		if i, err := strconv.Atoi(part); err == nil {
			s.index, s.isIndex = i, true
		}
		out = append(out, s)
	}
	return out, nil
}

// get walks p from v; nil when the path does not resolve.
func (p path) get(v any) any {
	for _, s := range p {
		if v == nil {
			return nil
		}
		v = s.apply(v)
	}
	return v
}

func (s step) apply(v any) any {
	switch t := v.(type) {
	case map[string]any:
		if s.lookup {
			return nil
		}
		return t[s.field]
	case []any:
		if s.lookup {
			for _, e := range t {
				if m, ok := e.(map[string]any); ok {
					if c, ok := m[s.key].(string); ok && c == s.value {
						return m
					}
				}
			}
			return nil
		}
		if !s.isIndex {
			return nil
		}
		i := s.index
		if i < 0 {
			i += len(t)
		}
		if i < 0 || i >= len(t) {
			return nil
		}
		return t[i]
	}
	return nil
}

// format prints a value as kube-state-metrics prints a label value (%v).
func format(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case bool:
		return strconv.FormatBool(t)
	}
	return fmt.Sprint(v)
}
