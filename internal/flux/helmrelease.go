package flux

import (
	"strings"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/revision"
)

// How a HelmRelease's release leads to a commit (helm-controller v1.x, source-controller v1.x):
//
//   - Chart built by a HelmChart from a GitRepository (spec.chart template, or spec.chartRef kind HelmChart).
//     With the HelmChart's reconcileStrategy Revision, source-controller sets the chart version's build
//     metadata to the first 12 hex of the commit (1.2.3+0123456789ab, or +0123456789ab.<generation> with
//     valuesFiles). The release's chart version therefore names its commit exactly; the full revision is the
//     HelmChart's observedSourceArtifactRevision (or the GitRepository's artifact revision) whose digest starts
//     with those 12 hex. When both have moved past the release, nothing is reported until the release catches
//     up: that apply then delivers every commit since the last recorded one.
//   - Same, with the default reconcileStrategy ChartVersion: the chart version names no commit, and the HelmChart
//     reuses its artifact for commits that do not bump the version. The release's commit is approximated by the
//     HelmChart's observedSourceArtifactRevision, only while all of these hold: the release's chart version is the
//     HelmChart's artifact revision; the GitRepository still serves that commit; the HelmChart artifact was stored
//     after the GitRepository fetched it (so it was built from that commit, not reused); and the release was
//     deployed after that artifact was stored. Commits that do not bump the version are reported with the next
//     release that does, which is when their content reaches the cluster.
//   - Chart from an OCIRepository (spec.chartRef kind OCIRepository): the release snapshot's ociDigest is the
//     artifact's manifest digest; when it is the OCIRepository's current artifact, the commit is that artifact's
//     org.opencontainers.image.revision annotation (set by `flux push artifact --revision`). Exact, and nothing
//     without the annotation.
//
// Applied time: the Ready=True transition whose message names the release, as helm-controller writes it ("Helm
// upgrade succeeded for release <ns>/<name>.v<N> with chart <chart>@<version>"); the message carries the
// release number, so every release moves the transition time. Else the Released=True transition naming the
// release (Ready may be Unknown again while a later reconcile runs); else zero, and the tracker uses its own
// observation time.

const (
	// KindHelmRelease is the Flux HelmRelease kind.
	KindHelmRelease = helmv2.HelmReleaseKind
	// KindHelmChart is the Flux HelmChart kind.
	KindHelmChart = sourcev1.HelmChartKind

	// OCIRevisionKey is the OCI annotation naming the commit an artifact was built from, which source-controller
	// copies into the OCIRepository's status.artifact.metadata.
	OCIRevisionKey = "org.opencontainers.image.revision"
	// OCISourceKey is the OCI annotation naming the repository an artifact was built from.
	OCISourceKey = "org.opencontainers.image.source"

	// releaseDeployed is the status of the Helm release currently deployed.
	releaseDeployed = "deployed"
	// shortSHALen is how much of a commit's hex source-controller puts in a chart version's build metadata.
	shortSHALen = 12
)

// HelmChartOf returns the HelmChart hr's chart is built by: the one helm-controller creates from spec.chart, or
// spec.chartRef's when it names a HelmChart; false when the chart comes from elsewhere.
func HelmChartOf(hr *helmv2.HelmRelease) (types.NamespacedName, bool) {
	switch {
	case hr.Spec.ChartRef != nil && hr.Spec.ChartRef.Kind == KindHelmChart:
		return refKey(hr.Spec.ChartRef.Namespace, hr.Namespace, hr.Spec.ChartRef.Name), true
	case hr.Spec.ChartRef == nil && hr.Spec.Chart != nil:
		return types.NamespacedName{Namespace: hr.Spec.Chart.GetNamespace(hr.Namespace), Name: hr.GetHelmChartName()}, true
	}
	return types.NamespacedName{}, false
}

// OCIRepositoryOf returns the OCIRepository spec.chartRef names; false when it names none.
func OCIRepositoryOf(hr *helmv2.HelmRelease) (types.NamespacedName, bool) {
	if hr.Spec.ChartRef == nil || hr.Spec.ChartRef.Kind != KindOCIRepository {
		return types.NamespacedName{}, false
	}
	return refKey(hr.Spec.ChartRef.Namespace, hr.Namespace, hr.Spec.ChartRef.Name), true
}

func refKey(ns, defaultNS, name string) types.NamespacedName {
	if ns == "" {
		ns = defaultNS
	}
	return types.NamespacedName{Namespace: ns, Name: name}
}

// FromHelmRelease builds the Deployment for hr whose chart is built by chart from the GitRepository src; chart
// or src is nil when not (yet) in the cache. Revision stays empty unless the deployed release leads to a commit
// (see the comment at the top of this file).
func FromHelmRelease(hr *helmv2.HelmRelease, src *sourcev1.GitRepository, chart *sourcev1.HelmChart) Deployment {
	d := helmReleaseDeployment(hr)
	if chart != nil {
		d.SourceKind, d.SourceNamespace, d.SourceName = chart.Spec.SourceRef.Kind, chart.Namespace, chart.Spec.SourceRef.Name
	} else if hr.Spec.ChartRef == nil && hr.Spec.Chart != nil {
		ref := hr.Spec.Chart.Spec.SourceRef
		d.SourceKind, d.SourceNamespace, d.SourceName = ref.Kind, hr.Spec.Chart.GetNamespace(hr.Namespace), ref.Name
	}
	rel := deployedRelease(hr)
	var srcArtifact *meta.Artifact
	if src != nil {
		srcArtifact = src.Status.Artifact
		d.RepositoryURL = src.Spec.URL
		d.SourceRef = gitRef(src)
		d.RepositoryOverride = src.Annotations[AnnotationRepository]
		d.Provider = src.Annotations[AnnotationProvider]
		d.Forge = src.Annotations[AnnotationForge]
		d.ExporterInfoPath, d.HasExporterInfoPath = src.Annotations[AnnotationExporterInfoPath]
	}
	if chart != nil && chart.Spec.SourceRef.Kind == KindGitRepository {
		if rel != nil {
			d.Revision = chartCommit(rel, chart, srcArtifact)
		}
		d.AttemptedRevision = attemptedChartCommit(hr, rel, d.Revision, chart, srcArtifact)
	}
	if srcArtifact != nil {
		d.SourceRevision, d.SourceFetched = srcArtifact.Revision, srcArtifact.LastUpdateTime.Time
		if sameCommit(srcArtifact.Revision, d.Revision) {
			d.Fetched = srcArtifact.LastUpdateTime.Time
		}
	}
	finishHelmRelease(&d, hr, rel)
	return d
}

// FromHelmReleaseOCI builds the Deployment for hr whose chart comes from the OCIRepository src (nil when not (yet)
// in the cache). The artifact's org.opencontainers.image.source annotation is the repository URL.
func FromHelmReleaseOCI(hr *helmv2.HelmRelease, src *sourcev1.OCIRepository) Deployment {
	d := helmReleaseDeployment(hr)
	if key, ok := OCIRepositoryOf(hr); ok {
		d.SourceKind, d.SourceNamespace, d.SourceName = KindOCIRepository, key.Namespace, key.Name
	}
	rel := deployedRelease(hr)
	if src != nil {
		d.RepositoryOverride = src.Annotations[AnnotationRepository]
		d.Provider = src.Annotations[AnnotationProvider]
		d.Forge = src.Annotations[AnnotationForge]
		d.ExporterInfoPath, d.HasExporterInfoPath = src.Annotations[AnnotationExporterInfoPath]
		if a := src.Status.Artifact; a != nil {
			commit := a.Metadata[OCIRevisionKey]
			d.RepositoryURL = a.Metadata[OCISourceKey]
			d.SourceRevision, d.SourceFetched = commit, a.LastUpdateTime.Time
			digest := ociDigest(a.Revision)
			if rel != nil && rel.OCIDigest != "" && rel.OCIDigest == digest {
				d.Revision, d.Fetched = commit, a.LastUpdateTime.Time
			}
			if hr.Status.LastAttemptedRevisionDigest != "" && hr.Status.LastAttemptedRevisionDigest == digest {
				d.AttemptedRevision = commit
			}
		}
	}
	finishHelmRelease(&d, hr, rel)
	return d
}

// RecordedHelmReleaseRevision returns recorded, the revision last recorded for hr, when the deployed release's
// chart version still names that commit (reconcileStrategy Revision), else "". It keeps a release whose HelmChart
// has moved on (a failing upgrade) naming its commit, for the rollout gauges; it never yields anything new to
// record.
func RecordedHelmReleaseRevision(hr *helmv2.HelmRelease, recorded string) string {
	rel := deployedRelease(hr)
	if rel == nil || recorded == "" {
		return ""
	}
	if short := versionCommit(rel.ChartVersion); short != "" && hasCommitPrefix(recorded, short) {
		return recorded
	}
	return ""
}

// helmReleaseDeployment fills what every HelmRelease Deployment has.
func helmReleaseDeployment(hr *helmv2.HelmRelease) Deployment {
	return Deployment{UID: string(hr.UID), Kind: KindHelmRelease, Namespace: hr.Namespace, Name: hr.Name}
}

// finishHelmRelease applies hr's own annotations over its source's and sets the apply and failure times.
func finishHelmRelease(d *Deployment, hr *helmv2.HelmRelease, rel *helmv2.Snapshot) {
	if v, ok := hr.Annotations[AnnotationRepository]; ok && v != "" {
		d.RepositoryOverride = v
	}
	if v := hr.Annotations[AnnotationProvider]; v != "" {
		d.Provider = v
	}
	if v := hr.Annotations[AnnotationForge]; v != "" {
		d.Forge = v
	}
	if v, ok := hr.Annotations[AnnotationExporterInfoPath]; ok {
		d.ExporterInfoPath, d.HasExporterInfoPath = v, true
	}
	if d.Revision != "" {
		d.Applied = ReleaseAppliedTime(hr.Status.Conditions, rel)
	}
	attempted := hr.Status.LastAttemptedRevision
	d.Message = readyMessage(hr.Status.Conditions)
	if ready := apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition); ready != nil &&
		ready.Status == metav1.ConditionFalse && attempted != "" && (rel == nil || rel.ChartVersion != attempted) {
		d.FailingSince = ready.LastTransitionTime.Time
	}
}

// deployedRelease returns the newest snapshot in hr's history whose release is deployed, or nil. A failed or
// pending release on top of it did not apply anything. The cached history is not sorted in place.
func deployedRelease(hr *helmv2.HelmRelease) *helmv2.Snapshot {
	var out *helmv2.Snapshot
	for _, s := range hr.Status.History {
		if s != nil && s.Status == releaseDeployed && (out == nil || s.Version > out.Version) {
			out = s
		}
	}
	return out
}

// chartCommit returns the revision of the commit the release rel's chart was built from, or "" when it cannot
// be told (see the comment at the top of this file).
func chartCommit(rel *helmv2.Snapshot, chart *sourcev1.HelmChart, src *meta.Artifact) string {
	if chart.Spec.ReconcileStrategy == sourcev1.ReconcileStrategyRevision {
		return commitNamedBy(rel.ChartVersion, chart, src)
	}
	a := chart.Status.Artifact
	observed := chart.Status.ObservedSourceArtifactRevision
	if a == nil || src == nil || a.Revision != rel.ChartVersion || !sameCommit(src.Revision, observed) {
		return ""
	}
	if a.LastUpdateTime.Before(&src.LastUpdateTime) || rel.LastDeployed.Before(&a.LastUpdateTime) {
		return "" // the artifact was reused from an earlier commit, or the release predates it
	}
	return observed
}

// attemptedChartCommit returns the revision of the commit hr last attempted to release, when known.
func attemptedChartCommit(hr *helmv2.HelmRelease, rel *helmv2.Snapshot, deployed string, chart *sourcev1.HelmChart, src *meta.Artifact) string {
	attempted := hr.Status.LastAttemptedRevision
	switch {
	case attempted == "":
		return ""
	case rel != nil && attempted == rel.ChartVersion && deployed != "":
		return deployed
	case chart.Spec.ReconcileStrategy == sourcev1.ReconcileStrategyRevision:
		return commitNamedBy(attempted, chart, src)
	}
	return ""
}

// commitNamedBy returns the full revision whose commit the chart version's build metadata names: the HelmChart's
// observed source revision or the GitRepository's artifact revision; "" when neither is that commit.
func commitNamedBy(version string, chart *sourcev1.HelmChart, src *meta.Artifact) string {
	short := versionCommit(version)
	if short == "" {
		return ""
	}
	candidates := []string{chart.Status.ObservedSourceArtifactRevision}
	if src != nil {
		candidates = append(candidates, src.Revision)
	}
	for _, c := range candidates {
		if hasCommitPrefix(c, short) {
			return c
		}
	}
	return ""
}

// versionCommit returns the short commit hex source-controller put in a chart version's build metadata
// (1.2.3+0123456789ab or 1.2.3+0123456789ab.7), or "".
func versionCommit(version string) string {
	_, build, ok := strings.Cut(version, "+")
	if !ok {
		return ""
	}
	short, _, _ := strings.Cut(build, ".")
	if len(short) != shortSHALen || strings.Trim(strings.ToLower(short), "0123456789abcdef") != "" {
		return ""
	}
	return strings.ToLower(short)
}

// hasCommitPrefix reports whether rev parses as a commit revision whose digest starts with short.
func hasCommitPrefix(rev, short string) bool {
	r, err := revision.Parse(rev)
	return err == nil && r.IsCommit() && strings.HasPrefix(r.Digest, short)
}

// ociDigest returns the manifest digest of an OCIRepository artifact revision (<tag>@sha256:<hex> or
// sha256:<hex>).
func ociDigest(rev string) string {
	if i := strings.LastIndexByte(rev, '@'); i >= 0 {
		return rev[i+1:]
	}
	return rev
}

// ReleaseAppliedTime returns when the release rel was applied: the Ready=True transition whose message names
// it, else the Released=True transition that does, else zero.
func ReleaseAppliedTime(conditions []metav1.Condition, rel *helmv2.Snapshot) time.Time {
	if rel == nil {
		return time.Time{}
	}
	for _, typ := range []string{meta.ReadyCondition, helmv2.ReleasedCondition} {
		c := apimeta.FindStatusCondition(conditions, typ)
		if c != nil && c.Status == metav1.ConditionTrue && namesRelease(c.Message, rel) {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

// namesRelease reports whether a helm-controller message names the release rel: "<ns>/<name>.v<N>" and
// "<chart>@<version>", each as a whole word (so .v1 is not .v10, and 1.0.0 is not 1.0.0+abc).
func namesRelease(msg string, rel *helmv2.Snapshot) bool {
	return containsWord(msg, rel.FullReleaseName()) && containsWord(msg, rel.VersionedChartName())
}

// containsWord reports whether word occurs in s with no name or version character on either side; a sentence's
// closing period is not part of a word.
func containsWord(s, word string) bool {
	if word == "" {
		return false
	}
	for i := 0; ; {
		j := strings.Index(s[i:], word)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(word)
		if (start == 0 || !isNameChar(s[start-1])) && (end == len(s) || !isNameChar(s[end]) || s[end] == '.' && (end+1 == len(s) || !isNameChar(s[end+1]))) {
			return true
		}
		i = start + 1
	}
}

func isNameChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._-+/@", c) >= 0
}
