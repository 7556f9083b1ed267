// Package fluxstatus writes into Flux objects the statuses kustomize-controller, source-controller and
// helm-controller write, for tests that play those controllers against a real kube-apiserver.
package fluxstatus

import (
	"fmt"
	"strings"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Revision is the revision Flux reports for commit sha on branch main.
func Revision(sha string) string { return "main@sha1:" + sha }

// Applied sets the status kustomize-controller writes once it applied revision at at.
func Applied(k *kustomizev1.Kustomization, revision string, at time.Time) {
	k.Status.ObservedGeneration = k.Generation
	k.Status.LastAppliedRevision, k.Status.LastAttemptedRevision = revision, revision
	k.Status.Conditions = []metav1.Condition{{
		Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Reason: meta.ReconciliationSucceededReason,
		Message: "Applied revision: " + revision, LastTransitionTime: metav1.NewTime(at), ObservedGeneration: k.Generation,
	}}
}

// Failed sets the status kustomize-controller writes when applying revision fails at at: the applied revision
// stays, the attempted one is revision, Ready turns False.
func Failed(k *kustomizev1.Kustomization, revision string, at time.Time) {
	k.Status.ObservedGeneration = k.Generation
	k.Status.LastAttemptedRevision = revision
	k.Status.Conditions = []metav1.Condition{{
		Type: meta.ReadyCondition, Status: metav1.ConditionFalse, Reason: meta.ReconciliationFailedReason,
		Message: "kustomize build failed for revision " + revision, LastTransitionTime: metav1.NewTime(at), ObservedGeneration: k.Generation,
	}}
}

// Artifact is the artifact source-controller stores for revision of a source of kind at at.
func Artifact(kind, revision string, at time.Time) *meta.Artifact {
	path := fmt.Sprintf("%s/x/%s.tar.gz", strings.ToLower(kind), strings.ReplaceAll(revision, ":", "-"))
	return &meta.Artifact{Revision: revision, Path: path, URL: "http://source-controller.flux-system.svc/" + path,
		Digest: "sha256:" + strings.Repeat("0", 64), LastUpdateTime: metav1.NewTime(at), Size: new(int64)}
}

// Fetched sets the status source-controller writes once it fetched commit sha at at.
func Fetched(gr *sourcev1.GitRepository, sha string, at time.Time) {
	rev := Revision(sha)
	gr.Status.ObservedGeneration = gr.Generation
	gr.Status.Artifact = Artifact(sourcev1.GitRepositoryKind, rev, at)
	gr.Status.Conditions = []metav1.Condition{{Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Reason: meta.SucceededReason,
		Message: "stored artifact for revision '" + rev + "'", LastTransitionTime: metav1.NewTime(at), ObservedGeneration: gr.Generation}}
}

// The chart every HelmRelease here installs: ./charts/app, version 0.1.0, built with reconcileStrategy Revision
// so that its version carries the commit.
const (
	chartPath = "./charts/app"
	chartName = "app"
)

// ChartVersion is the version source-controller gives the chart built from commit sha: 0.1.0+<first 12 hex>.
func ChartVersion(sha string) string { return "0.1.0+" + sha[:12] }

// HelmRelease returns the HelmRelease namespace/name whose chart a HelmChart builds from the GitRepository
// source, and that HelmChart as helm-controller creates it.
func HelmRelease(namespace, name, source string) (*helmv2.HelmRelease, *sourcev1.HelmChart) {
	hr := &helmv2.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: helmv2.HelmReleaseSpec{
			Interval: metav1.Duration{Duration: time.Minute},
			Chart: &helmv2.HelmChartTemplate{Spec: helmv2.HelmChartTemplateSpec{
				Chart: chartPath, ReconcileStrategy: sourcev1.ReconcileStrategyRevision,
				SourceRef: helmv2.CrossNamespaceObjectReference{Kind: sourcev1.GitRepositoryKind, Name: source},
			}},
		},
	}
	chart := &sourcev1.HelmChart{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: hr.GetHelmChartName(),
			Labels: map[string]string{"helm.toolkit.fluxcd.io/name": name, "helm.toolkit.fluxcd.io/namespace": namespace}},
		Spec: sourcev1.HelmChartSpec{
			Chart: chartPath, Version: "*", Interval: metav1.Duration{Duration: time.Minute},
			ReconcileStrategy: sourcev1.ReconcileStrategyRevision,
			SourceRef:         sourcev1.LocalHelmChartSourceReference{Kind: sourcev1.GitRepositoryKind, Name: source},
		},
	}
	return hr, chart
}

// ChartBuilt sets the status source-controller writes once it packaged the chart from commit sha at at.
func ChartBuilt(chart *sourcev1.HelmChart, sha string, at time.Time) {
	v := ChartVersion(sha)
	chart.Status.ObservedGeneration = chart.Generation
	chart.Status.ObservedSourceArtifactRevision = Revision(sha)
	chart.Status.ObservedChartName = chartName
	chart.Status.Artifact = Artifact(sourcev1.HelmChartKind, v, at)
	chart.Status.Conditions = []metav1.Condition{{Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Reason: "ChartPackageSucceeded",
		Message: "packaged '" + chartName + "' chart with version '" + v + "'", LastTransitionTime: metav1.NewTime(at), ObservedGeneration: chart.Generation}}
}

// Released sets the status helm-controller writes once release v<version> of the chart built from sha is
// deployed (installed for v1, upgraded after), Ready at at; earlier deployed releases are superseded.
func Released(hr *helmv2.HelmRelease, version int, sha string, at time.Time) {
	rel := release(hr, version, sha, "deployed", at)
	action, verb, reason := helmv2.ReleaseActionUpgrade, "upgrade", helmv2.UpgradeSucceededReason
	if version == 1 {
		action, verb, reason = helmv2.ReleaseActionInstall, "install", helmv2.InstallSucceededReason
	}
	msg := fmt.Sprintf("Helm %s succeeded for release %s with chart %s", verb, rel.FullReleaseName(), rel.VersionedChartName())
	hr.Status.LastAttemptedReleaseAction = action
	hr.Status.Failures = 0
	hr.Status.Conditions = []metav1.Condition{
		{Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Reason: reason, Message: msg, LastTransitionTime: metav1.NewTime(at), ObservedGeneration: hr.Generation},
		{Type: helmv2.ReleasedCondition, Status: metav1.ConditionTrue, Reason: reason, Message: msg, LastTransitionTime: metav1.NewTime(at), ObservedGeneration: hr.Generation},
	}
}

// UpgradeFailed sets the status helm-controller writes when the upgrade to release v<version> of the chart
// built from sha fails at at (no remediation).
func UpgradeFailed(hr *helmv2.HelmRelease, version int, sha string, at time.Time) {
	rel := release(hr, version, sha, "failed", at)
	msg := fmt.Sprintf("Helm upgrade failed for release %s/%s with chart %s: context deadline exceeded", rel.Namespace, rel.Name, rel.VersionedChartName())
	hr.Status.LastAttemptedReleaseAction = helmv2.ReleaseActionUpgrade
	hr.Status.Failures, hr.Status.UpgradeFailures = 1, 1
	hr.Status.Conditions = []metav1.Condition{
		{Type: meta.ReadyCondition, Status: metav1.ConditionFalse, Reason: helmv2.UpgradeFailedReason, Message: msg, LastTransitionTime: metav1.NewTime(at), ObservedGeneration: hr.Generation},
		{Type: helmv2.ReleasedCondition, Status: metav1.ConditionFalse, Reason: helmv2.UpgradeFailedReason, Message: msg, LastTransitionTime: metav1.NewTime(at), ObservedGeneration: hr.Generation},
	}
}

// release puts the snapshot of release v<version> with status on top of hr's history and returns it.
func release(hr *helmv2.HelmRelease, version int, sha, status string, at time.Time) *helmv2.Snapshot {
	deployed := metav1.NewTime(at.Add(-2 * time.Second))
	rel := &helmv2.Snapshot{
		APIVersion: "v2", Digest: fmt.Sprintf("sha256:%064d", version), Name: hr.Name, Namespace: hr.Namespace, Version: version,
		Status: status, ChartName: chartName, ChartVersion: ChartVersion(sha), AppVersion: "1.0.0",
		ConfigDigest: "sha256:" + strings.Repeat("c", 64), FirstDeployed: deployed, LastDeployed: deployed,
	}
	if len(hr.Status.History) > 0 {
		rel.FirstDeployed = hr.Status.History[len(hr.Status.History)-1].FirstDeployed
	}
	for _, prev := range hr.Status.History {
		if status == "deployed" && prev.Status == "deployed" {
			prev.Status = "superseded"
		}
	}
	hr.Status.History = append(helmv2.Snapshots{rel}, hr.Status.History...)
	hr.Status.ObservedGeneration, hr.Status.LastAttemptedGeneration = hr.Generation, hr.Generation
	hr.Status.HelmChart = hr.Namespace + "/" + hr.GetHelmChartName()
	hr.Status.StorageNamespace = hr.Namespace
	hr.Status.LastAttemptedRevision = rel.ChartVersion
	hr.Status.LastAttemptedConfigDigest = rel.ConfigDigest
	return rel
}
