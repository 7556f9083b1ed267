package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/forge"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/fluxstatus"
)

// statusContext is the cluster's aggregated context: --cluster-name test-cluster.
const statusContext = "flux/test-cluster"

const forgePosts = "flux_commit_tracker_forge_posts_total"

// failApply writes the status kustomize-controller writes when its apply of sha fails at at: the applied
// revision stays, the attempted one is sha, Ready=False.
func (s *scenario) failApply(name, sha string, at time.Time) {
	s.t.Helper()
	ctx := context.Background()
	var k kustomizev1.Kustomization
	if err := env.Client.Get(ctx, keyOf(s.ns, name), &k); err != nil {
		s.t.Fatal(err)
	}
	k.Status.LastAttemptedRevision = fluxstatus.Revision(sha)
	k.Status.Conditions = []metav1.Condition{{Type: meta.ReadyCondition, Status: metav1.ConditionFalse, Reason: "ReconciliationFailed",
		Message: "ConfigMap/" + s.ns + "/app dry-run failed: invalid", LastTransitionTime: metav1.NewTime(at), ObservedGeneration: k.Generation}}
	if err := env.Client.Status().Update(ctx, &k); err != nil {
		s.t.Fatal(err)
	}
}

// commitStatuses is what the fake GitHub holds on sha under the cluster's context, oldest first, as "state: description".
func (s *scenario) commitStatuses(sha string) []string {
	var out []string
	for _, st := range s.gh.CommitStatuses("acme", "manifests", sha) {
		if st.Context == statusContext {
			out = append(out, st.State+": "+st.Description)
		}
	}
	return out
}

// latestIs reports whether sha's newest status on the cluster's context is want.
func (s *scenario) latestIs(sha, want string) bool {
	h := s.commitStatuses(sha)
	return len(h) > 0 && h[len(h)-1] == want
}

// postedOnce fails the test when the fake holds a status twice on one of shas: the same context, state and
// description posted again.
func (s *scenario) postedOnce(shas ...string) {
	s.t.Helper()
	for _, sha := range shas {
		seen := map[string]int{}
		for _, st := range s.gh.CommitStatuses("acme", "manifests", sha) {
			seen[st.Context+" | "+st.State+" | "+st.Description]++
		}
		for k, n := range seen {
			if n > 1 {
				s.t.Errorf("commit %s: status %q posted %d times", sha[:7], k, n)
			}
		}
	}
}

// postCount counts the POSTs the fake GitHub answered.
func (s *scenario) postCount() int {
	n := 0
	for _, r := range s.gh.Requests() {
		if r.Method == http.MethodPost {
			n++
		}
	}
	return n
}

// successOnBoth is the success status of a commit committed at committed, applied by both objects, the last
// at applied, first fetched at fetched: how the tracker words it.
func successOnBoth(committed, applied, fetched time.Time) string {
	return fmt.Sprintf("success: applied on 2/2 in %s (fetch %s)", latency.Human(applied.Sub(committed)), latency.Human(fetched.Sub(committed)))
}

// pendingThenSuccess fails the test unless history is one or more pending statuses and then one success, want.
func pendingThenSuccess(t *testing.T, sha string, history []string, want string) {
	t.Helper()
	n := len(history)
	if n < 2 || history[n-1] != want {
		t.Errorf("commit %s: statuses %q, want pending ones and then %q", sha[:7], history, want)
		return
	}
	for _, h := range history[:n-1] {
		if !strings.HasPrefix(h, "pending: applied on ") {
			t.Errorf("commit %s: status %q before the success, want only pending ones: %q", sha[:7], h, history)
		}
	}
}

// A batch of three commits applied by two Kustomizations: each commit goes pending then success on the
// cluster's context, and the revision's deployment in_progress then success; restarts post nothing again.
func TestCommitStatusesAndDeploymentsFollowABatchAcrossRestarts(t *testing.T) {
	s := newScenario(t)
	c0 := s.commit(0, map[string]string{"app.yaml": "v0"})
	s.fetch(c0, 5)
	s.createKustomization("app", c0, 10)
	s.createKustomization("web", c0, 10)
	flags := []string{"--commit-status", "--github-deployments"}
	tr := s.startTracker(flags...)
	eventually(t, 10*time.Second, "baselines", func() bool { return s.ledgerRevision("app") != "" && s.ledgerRevision("web") != "" })

	c1 := s.commit(100, map[string]string{"app.yaml": "v1"})
	c2 := s.commit(110, map[string]string{"app.yaml": "v2"})
	c3 := s.commit(120, map[string]string{"app.yaml": "v3"})
	batch := []string{c1, c2, c3}
	s.fetch(c3, 130)
	eventually(t, 30*time.Second, "every commit pending on both objects", func() bool {
		for _, c := range batch {
			if !s.latestIs(c, "pending: applied on 0/2, 2 pending") {
				return false
			}
		}
		return true
	})
	eventually(t, 10*time.Second, "the revision's deployment in progress", func() bool {
		d := s.gh.RepoDeployments("acme", "manifests")
		return len(d) == 1 && len(d[0].Statuses) == 1
	})
	before := len(s.gh.Requests())
	tr.Stop()

	// A new process finds every status and the deployment as it would post them: it posts nothing.
	tr = s.startTracker(flags...)
	eventually(t, 30*time.Second, "the forge read again", func() bool {
		return tr.Metric(forgePosts, `post="status"`, `result="unchanged"`) == 3 && tr.Metric(forgePosts, `post="deployment"`, `result="unchanged"`) >= 1
	})
	for _, r := range s.gh.Requests()[before:] {
		if r.Method == http.MethodPost {
			t.Errorf("the restarted tracker posted %s", r.Path)
		}
	}

	s.apply("app", fluxstatus.Revision(c3), s.at(140))
	eventually(t, 30*time.Second, "every commit applied on one object of two", func() bool {
		for _, c := range batch {
			if !s.latestIs(c, "pending: applied on 1/2, 1 pending") {
				return false
			}
		}
		return true
	})
	s.apply("web", fluxstatus.Revision(c3), s.at(150))
	for i, c := range batch {
		want := successOnBoth(s.at(100+10*i), s.at(150), s.at(130))
		eventually(t, 30*time.Second, "commit "+c[:7]+" applied everywhere", func() bool { return s.latestIs(c, want) })
		pendingThenSuccess(t, c, s.commitStatuses(c), want)
	}
	deps := s.gh.RepoDeployments("acme", "manifests")
	eventually(t, 10*time.Second, "the deployment successful", func() bool {
		deps = s.gh.RepoDeployments("acme", "manifests")
		return len(deps) == 1 && len(deps[0].Statuses) == 2
	})
	d := deps[0]
	var payload struct {
		Cluster string   `json:"cluster"`
		Commits []string `json:"commits"`
	}
	if err := json.Unmarshal(d.Payload, &payload); err != nil {
		t.Fatal(err)
	}
	if d.SHA != c3 || d.Ref != c3 || d.Task != forge.DeploymentTask || d.Environment != "test-cluster" || d.AutoMerge ||
		len(d.RequiredContexts) != 0 || d.ProductionEnvironment || payload.Cluster != "test-cluster" || !slices.Equal(payload.Commits, batch) {
		t.Errorf("deployment %+v, payload %s", d, d.Payload)
	}
	if d.Statuses[0].State != "in_progress" || d.Statuses[1].State != "success" || !d.Statuses[1].AutoInactive {
		t.Errorf("deployment statuses %+v, want in_progress then success (auto_inactive)", d.Statuses)
	}
	tr.Stop()

	// The next revision gets its own deployment, and the first one goes inactive; a third start posts nothing
	// on the batch again.
	tr = s.startTracker(flags...)
	c4 := s.commit(200, map[string]string{"app.yaml": "v4"})
	s.fetch(c4, 210)
	eventually(t, 30*time.Second, "the new commit pending", func() bool { return s.latestIs(c4, "pending: applied on 0/2, 2 pending") })
	s.apply("app", fluxstatus.Revision(c4), s.at(220))
	s.apply("web", fluxstatus.Revision(c4), s.at(221))
	want4 := successOnBoth(s.at(200), s.at(221), s.at(210))
	eventually(t, 30*time.Second, "the new commit applied everywhere", func() bool { return s.latestIs(c4, want4) })
	pendingThenSuccess(t, c4, s.commitStatuses(c4), want4)
	eventually(t, 10*time.Second, "a second deployment, successful", func() bool {
		deps = s.gh.RepoDeployments("acme", "manifests")
		return len(deps) == 2 && len(deps[1].Statuses) == 2
	})
	if deps[1].SHA != c4 || deps[1].Statuses[0].State != "in_progress" || deps[1].Statuses[1].State != "success" {
		t.Errorf("second deployment %+v", deps[1])
	}
	if got := deps[0].Statuses; len(got) != 3 || got[2].State != "inactive" {
		t.Errorf("first deployment's statuses %+v, want in_progress, success, inactive", got)
	}
	posts := s.postCount()
	consistently(t, 2*time.Second, "nothing more posted", func() bool { return s.postCount() == posts })
	for i, c := range batch {
		if want := successOnBoth(s.at(100+10*i), s.at(150), s.at(130)); !s.latestIs(c, want) {
			t.Errorf("commit %s after the third start: %q, want it to end %q", c[:7], s.commitStatuses(c), want)
		}
	}
	s.postedOnce(append(batch, c4)...)
}

// A broken commit fails on the object that cannot apply it and succeeds once the fix that contains it is applied.
func TestCommitStatusFailsOnABrokenCommitThenTheFixSucceeds(t *testing.T) {
	s := newScenario(t)
	c0 := s.commit(0, map[string]string{"app.yaml": "v0"})
	s.fetch(c0, 5)
	s.createKustomization("app", c0, 10)
	s.createKustomization("web", c0, 10)
	tr := s.startTracker("--commit-status")
	eventually(t, 10*time.Second, "baselines", func() bool { return s.ledgerRevision("app") != "" && s.ledgerRevision("web") != "" })

	broken := s.commit(100, map[string]string{"app.yaml": "broken"})
	s.failApply("app", broken, s.at(115))
	eventually(t, 10*time.Second, "app failing", func() bool {
		return tr.Metric("flux_commit_tracker_failing_revision_age_seconds", `flux_name="app"`) > 0
	})
	s.fetch(broken, 110)
	s.apply("web", fluxstatus.Revision(broken), s.at(112))
	failing := "failure: failing on 1/2: Kustomization " + s.ns + "/app"
	eventually(t, 30*time.Second, "the broken commit failing", func() bool { return s.latestIs(broken, failing) })

	fix := s.commit(200, map[string]string{"app.yaml": "fixed"})
	s.fetch(fix, 210)
	eventually(t, 30*time.Second, "the fix pending", func() bool { return s.latestIs(fix, "pending: applied on 0/2, 2 pending") })
	if !s.latestIs(broken, failing) {
		t.Errorf("broken commit while its fix waits: %q, want still %q", s.commitStatuses(broken), failing)
	}
	s.apply("app", fluxstatus.Revision(fix), s.at(220))
	s.apply("web", fluxstatus.Revision(fix), s.at(222))
	wantBroken := successOnBoth(s.at(100), s.at(220), s.at(110))
	wantFix := successOnBoth(s.at(200), s.at(222), s.at(210))
	eventually(t, 30*time.Second, "both applied everywhere", func() bool { return s.latestIs(broken, wantBroken) && s.latestIs(fix, wantFix) })
	h := s.commitStatuses(broken)
	first := slices.IndexFunc(h, func(x string) bool { return x == failing })
	if first < 0 || slices.ContainsFunc(h[:first], func(x string) bool { return !strings.HasPrefix(x, "pending: ") }) ||
		slices.ContainsFunc(h[first+1:len(h)-1], func(x string) bool { return x != failing }) {
		t.Errorf("broken commit's statuses %q: want (pending,) %q, then %q", h, failing, wantBroken)
	}
	pendingThenSuccess(t, fix, s.commitStatuses(fix), wantFix)
	s.postedOnce(broken, fix)
}

// outage stands in front of the fake GitHub: while down, the status and deployment endpoints answer 503 (the
// commits API still answers); it counts what it turned away.
type outage struct {
	mu      sync.Mutex
	down    bool
	refused int
	next    http.Handler
}

func newOutage(t *testing.T, apiURL string) (*outage, string) {
	t.Helper()
	u, err := url.Parse(apiURL)
	if err != nil {
		t.Fatal(err)
	}
	o := &outage{next: httputil.NewSingleHostReverseProxy(u)}
	srv := httptest.NewServer(o)
	t.Cleanup(srv.Close)
	return o, srv.URL + "/"
}

func (o *outage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	feedback := strings.Contains(p, "/statuses/") || strings.HasSuffix(p, "/status") || strings.HasSuffix(p, "/statuses") || strings.Contains(p, "/deployments")
	o.mu.Lock()
	down := o.down && feedback
	if down {
		o.refused++
	}
	o.mu.Unlock()
	if !down {
		o.next.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = io.WriteString(w, `{"message":"Service Unavailable","documentation_url":"https://docs.github.com/rest"}`)
}

func (o *outage) set(down bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.down = down
}

func (o *outage) turnedAway() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.refused
}

// The status API down while commits land: every status is posted once it is back, each once, and the
// notices leave the outbox.
func TestCommitStatusesWaitForTheStatusAPIAndArePostedOnce(t *testing.T) {
	s := newScenario(t)
	o, apiURL := newOutage(t, s.gh.URL)
	c0 := s.commit(0, map[string]string{"app.yaml": "v0"})
	s.fetch(c0, 5)
	s.createKustomization("app", c0, 10)
	s.createKustomization("web", c0, 10)
	tr := s.startTracker("--commit-status", "--github-api-url", apiURL)
	eventually(t, 10*time.Second, "baselines", func() bool { return s.ledgerRevision("app") != "" && s.ledgerRevision("web") != "" })

	o.set(true)
	c1 := s.commit(100, map[string]string{"app.yaml": "v1"})
	c2 := s.commit(110, map[string]string{"app.yaml": "v2"})
	s.fetch(c2, 120)
	s.apply("app", fluxstatus.Revision(c2), s.at(130))
	s.apply("web", fluxstatus.Revision(c2), s.at(131))
	eventually(t, 20*time.Second, "both commits recorded on both objects", func() bool { return len(tr.Applied()) == 4 })
	// The notice whose statuses did not show stays in the outbox.
	eventually(t, 30*time.Second, "posts turned away and a notice waiting", func() bool {
		return o.turnedAway() >= 3 && tr.Metric("flux_commit_tracker_outbox_depth", `sink="forge"`) >= 1
	})
	if n := len(s.commitStatuses(c1)) + len(s.commitStatuses(c2)); n != 0 {
		t.Fatalf("%d statuses stored while the API is down", n)
	}

	o.set(false)
	want := map[string]string{c1: successOnBoth(s.at(100), s.at(131), s.at(120)), c2: successOnBoth(s.at(110), s.at(131), s.at(120))}
	eventually(t, 60*time.Second, "both commits applied everywhere once the API is back", func() bool {
		return s.latestIs(c1, want[c1]) && s.latestIs(c2, want[c2])
	})
	eventually(t, 30*time.Second, "the outbox empty", func() bool { return tr.Metric("flux_commit_tracker_outbox_depth", `sink="forge"`) == 0 })
	posts := s.postCount()
	consistently(t, 2*time.Second, "nothing more posted", func() bool { return s.postCount() == posts })
	for _, c := range []string{c1, c2} {
		// Applied everywhere before the API came back: no pending status is due any more.
		for _, h := range s.commitStatuses(c) {
			if !strings.HasPrefix(h, "success: applied on 2/2") {
				t.Errorf("commit %s: %q posted after the outage, want only its success", c[:7], h)
			}
		}
	}
	s.postedOnce(c1, c2)
}

// Two replicas with leader election: the leader posts, the standby takes over when it stops and posts what
// is left, and no status is posted twice.
func TestTwoReplicasPostEachStatusOnce(t *testing.T) {
	s := newScenario(t)
	c0 := s.commit(0, map[string]string{"app.yaml": "v0"})
	s.fetch(c0, 5)
	s.createKustomization("app", c0, 10)
	s.createKustomization("web", c0, 10)
	flags := []string{"--commit-status", "--enable-leader-election"}
	leader := s.startTracker(flags...)
	eventually(t, 30*time.Second, "baselines by the leader", func() bool { return s.ledgerRevision("app") != "" && s.ledgerRevision("web") != "" })
	standby := s.startTracker(flags...)

	c1 := s.commit(100, map[string]string{"app.yaml": "v1"})
	c2 := s.commit(110, map[string]string{"app.yaml": "v2"})
	batch := []string{c1, c2}
	s.fetch(c2, 120)
	eventually(t, 30*time.Second, "both commits pending", func() bool {
		return s.latestIs(c1, "pending: applied on 0/2, 2 pending") && s.latestIs(c2, "pending: applied on 0/2, 2 pending")
	})
	s.apply("app", fluxstatus.Revision(c2), s.at(130))
	eventually(t, 30*time.Second, "both commits applied on one object", func() bool {
		return s.latestIs(c1, "pending: applied on 1/2, 1 pending") && s.latestIs(c2, "pending: applied on 1/2, 1 pending")
	})
	if got := standby.Metric(forgePosts); got != 0 {
		t.Errorf("the standby posted or read %v times while it stood by", got)
	}
	leader.Stop()

	s.apply("web", fluxstatus.Revision(c2), s.at(140))
	for i, c := range batch {
		want := successOnBoth(s.at(100+10*i), s.at(140), s.at(120))
		eventually(t, 60*time.Second, "commit "+c[:7]+" applied everywhere, posted by the new leader", func() bool { return s.latestIs(c, want) })
		pendingThenSuccess(t, c, s.commitStatuses(c), want)
	}
	if got := standby.Metric(forgePosts, `post="status"`, `result="posted"`); got != 2 {
		t.Errorf("the new leader posted %v statuses, want the 2 successes", got)
	}
	s.postedOnce(batch...)
}
