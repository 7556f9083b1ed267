package telemetry

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// Aggregation is the level the per-object series are summed to, for fleets too large to keep a series per object.
type Aggregation string

// Aggregation levels.
const (
	// AggregateObject keeps a series per Flux object. The default.
	AggregateObject Aggregation = "object"
	// AggregateNamespace sums the objects of a namespace: flux.kind, flux.name and vcs.repository.url.full go.
	AggregateNamespace Aggregation = "namespace"
	// AggregateCluster sums every object of the cluster: k8s.namespace.name goes too.
	AggregateCluster Aggregation = "cluster"
)

// Aggregations lists every level, default first.
var Aggregations = []Aggregation{AggregateObject, AggregateNamespace, AggregateCluster}

// ParseAggregation parses an aggregation level.
func ParseAggregation(s string) (Aggregation, error) {
	return parseEnum("metrics aggregation", s, Aggregations)
}

// String implements pflag.Value.
func (a Aggregation) String() string { return string(a) }

// Set implements pflag.Value.
func (a *Aggregation) Set(s string) error { return setEnum(a, ParseAggregation, s) }

// Type implements pflag.Value.
func (a Aggregation) Type() string { return "level" }

// summed are the object attribute keys the level sums away.
func (a Aggregation) summed() []string {
	switch a {
	case AggregateNamespace:
		return []string{AttrKind, AttrName, AttrRepository}
	case AggregateCluster:
		return []string{AttrNamespace, AttrKind, AttrName, AttrRepository}
	}
	return nil
}

// Attributes are the attribute keys d's series carry at this level, in d's order.
func (a Aggregation) Attributes(d Definition) []string {
	summed := a.summed()
	return slices.DeleteFunc(slices.Clone(d.Attributes), func(k string) bool { return slices.Contains(summed, k) })
}

// filter keeps the attributes of this level; nil keeps all.
func (a Aggregation) filter() attribute.Filter {
	summed := a.summed()
	if len(summed) == 0 {
		return nil
	}
	return attribute.NewDenyKeysFilter(keys(summed)...)
}

// groupFilter keeps the object attributes that name one group of series: an object, a namespace or the cluster.
func (a Aggregation) groupFilter() attribute.Filter {
	summed := a.summed()
	var group []string
	for _, k := range []string{AttrCluster, AttrNamespace, AttrKind, AttrName} {
		if !slices.Contains(summed, k) {
			group = append(group, k)
		}
	}
	return attribute.NewAllowKeysFilter(keys(group)...)
}

// views sum the tracker's instruments to this level; histograms and counters merge natively in the SDK.
func (a Aggregation) views() []sdkmetric.Option {
	f := a.filter()
	if f == nil {
		return nil
	}
	view := sdkmetric.NewView(
		sdkmetric.Instrument{Name: "*", Scope: instrumentation.Scope{Name: ScopeName}},
		sdkmetric.Stream{AttributeFilter: f},
	)
	return []sdkmetric.Option{sdkmetric.WithView(view)}
}

func keys(ss []string) []attribute.Key {
	out := make([]attribute.Key, len(ss))
	for i, s := range ss {
		out[i] = attribute.Key(s)
	}
	return out
}

// objectKey identifies a Flux object in the cluster the tracker watches.
type objectKey struct{ namespace, kind, name string }

// members tracks the objects that recorded into each group of series, so a group's series are forgotten with
// its last object.
type members struct {
	group attribute.Filter

	mu      sync.Mutex
	of      map[objectKey]attribute.Set // an object's group
	objects map[attribute.Distinct]int  // objects per group
}

func newMembers(a Aggregation) *members {
	return &members{group: a.groupFilter(), of: map[objectKey]attribute.Set{}, objects: map[attribute.Distinct]int{}}
}

// add notes that a recorded into the series set belongs to.
func (m *members) add(a ObjectAttributes, set attribute.Set) {
	k := objectKey{a.Namespace, a.Kind, a.Name}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.of[k]; ok {
		return
	}
	g, _ := set.Filter(m.group)
	m.of[k] = g
	m.objects[g.Equivalent()]++
}

// remove forgets a and returns its group when a was the group's last object.
func (m *members) remove(a ObjectAttributes) (attribute.Set, bool) {
	k := objectKey{a.Namespace, a.Kind, a.Name}
	m.mu.Lock()
	defer m.mu.Unlock()
	g, ok := m.of[k]
	if !ok {
		return attribute.Set{}, false
	}
	delete(m.of, k)
	if m.objects[g.Equivalent()]--; m.objects[g.Equivalent()] > 0 {
		return attribute.Set{}, false
	}
	delete(m.objects, g.Equivalent())
	return g, true
}

// parseEnum returns the one of values that s names, ignoring case and surrounding space.
func parseEnum[T ~string](what, s string, values []T) (T, error) {
	for _, v := range values {
		if strings.EqualFold(strings.TrimSpace(s), string(v)) {
			return v, nil
		}
	}
	return "", fmt.Errorf("invalid %s %q: must be one of %s", what, s, joinEnum(values))
}

// setEnum parses s into dst, leaving dst as it was on an error.
func setEnum[T ~string](dst *T, parse func(string) (T, error), s string) error {
	v, err := parse(s)
	if err != nil {
		return err
	}
	*dst = v
	return nil
}

func joinEnum[T ~string](values []T) string {
	s := make([]string, len(values))
	for i, v := range values {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}
