package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDeletedObjectLeavesTheLedger(t *testing.T) {
	s := newScenario(t)
	c0 := s.commit(0, nil)
	s.createKustomization("app", c0, 5)
	s.createKustomization("gone-while-down", c0, 5)
	first := s.startTracker()
	eventually(t, 10*time.Second, "baselines", func() bool {
		return s.ledgerRevision("app") != "" && s.ledgerRevision("gone-while-down") != ""
	})

	ctx := context.Background()
	del := func(name string) {
		k := &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: name}}
		if err := env.Client.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	del("app")
	eventually(t, 10*time.Second, "entry of the deleted object removed", func() bool { return s.ledgerRevision("app") == "" })
	first.Stop()

	del("gone-while-down")
	s.startTracker()
	eventually(t, 10*time.Second, "entry of the object deleted while down removed", func() bool { return s.ledgerRevision("gone-while-down") == "" })
}

func TestWatchLabelSelector(t *testing.T) {
	s := newScenario(t)
	c0 := s.commit(0, nil)
	s.createKustomization("watched", c0, 5)
	s.createKustomization("ignored", c0, 5)
	ctx := context.Background()
	var k kustomizev1.Kustomization
	if err := env.Client.Get(ctx, keyOf(s.ns, "watched"), &k); err != nil {
		t.Fatal(err)
	}
	k.Labels = map[string]string{"team": "payments"}
	if err := env.Client.Update(ctx, &k); err != nil {
		t.Fatal(err)
	}
	tr := s.startTracker("--watch-label-selector", "team=payments")
	eventually(t, 10*time.Second, "watched object baselined", func() bool { return s.ledgerRevision("watched") != "" })
	c1 := s.commit(10, nil)
	s.apply("watched", "main@sha1:"+c1, s.at(20))
	s.apply("ignored", "main@sha1:"+c1, s.at(20))
	wantCommits(t, tr, map[string]float64{c1: 10})
	if s.ledgerRevision("ignored") != "" {
		t.Error("object outside the label selector reached the ledger")
	}
	if got := tr.Applied()[0].Name; got != "watched" {
		t.Errorf("recorded object %q, want watched", got)
	}
}

func TestLeaderElection(t *testing.T) {
	s := newScenario(t)
	c0 := s.commit(0, nil)
	s.createKustomization("app", c0, 5)
	tr := s.startTracker("--enable-leader-election")
	eventually(t, 20*time.Second, "baseline as leader", func() bool { return s.ledgerRevision("app") != "" })
	c1 := s.commit(10, nil)
	s.apply("app", "main@sha1:"+c1, s.at(70))
	wantCommits(t, tr, map[string]float64{c1: 60})
}

func TestStuckRolloutGauges(t *testing.T) {
	s := newScenario(t)
	c0 := s.commit(0, nil)
	s.createKustomization("app", c0, 5)
	tr := s.startTracker()
	eventually(t, 10*time.Second, "baseline", func() bool { return s.ledgerRevision("app") != "" })
	labels := []string{`flux_name="app"`, `vcs_repository_url_full="https://github.com/acme/manifests"`}
	if got := tr.Metric("flux_commit_tracker_pending_commit_age_seconds", labels...); got != 0 {
		t.Errorf("pending-commit-age of an up-to-date object = %v, want 0", got)
	}

	// The source fetches c1; the apply fails.
	c1 := s.commit(10, map[string]string{"a": "1"})
	ctx := context.Background()
	var gr sourcev1.GitRepository
	if err := env.Client.Get(ctx, keyOf(s.ns, "manifests"), &gr); err != nil {
		t.Fatal(err)
	}
	gr.Status.Artifact = &meta.Artifact{Revision: "main@sha1:" + c1, LastUpdateTime: metav1.NewTime(s.at(20)), Path: "x", URL: "http://x", Digest: "sha256:" + strings.Repeat("0", 64)}
	if err := env.Client.Status().Update(ctx, &gr); err != nil {
		t.Fatal(err)
	}
	failedAt := time.Now().Add(-30 * time.Second).Truncate(time.Second)
	var k kustomizev1.Kustomization
	if err := env.Client.Get(ctx, keyOf(s.ns, "app"), &k); err != nil {
		t.Fatal(err)
	}
	k.Status.LastAttemptedRevision = "main@sha1:" + c1
	k.Status.Conditions = []metav1.Condition{{Type: meta.ReadyCondition, Status: metav1.ConditionFalse, Reason: "ReconciliationFailed",
		Message: "ConfigMap/x dry-run failed", LastTransitionTime: metav1.NewTime(failedAt)}}
	if err := env.Client.Status().Update(ctx, &k); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "stuck object on the gauges", func() bool {
		return tr.Metric("flux_commit_tracker_pending_commit_age_seconds", labels...) >= time.Since(s.at(10)).Seconds()-2 &&
			tr.Metric("flux_commit_tracker_failing_revision_age_seconds", labels...) >= 29
	})
	first := tr.Metric("flux_commit_tracker_failing_revision_age_seconds", labels...)
	time.Sleep(1100 * time.Millisecond)
	if again := tr.Metric("flux_commit_tracker_failing_revision_age_seconds", labels...); again <= first {
		t.Errorf("failing-revision-age did not rise while stuck: %v then %v", first, again)
	}

	// Fixed: both gauges back to 0.
	s.apply("app", "main@sha1:"+c1, time.Now())
	eventually(t, 10*time.Second, "gauges back to 0", func() bool {
		return tr.Metric("flux_commit_tracker_pending_commit_age_seconds", labels...) == 0 &&
			tr.Metric("flux_commit_tracker_failing_revision_age_seconds", labels...) == 0
	})
}
