package app

import (
	"context"
	"fmt"
	"reflect"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// onceReader answers a repeated Get of one object from its first answer, so that the Flux objects of one
// snapshot that share a source (or a HelmChart) read it from the apiserver once.
type onceReader struct {
	client.Reader
	mu  sync.Mutex
	got map[onceKey]onceAnswer
}

// onceKey is an object's Go type (and kind, for unstructured objects) and key.
type onceKey struct {
	typ  reflect.Type
	kind string
	key  client.ObjectKey
}

// onceAnswer is a first Get's object, or its not-found error.
type onceAnswer struct {
	obj client.Object
	err error
}

func newOnceReader(r client.Reader) *onceReader {
	return &onceReader{Reader: r, got: map[onceKey]onceAnswer{}}
}

func (r *onceReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	k := onceKey{typ: reflect.TypeOf(obj), kind: obj.GetObjectKind().GroupVersionKind().String(), key: key}
	r.mu.Lock()
	a, ok := r.got[k]
	r.mu.Unlock()
	if ok {
		if a.err != nil {
			return a.err
		}
		dst, src := reflect.ValueOf(obj), reflect.ValueOf(a.obj.DeepCopyObject())
		if dst.Kind() != reflect.Pointer || src.Type() != dst.Type() {
			return fmt.Errorf("read %s: cached answer is a %s, want a %s", key, src.Type(), dst.Type())
		}
		dst.Elem().Set(src.Elem())
		return nil
	}
	err := r.Reader.Get(ctx, key, obj, opts...)
	switch {
	case err == nil:
		a = onceAnswer{obj: obj.DeepCopyObject().(client.Object)}
	case apierrors.IsNotFound(err):
		a = onceAnswer{err: err}
	default:
		// Timeouts and refusals may pass: the next object asks again.
		return err
	}
	r.mu.Lock()
	r.got[k] = a
	r.mu.Unlock()
	return err
}
