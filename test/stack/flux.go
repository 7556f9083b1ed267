package stack

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Revision is the Flux revision of commit sha on Branch, as in status.artifact.revision and lastAppliedRevision.
func Revision(sha string) string { return Branch + "@sha1:" + sha }

// AppliedMessage is the Ready condition message kustomize-controller sets once it applied sha.
func AppliedMessage(sha string) string { return "Applied revision: " + Revision(sha) }

// CreateGitRepository creates a GitRepository following Branch of url, with spec.interval Options.Interval.
// opts adjust the object before it is created.
func (s *Stack) CreateGitRepository(ctx context.Context, ns, name, url string, opts ...func(*sourcev1.GitRepository)) error {
	repo := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: sourcev1.GitRepositorySpec{
			URL:       url,
			Interval:  metav1.Duration{Duration: s.opts.Interval},
			Timeout:   &metav1.Duration{Duration: 20 * time.Second},
			Reference: &sourcev1.GitRepositoryRef{Branch: Branch},
		},
	}
	for _, o := range opts {
		o(repo)
	}
	if err := s.client.Create(ctx, repo); err != nil {
		return fmt.Errorf("create GitRepository %s/%s: %w", ns, name, err)
	}
	return nil
}

// CreateKustomization creates a Kustomization applying path of the GitRepository source (in ns) with
// spec.interval Options.Interval, prune on and wait off (ConfigMaps have no health to wait for).
// opts adjust the object before it is created, e.g. to set spec.targetNamespace.
func (s *Stack) CreateKustomization(ctx context.Context, ns, name, source, path string, opts ...func(*kustomizev1.Kustomization)) error {
	ks := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: kustomizev1.KustomizationSpec{
			Interval:  metav1.Duration{Duration: s.opts.Interval},
			Path:      path,
			Prune:     true,
			Wait:      false,
			Timeout:   &metav1.Duration{Duration: 30 * time.Second},
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: source},
		},
	}
	for _, o := range opts {
		o(ks)
	}
	if err := s.client.Create(ctx, ks); err != nil {
		return fmt.Errorf("create Kustomization %s/%s: %w", ns, name, err)
	}
	return nil
}

// RequestReconcile asks source-controller to fetch the GitRepository ns/name now (as `flux reconcile source git`
// does) by setting reconcile.fluxcd.io/requestedAt; kustomize-controller follows the new artifact at once.
func (s *Stack) RequestReconcile(ctx context.Context, ns, name string) error {
	return s.requestReconcile(ctx, &sourcev1.GitRepository{}, ns, name)
}

// RequestKustomizationReconcile asks kustomize-controller to apply the Kustomization ns/name now.
func (s *Stack) RequestKustomizationReconcile(ctx context.Context, ns, name string) error {
	return s.requestReconcile(ctx, &kustomizev1.Kustomization{}, ns, name)
}

func (s *Stack) requestReconcile(ctx context.Context, obj client.Object, ns, name string) error {
	obj.SetNamespace(ns)
	obj.SetName(name)
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, meta.ReconcileRequestAnnotation, time.Now().Format(time.RFC3339Nano))
	if err := s.client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		return fmt.Errorf("request reconcile of %s/%s: %w", ns, name, err)
	}
	return nil
}

// WaitApplied waits until the Kustomization ns/name is Ready with the message naming commit sha and its
// status.lastAppliedRevision is that revision, and returns it. Both are needed: kustomize-controller patches the
// conditions and the rest of the status in two requests (fluxcd/pkg/runtime/patch), so for a moment Ready already
// names the new revision while lastAppliedRevision still holds the old one.
// On timeout (ctx) the error carries the Kustomization's and its source's conditions and the controllers' logs.
func (s *Stack) WaitApplied(ctx context.Context, ns, name, sha string) (*kustomizev1.Kustomization, error) {
	want := AppliedMessage(sha)
	var ks kustomizev1.Kustomization
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := s.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ks)
		if err == nil {
			if c := apimeta.FindStatusCondition(ks.Status.Conditions, meta.ReadyCondition); c != nil &&
				c.Status == metav1.ConditionTrue && c.Message == want && ks.Status.LastAppliedRevision == Revision(sha) {
				return &ks, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for Kustomization %s/%s to be %q: %w\n%s\n%s", ns, name, want, ctx.Err(), s.describe(ns, &ks), s.Logs(15))
		case <-tick.C:
		}
	}
}

// describe summarises a Kustomization's and its GitRepository's conditions for failure messages.
func (s *Stack) describe(ns string, ks *kustomizev1.Kustomization) string {
	var b strings.Builder
	conds := func(kind, name string, cs []metav1.Condition) {
		sort.Slice(cs, func(i, j int) bool { return cs[i].Type < cs[j].Type })
		fmt.Fprintf(&b, "%s %s/%s:", kind, ns, name)
		for _, c := range cs {
			fmt.Fprintf(&b, " %s=%s (%s: %s);", c.Type, c.Status, c.Reason, c.Message)
		}
		b.WriteString("\n")
	}
	conds("Kustomization", ks.Name, ks.Status.Conditions)
	if src := ks.Spec.SourceRef.Name; src != "" {
		var repo sourcev1.GitRepository
		// A fresh context: the caller's has already ended.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: src}, &repo); err == nil {
			conds("GitRepository", src, repo.Status.Conditions)
		}
	}
	return b.String()
}

// ConfigMapManifest renders a ConfigMap manifest for a Repo file.
func ConfigMapManifest(ns, name string, data map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: %s\n", name, ns)
	if len(data) == 0 {
		return b.String()
	}
	b.WriteString("data:\n")
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s: %q\n", k, data[k])
	}
	return b.String()
}
