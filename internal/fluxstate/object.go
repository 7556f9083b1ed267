package fluxstate

import (
	"fmt"
	"math/bits"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/redact"
)

// object is what the cache keeps of a Flux object: its key and the values of its kind's path labels.
type object struct {
	metav1.ObjectMeta
	values []string
	// set has bit i when path label i resolved; a label whose path does not resolve is left out.
	set uint64
}

func (o *object) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

func (o *object) DeepCopyObject() runtime.Object {
	c := &object{values: slices.Clone(o.values), set: o.set}
	o.DeepCopyInto(&c.ObjectMeta)
	return c
}

// strip is the cache's transform: it keeps of an object its key and label values. Objects already stripped
// pass through, as the informer may hand them in again.
func (k *kind) strip(in any) (any, error) {
	switch o := in.(type) {
	case *object, toolscache.DeletedFinalStateUnknown:
		return o, nil
	case *unstructured.Unstructured:
		return k.object(o), nil
	default:
		return nil, fmt.Errorf("%s cache: unexpected %T", k.Kind.Kind, in)
	}
}

// object reads the label values of u.
func (k *kind) object(u *unstructured.Unstructured) *object {
	o := &object{
		ObjectMeta: metav1.ObjectMeta{Namespace: u.GetNamespace(), Name: u.GetName(), ResourceVersion: u.GetResourceVersion()},
		values:     make([]string, len(k.paths)),
	}
	for i, p := range k.paths {
		// Values leave the process through the one redaction step: a source URL may carry credentials.
		if v := p.get(u.Object); v != nil {
			o.values[i], o.set = redact.Text(format(v)), o.set|1<<i
		}
	}
	return o
}

// metric is o's series; nil for an object without a name.
func (k *kind) metric(desc *prometheus.Desc, o *object) prometheus.Metric {
	if o.set&(1<<k.nameSlot) == 0 {
		return nil
	}
	n := len(k.labels) - len(k.paths) + bits.OnesCount64(o.set)
	m := &info{desc: desc, one: 1, pairs: make([]dto.LabelPair, n), labels: make([]*dto.LabelPair, n)}
	i := 0
	for j := range k.labels {
		l := &k.labels[j]
		switch {
		case l.slot < 0:
			m.pairs[i].Value = &l.value
		case o.set&(1<<l.slot) != 0:
			m.pairs[i].Value = &o.values[l.slot]
		default:
			continue
		}
		m.pairs[i].Name = &l.name
		m.labels[i] = &m.pairs[i]
		i++
	}
	return m
}

// info is one series of value 1. Its label names and values point into the kind and the cached object, which
// are never changed once made.
type info struct {
	desc   *prometheus.Desc
	one    float64
	gauge  dto.Gauge
	pairs  []dto.LabelPair
	labels []*dto.LabelPair
}

func (m *info) Desc() *prometheus.Desc { return m.desc }

func (m *info) Write(out *dto.Metric) error {
	m.gauge.Value = &m.one
	out.Label, out.Gauge = m.labels, &m.gauge
	return nil
}
