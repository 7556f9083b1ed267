package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/github/githubtest"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/apptest"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/stack"
)

// owner is the forge owner the world's repository is served under.
const owner = "acme"

// statusContext is the cluster's aggregated context: --cluster-name e2e.
const statusContext = "flux/e2e"

// forgeWorld is a world whose repository is also acme/<namespace> on a fake GitHub that takes its commit
// statuses: Flux fetches it from the stack's git server under /acme/, as from a forge, and the GitRepository's
// forge annotation names GitHub for its statuses.
type forgeWorld struct {
	*world
	gh *githubtest.Server
	tr *apptest.Tracker
}

func newForgeWorld(t *testing.T, kustomizations ...string) *forgeWorld {
	t.Helper()
	w := newWorldFrom(t, func(r *stack.Repo) string { return flux.GitURLOf(owner, r.Name()) },
		[]func(*sourcev1.GitRepository){func(gr *sourcev1.GitRepository) {
			gr.Annotations = map[string]string{"flux-commit-tracker.io/forge": "github"}
		}}, kustomizations...)
	gh := githubtest.NewServer()
	t.Cleanup(gh.Close)
	// The fake answers on localhost, so 127.0.0.1 (the git server) is no GitHub host: commits are read with git.
	api := strings.Replace(gh.URL, "127.0.0.1", "localhost", 1)
	tr := w.startTrackerWith(map[string]string{"GITHUB_TOKEN": "e2e-token"}, "--commit-status", "--github-api-url", api)
	apptest.Eventually(t, 20*time.Second, "baselines", func() bool {
		return strings.Count(tr.String(), "first sight of object") == len(kustomizations)
	})
	return &forgeWorld{world: w, gh: gh, tr: tr}
}

// statuses is what the fake holds on sha under the cluster's context, oldest first, as "state: description".
func (w *forgeWorld) statuses(sha string) []string {
	var out []string
	for _, st := range w.gh.CommitStatuses(owner, w.ns, sha) {
		if st.Context == statusContext {
			out = append(out, st.State+": "+st.Description)
		}
	}
	return out
}

func (w *forgeWorld) latestIs(sha, want string) bool {
	h := w.statuses(sha)
	return len(h) > 0 && h[len(h)-1] == want
}

// postedOnce fails the test when a status was posted twice on one of shas.
func (w *forgeWorld) postedOnce(shas ...string) {
	w.t.Helper()
	for _, sha := range shas {
		seen := map[string]int{}
		for _, st := range w.gh.CommitStatuses(owner, w.ns, sha) {
			seen[st.Context+" | "+st.State+" | "+st.Description]++
		}
		for k, n := range seen {
			if n > 1 {
				w.t.Errorf("commit %s: status %q posted %d times", sha[:7], k, n)
			}
		}
	}
}

// suspend sets spec.suspend of the Kustomization k, as `flux suspend` and `flux resume` do.
func (w *forgeWorld) suspend(k string, suspended bool) {
	w.t.Helper()
	patch := fmt.Sprintf(`{"spec":{"suspend":%t}}`, suspended)
	obj := &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: k}}
	if err := flux.Client().Patch(w.ctx, obj, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		w.t.Fatal(err)
	}
}

// fetched is when source-controller stored the artifact of sha, the truth of "fetched".
func (w *forgeWorld) fetched(sha string) time.Time {
	w.t.Helper()
	var src sourcev1.GitRepository
	apptest.Eventually(w.t, 30*time.Second, "artifact of "+sha[:7], func() bool {
		return flux.Client().Get(w.ctx, client.ObjectKey{Namespace: w.ns, Name: "manifests"}, &src) == nil &&
			src.Status.Artifact != nil && src.Status.Artifact.Revision == stack.Revision(sha)
	})
	return src.Status.Artifact.LastUpdateTime.Time
}

// success is the status of a commit applied by every one of n objects, the last at applied, first fetched at
// fetched: how the tracker words it.
func (w *forgeWorld) success(sha string, n int, applied, fetched time.Time) string {
	c := w.times[sha]
	return fmt.Sprintf("success: applied on %d/%d in %s (fetch %s)", n, n, latency.Human(applied.Sub(c)), latency.Human(fetched.Sub(c)))
}

// onlyPendingBefore fails the test unless every status of sha before its last is pending and the last is want.
func (w *forgeWorld) onlyPendingBefore(sha, want string) {
	w.t.Helper()
	h := w.statuses(sha)
	if len(h) == 0 || h[len(h)-1] != want || slices.ContainsFunc(h[:len(h)-1], func(s string) bool { return !strings.HasPrefix(s, "pending: ") }) {
		w.t.Errorf("commit %s: statuses %q, want pending ones, then %q", sha[:7], h, want)
	}
}

// Three commits fetched in one reconcile and applied by two Kustomizations: each is pending on both while
// they are suspended, then succeeds once both applied it, with the real fetch and apply times.
func TestCommitStatusesOfABatchOnRealFlux(t *testing.T) {
	w := newForgeWorld(t, "app", "web")
	for _, k := range []string{"app", "web"} {
		w.suspend(k, true)
	}
	c1 := w.commit("one", "1", nil)
	c2 := w.commit("two", "2", nil)
	c3 := w.commit("three", "3", nil)
	batch := []string{c1, c2, c3}
	w.reconcile()
	fetched := w.fetched(c3)
	apptest.Eventually(t, 30*time.Second, "every commit pending on both objects", func() bool {
		for _, c := range batch {
			if !w.latestIs(c, "pending: applied on 0/2, 2 pending") {
				return false
			}
		}
		return true
	})
	for _, k := range []string{"app", "web"} {
		w.suspend(k, false)
	}
	applied := w.waitApplied("app", c3)
	if at := w.waitApplied("web", c3); at.After(applied) {
		applied = at
	}
	for _, c := range batch {
		want := w.success(c, 2, applied, fetched)
		apptest.Eventually(t, 30*time.Second, "commit "+c[:7]+" applied everywhere", func() bool { return w.latestIs(c, want) })
		w.onlyPendingBefore(c, want)
	}
	w.postedOnce(batch...)
}

// A manifest kustomize-controller cannot apply: its commit fails on the object that applies it, while the
// other object applies it; the fix succeeds, and so does the broken commit, which the fix contains.
func TestCommitStatusOfABrokenManifestOnRealFlux(t *testing.T) {
	w := newForgeWorld(t, "app", "web")
	broken := w.commit("broken", "1", map[string]string{"app/broken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: [not, a, map]\n"})
	w.reconcile()
	fetchedBroken := w.fetched(broken)
	webBroken := w.waitApplied("web", broken)
	apptest.Eventually(t, 30*time.Second, "Flux fails on the broken revision", func() bool {
		var ks kustomizev1.Kustomization
		if err := flux.Client().Get(w.ctx, client.ObjectKey{Namespace: w.ns, Name: "app"}, &ks); err != nil {
			return false
		}
		ready := apimeta.FindStatusCondition(ks.Status.Conditions, meta.ReadyCondition)
		return ks.Status.LastAttemptedRevision == stack.Revision(broken) && ready != nil && ready.Status == metav1.ConditionFalse
	})
	failing := "failure: failing on 1/2: Kustomization " + w.ns + "/app"
	apptest.Eventually(t, 30*time.Second, "the broken commit failing", func() bool { return w.latestIs(broken, failing) })

	fix := w.commit("fix", "2", map[string]string{"app/broken.yaml": ""})
	w.reconcile()
	fetchedFix := w.fetched(fix)
	appFix, webFix := w.waitApplied("app", fix), w.waitApplied("web", fix)
	wantBroken := w.success(broken, 2, later(appFix, webBroken), fetchedBroken)
	wantFix := w.success(fix, 2, later(appFix, webFix), fetchedFix)
	apptest.Eventually(t, 30*time.Second, "both commits applied everywhere", func() bool {
		return w.latestIs(broken, wantBroken) && w.latestIs(fix, wantFix)
	})
	// While kustomize-controller applies the fix, Ready is Unknown: the broken commit may show pending again.
	h := w.statuses(broken)
	first := slices.Index(h, failing)
	if first < 0 || slices.ContainsFunc(h[:first], func(s string) bool { return !strings.HasPrefix(s, "pending: ") }) ||
		slices.ContainsFunc(h[first+1:len(h)-1], func(s string) bool { return s != failing && !strings.HasPrefix(s, "pending: ") }) {
		t.Errorf("broken commit's statuses %q: want (pending,) %q, (pending,) then %q", h, failing, wantBroken)
	}
	w.onlyPendingBefore(fix, wantFix)
	w.postedOnce(broken, fix)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
