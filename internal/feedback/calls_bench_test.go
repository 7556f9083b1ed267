package feedback

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/forge"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// countingForge shows the latest status per commit and context, and the deployments, and counts every call.
type countingForge struct {
	mu           sync.Mutex
	latest       map[string]forge.Status
	deployments  map[string]forge.Deployment // by sha and environment
	states       map[int64]forge.DeploymentState
	reads, posts int
	// deployment calls: finds and state reads; creates and state sets.
	dReads, dWrites int
}

func newCountingForge() *countingForge {
	return &countingForge{latest: map[string]forge.Status{}, deployments: map[string]forge.Deployment{}, states: map[int64]forge.DeploymentState{}}
}

func (f *countingForge) Latest(_ context.Context, _ commits.Repository, sha, ctxName string) (forge.Status, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	st, ok := f.latest[sha+"\x00"+ctxName]
	return st, ok, nil
}

func (f *countingForge) Post(_ context.Context, _ commits.Repository, sha string, s forge.Status) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.posts++
	f.latest[sha+"\x00"+s.Context] = s
	return nil
}

func (f *countingForge) Find(_ context.Context, _ commits.Repository, sha, env string) (forge.Deployment, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dReads++
	d, ok := f.deployments[sha+"\x00"+env]
	return d, ok, nil
}

func (f *countingForge) Create(_ context.Context, _ commits.Repository, d forge.Deployment) (forge.Deployment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dWrites++
	d.ID = int64(len(f.deployments) + 1)
	f.deployments[d.SHA+"\x00"+d.Environment] = d
	return d, nil
}

func (f *countingForge) LatestState(_ context.Context, _ commits.Repository, id int64) (forge.DeploymentState, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dReads++
	st, ok := f.states[id]
	return st, ok, nil
}

func (f *countingForge) SetState(_ context.Context, _ commits.Repository, id int64, state forge.DeploymentState, _, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dWrites++
	f.states[id] = state
	return nil
}

// BenchmarkForgeCallsPerApply counts the forge calls of one apply: K objects on one repository move to a
// revision of N new commits. The source fetches it (every object pending), then the objects apply it one
// second apart, the tracker seeing each up to date before it delivers the apply's notice, as it does.
func BenchmarkForgeCallsPerApply(b *testing.B) {
	for _, deployments := range []bool{false, true} {
		for _, k := range []int{1, 5, 20} {
			for _, n := range []int{1, 10, 50} {
				b.Run(fmt.Sprintf("deployments=%t/objects=%d/commits=%d", deployments, k, n), func(b *testing.B) {
					benchmarkApplies(b, k, n, deployments)
				})
			}
		}
	}
}

func benchmarkApplies(b *testing.B, objects, perApply int, deployments bool) {
	f := newCountingForge()
	clk := clocktesting.NewFakeClock(t0)
	opts := Options{Forges: forge.Registry{GitHub: f, GitHubHosts: []string{"github.com"}}, Statuses: true, Cluster: "prod-eu", Clock: clk}
	if deployments {
		opts.Deployments = f
	}
	s, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	s.start()
	clk.Step(DefaultSettle)
	object := func(i int) telemetry.ObjectAttributes {
		return telemetry.ObjectAttributes{Kind: "Kustomization", Namespace: "apps", Name: fmt.Sprintf("o%02d", i)}
	}
	rollout := func(i int, applied, source string, pending []latency.DeliveredCommit) {
		s.ObserveRollout(ctx, tracker.Rollout{Object: object(i), Repository: repo, Applied: applied, Source: source, Pending: pending, PendingKnown: true})
	}
	head := sha(0)
	for i := range objects {
		rollout(i, head, head, nil)
	}
	s.Pass(ctx)
	b.ResetTimer()
	for apply := range b.N {
		prev := head
		batch := make([]latency.DeliveredCommit, perApply)
		for j := range batch {
			batch[j] = latency.DeliveredCommit{SHA: sha(1 + apply*perApply + j), Committed: clk.Now().Add(-time.Minute)}
		}
		head = batch[len(batch)-1].SHA
		// The source fetches the revision: every object waits on its commits.
		for i := range objects {
			rollout(i, prev, head, batch)
		}
		clk.Step(time.Second)
		s.Pass(ctx)
		for i := range objects {
			clk.Step(time.Second)
			rollout(i, head, head, nil)
			s.Pass(ctx)
			rec := tracker.Record{Object: object(i), Repository: repo, Revision: "main@sha1:" + head, Commits: batch,
				Fetched: clk.Now().Add(-time.Duration(i+1) * time.Second), Applied: clk.Now(), AppliedFromFlux: true}
			body, ok, err := Notifier{}.Notice(rec)
			if err != nil || !ok {
				b.Fatal(ok, err)
			}
			if err := s.Send(ctx, ledger.Item{ID: fmt.Sprint(apply, i), Sink: Notifier{}.Name(), Body: body}); err != nil {
				b.Fatal(err)
			}
		}
		// What waited to be joined is posted.
		clk.Step(DefaultSettle + time.Second)
		s.Pass(ctx)
	}
	b.StopTimer()
	f.mu.Lock()
	defer f.mu.Unlock()
	if want := b.N * perApply; f.posts < 2*want || len(f.latest) != want {
		b.Fatalf("%d posts on %d commits, want at least pending and success on each of %d", f.posts, len(f.latest), want)
	}
	for key, st := range f.latest {
		if st.State != forge.StateSuccess {
			b.Fatalf("commit %q ends %s: %s", key, st.State, st.Description)
		}
	}
	per := func(n int) float64 { return float64(n) / float64(b.N) }
	b.ReportMetric(per(f.reads), "reads/apply")
	b.ReportMetric(per(f.posts), "posts/apply")
	b.ReportMetric(per(f.dReads+f.dWrites), "deployment-calls/apply")
	b.ReportMetric(per(f.reads+f.posts+f.dReads+f.dWrites), "calls/apply")
}
