package app_test

import (
	"context"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
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
