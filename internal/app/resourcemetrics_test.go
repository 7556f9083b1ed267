package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/test/apptest"
)

func TestFluxResourceMetricsServedByDefault(t *testing.T) {
	s := newScenario(t)
	c0 := s.commit(0, nil)
	s.createKustomization("app", c0, 5)
	tr := s.startTracker()
	ns := `exported_namespace="` + s.ns + `"`
	eventually(t, 10*time.Second, "gotk_resource_info of the GitRepository and the Kustomization", func() bool {
		return tr.Metric("gotk_resource_info", `customresource_kind="GitRepository"`, `name="manifests"`, ns,
			`url="https://github.com/acme/manifests.git"`, `customresource_group="source.toolkit.fluxcd.io"`) == 1 &&
			tr.Metric("gotk_resource_info", `customresource_kind="Kustomization"`, `name="app"`, ns, `source_name="manifests"`,
				`revision="main@sha1:`+c0+`"`, `ready="True"`) == 1
	})
	if strings.Contains(tr.String(), "Flux kind not reported") {
		t.Errorf("a Flux kind was skipped though every CRD is installed:\n%s", tr)
	}
}

// Turned off by flag or environment, no series: while a tracker with them on, started after, serves them.
func TestFluxResourceMetricsFlagTurnsThemOff(t *testing.T) {
	s := newScenario(t)
	c0 := s.commit(0, nil)
	s.createKustomization("app", c0, 5)
	offByFlag := s.startTracker("--flux-resource-metrics=false")
	offByEnv := s.startTrackerEnv(map[string]string{"FLUX_RESOURCE_METRICS": "false"})
	on := s.startTracker()
	eventually(t, 10*time.Second, "the series of the tracker with them on", func() bool {
		return on.Metric("gotk_resource_info", `customresource_kind="Kustomization"`, `name="app"`) == 1
	})
	for name, tr := range map[string]*apptest.Tracker{"--flux-resource-metrics=false": offByFlag, "FLUX_RESOURCE_METRICS=false": offByEnv} {
		if n := tr.Metric("gotk_resource_info"); n != 0 {
			t.Errorf("%s: %v gotk_resource_info series, want none", name, n)
		}
		if strings.Contains(tr.String(), "gotk_resource_info") {
			t.Errorf("%s: the tracker logged about gotk_resource_info:\n%s", name, tr)
		}
	}
}
