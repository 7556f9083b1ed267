package kubecache_test

import (
	"context"
	"errors"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/kubecache"
)

var fast = wait.Backoff{Duration: time.Millisecond, Factor: 2, Cap: 5 * time.Millisecond, Steps: 1 << 20}

func refused() error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
}

// failing is a lister-watcher whose first fails calls to each of List and Watch return err. Like a fake
// client, it says it cannot serve watch-list streams, so the reflector lists then watches.
func failing(fails int32, err error, lists, watches *atomic.Int32) toolscache.ListerWatcher {
	return fakeLW{fails: fails, err: err, lists: lists, watches: watches}
}

type fakeLW struct {
	fails          int32
	err            error
	lists, watches *atomic.Int32
}

func (f fakeLW) List(opts metav1.ListOptions) (runtime.Object, error) {
	if f.lists.Add(1) <= f.fails {
		return nil, f.err
	}
	return &corev1.ConfigMapList{ListMeta: metav1.ListMeta{ResourceVersion: "7"}}, nil
}

func (f fakeLW) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	if f.watches.Add(1) <= f.fails {
		return nil, f.err
	}
	return watch.NewFake(), nil
}

func (fakeLW) IsWatchListSemanticsUnSupported() bool { return true }

func TestOutagesAreRetriedUntilTheAPIServerAnswers(t *testing.T) {
	gr := schema.GroupResource{Resource: "configmaps"}
	for name, err := range map[string]error{
		"connection refused": refused(),
		"429":                apierrors.NewTooManyRequests("starting", 1),
		"503":                apierrors.NewServiceUnavailable("starting"),
		"server timeout":     apierrors.NewServerTimeout(gr, "list", 1),
	} {
		t.Run(name, func(t *testing.T) {
			var lists, watches atomic.Int32
			lw := kubecache.Patient(failing(5, err, &lists, &watches), fast).(toolscache.ListerWatcherWithContext)
			list, lerr := lw.ListWithContext(t.Context(), metav1.ListOptions{})
			if lerr != nil || list.(*corev1.ConfigMapList).ResourceVersion != "7" {
				t.Fatalf("List = %v, %v; want the list once the apiserver answers", list, lerr)
			}
			w, werr := lw.WatchWithContext(t.Context(), metav1.ListOptions{})
			if werr != nil || w == nil {
				t.Fatalf("Watch = %v, %v; want a watch once the apiserver answers", w, werr)
			}
			w.Stop()
			if lists.Load() != 6 || watches.Load() != 6 {
				t.Errorf("%d lists and %d watches, want 6 each (5 failures, then success)", lists.Load(), watches.Load())
			}
		})
	}
}

func TestRequestErrorsReachTheReflectorAtOnce(t *testing.T) {
	gr := schema.GroupResource{Resource: "configmaps"}
	for name, err := range map[string]error{
		"forbidden": apierrors.NewForbidden(gr, "", errors.New("no RBAC")),
		"gone":      apierrors.NewResourceExpired("too old resource version"),
		"not found": apierrors.NewNotFound(gr, "x"),
	} {
		t.Run(name, func(t *testing.T) {
			var lists, watches atomic.Int32
			lw := kubecache.Patient(failing(5, err, &lists, &watches), fast).(toolscache.ListerWatcherWithContext)
			if _, got := lw.WatchWithContext(t.Context(), metav1.ListOptions{}); !errors.Is(got, err) {
				t.Errorf("Watch error = %v, want %v", got, err)
			}
			if _, got := lw.ListWithContext(t.Context(), metav1.ListOptions{}); !errors.Is(got, err) {
				t.Errorf("List error = %v, want %v", got, err)
			}
			if lists.Load() != 1 || watches.Load() != 1 {
				t.Errorf("%d lists and %d watches, want 1 each: not retried", lists.Load(), watches.Load())
			}
		})
	}
}

func TestRetryEndsWithTheContext(t *testing.T) {
	var lists, watches atomic.Int32
	lw := kubecache.Patient(failing(1<<30, refused(), &lists, &watches), fast)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		for lists.Load() < 3 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := lw.(toolscache.ListerWatcherWithContext).ListWithContext(ctx, metav1.ListOptions{})
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("error = %v, want the last outage error once the context ended", err)
	}
}

// The informer built for the cache lists and watches through the patient lister-watcher: it syncs after an
// outage without the reflector backing off.
func TestInformerSyncsAfterAnOutage(t *testing.T) {
	var lists, watches atomic.Int32
	inf := kubecache.NewInformer(failing(3, refused(), &lists, &watches), &corev1.ConfigMap{}, 0, toolscache.Indexers{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go inf.RunWithContext(ctx)
	if !toolscache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("informer did not sync")
	}
	if n := lists.Load(); n != 4 {
		t.Errorf("%d lists, want 4: three outage errors retried by the lister-watcher, then the list", n)
	}
}
