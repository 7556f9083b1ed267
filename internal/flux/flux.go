// Package flux reads Flux objects into Deployments: which object, from which repository, at which revision,
// applied when. It never writes to Flux objects.
package flux

import (
	"strings"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/revision"
)

const (
	// AnnotationRepository overrides the repository (a URL or owner/name) on a Kustomization or its source.
	AnnotationRepository = "flux-commit-tracker.io/repository"
	// AnnotationProvider picks the commit provider for a repository: github or git (default: github for GitHub
	// hosts, git for the rest).
	AnnotationProvider = "flux-commit-tracker.io/provider"
	// AnnotationForge names the forge that gets a repository's commit statuses: github, gitlab or gitea
	// (default: by host).
	AnnotationForge = "flux-commit-tracker.io/forge"
	// AnnotationExporterInfoPath overrides --exporter-info-path for one object or source; empty disables.
	AnnotationExporterInfoPath = "flux-commit-tracker.io/exporter-info-path"

	// KindKustomization is the Flux Kustomization kind.
	KindKustomization = kustomizev1.KustomizationKind
	// KindGitRepository is the Flux GitRepository kind.
	KindGitRepository = sourcev1.GitRepositoryKind
	// KindOCIRepository is the Flux OCIRepository kind.
	KindOCIRepository = sourcev1.OCIRepositoryKind
)

// Deployment is what the tracker needs to know about one Flux object's latest apply.
type Deployment struct {
	UID       string
	Kind      string
	Namespace string
	Name      string

	SourceKind      string
	SourceNamespace string
	SourceName      string
	// RepositoryURL is the source's URL; RepositoryOverride, when set, names the repository instead.
	RepositoryURL      string
	RepositoryOverride string
	// Provider is the provider annotation's value, empty for automatic.
	Provider string
	// Forge is the forge annotation's value, empty for automatic.
	Forge string
	// SourceSecretName is the source's spec.secretRef (in SourceNamespace): its credentials.
	SourceSecretName string
	// SourceRef is a GitRepository source's spec.ref, what Flux follows; empty for other sources or none set.
	SourceRef GitRef
	// OCIURL and OCIDigest name the applied OCI artifact, for OCIRepository sources.
	OCIURL    string
	OCIDigest string
	// ExporterInfoPath is set when an annotation overrides the default path (empty value disables).
	ExporterInfoPath    string
	HasExporterInfoPath bool

	// Revision is the applied revision that names the commit (lastAppliedOriginRevision for OCI sources).
	Revision string
	// Applied is the Ready=True transition time for Revision; zero when Flux has not reported it.
	Applied time.Time
	// WaitsForHealth says Flux checks the applied objects' health (spec.wait or healthChecks): its Ready=True
	// for Revision then means applied and healthy.
	WaitsForHealth bool
	// SourceRevision is the revision of the source's current artifact (what the object will apply next), and
	// SourceFetched when the source fetched it.
	SourceRevision string
	SourceFetched  time.Time
	// Fetched is when the source fetched Revision (its artifact's lastUpdateTime); zero when the source's
	// artifact is not Revision.
	Fetched time.Time
	// AttemptedRevision is the revision of the last apply attempt; FailingSince is when the object turned
	// Ready=False on an attempted revision it has not applied, zero when it is not failing.
	AttemptedRevision string
	FailingSince      time.Time
	// Message is the Ready condition's message: what Flux says of the last attempt.
	Message string
}

// GitRef is the reference a GitRepository follows (spec.ref); each field may be empty.
type GitRef struct {
	Branch string
	Tag    string
	// SemVer is a range over the repository's tags.
	SemVer string
	// Name is a full reference name, such as refs/pull/1/head.
	Name string
	// Commit is a commit SHA Flux pins the source to.
	Commit string
}

// IsZero reports whether the reference names nothing.
func (r GitRef) IsZero() bool { return r == GitRef{} }

// gitRef reads s's spec.ref.
func gitRef(s *sourcev1.GitRepository) GitRef {
	if s.Spec.Reference == nil {
		return GitRef{}
	}
	r := s.Spec.Reference
	return GitRef{Branch: r.Branch, Tag: r.Tag, SemVer: r.SemVer, Name: r.Name, Commit: r.Commit}
}

// FromKustomization builds the Deployment for k; src is its GitRepository or OCIRepository, or nil when it has
// another source kind or is not (yet) in the cache.
func FromKustomization(k *kustomizev1.Kustomization, src client.Object) Deployment {
	d := Deployment{
		UID:             string(k.UID),
		Kind:            KindKustomization,
		Namespace:       k.Namespace,
		Name:            k.Name,
		SourceKind:      k.Spec.SourceRef.Kind,
		SourceNamespace: k.Spec.SourceRef.Namespace,
		SourceName:      k.Spec.SourceRef.Name,
		Revision:        k.Status.LastAppliedRevision,
	}
	if d.SourceNamespace == "" {
		d.SourceNamespace = k.Namespace
	}
	if d.SourceKind == KindOCIRepository {
		d.Revision = k.Status.LastAppliedOriginRevision
	}
	switch s := src.(type) {
	case *sourcev1.GitRepository:
		if a := s.Status.Artifact; a != nil {
			d.SourceRevision, d.SourceFetched = a.Revision, a.LastUpdateTime.Time
			if sameCommit(a.Revision, d.Revision) {
				d.Fetched = a.LastUpdateTime.Time
			}
		}
		d.RepositoryURL = s.Spec.URL
		d.SourceRef = gitRef(s)
		if s.Spec.SecretRef != nil {
			d.SourceSecretName = s.Spec.SecretRef.Name
		}
	case *sourcev1.OCIRepository:
		fromOCIRepository(&d, k, s)
	}
	if src != nil {
		d.RepositoryOverride = src.GetAnnotations()[AnnotationRepository]
		d.Provider = src.GetAnnotations()[AnnotationProvider]
		d.Forge = src.GetAnnotations()[AnnotationForge]
		d.ExporterInfoPath, d.HasExporterInfoPath = src.GetAnnotations()[AnnotationExporterInfoPath]
	}
	if v, ok := k.Annotations[AnnotationRepository]; ok && v != "" {
		d.RepositoryOverride = v
	}
	if v := k.Annotations[AnnotationProvider]; v != "" {
		d.Provider = v
	}
	if v := k.Annotations[AnnotationForge]; v != "" {
		d.Forge = v
	}
	if v, ok := k.Annotations[AnnotationExporterInfoPath]; ok {
		d.ExporterInfoPath, d.HasExporterInfoPath = v, true
	}
	d.Applied = AppliedTime(k.Status.Conditions, k.Status.LastAppliedRevision)
	d.WaitsForHealth = k.Spec.Wait || len(k.Spec.HealthChecks) > 0
	d.AttemptedRevision = k.Status.LastAttemptedRevision
	d.Message = readyMessage(k.Status.Conditions)
	if ready := apimeta.FindStatusCondition(k.Status.Conditions, meta.ReadyCondition); ready != nil &&
		ready.Status == metav1.ConditionFalse && d.AttemptedRevision != "" && !sameCommit(d.AttemptedRevision, k.Status.LastAppliedRevision) {
		d.FailingSince = ready.LastTransitionTime.Time
	}
	return d
}

// readyMessage is the Ready condition's message, empty without one.
func readyMessage(conditions []metav1.Condition) string {
	if ready := apimeta.FindStatusCondition(conditions, meta.ReadyCondition); ready != nil {
		return ready.Message
	}
	return ""
}

// fromOCIRepository fills d from an OCIRepository: the repository and commit come from the artifact's
// org.opencontainers.image.source and .revision annotations; the artifact (ref and digest) is kept so its
// exporter-info layer can be read.
func fromOCIRepository(d *Deployment, k *kustomizev1.Kustomization, s *sourcev1.OCIRepository) {
	d.OCIURL = s.Spec.URL
	if _, digest, ok := strings.Cut(k.Status.LastAppliedRevision, "@"); ok {
		d.OCIDigest = digest
	} else if strings.HasPrefix(k.Status.LastAppliedRevision, "sha256:") {
		d.OCIDigest = k.Status.LastAppliedRevision
	}
	a := s.Status.Artifact
	if a == nil {
		return
	}
	d.RepositoryURL = a.Metadata[OCISourceKey]
	d.SourceRevision, d.SourceFetched = a.Metadata[OCIRevisionKey], a.LastUpdateTime.Time
	if a.Revision == k.Status.LastAppliedRevision {
		d.Fetched = a.LastUpdateTime.Time
		if d.Revision == "" {
			d.Revision = a.Metadata[OCIRevisionKey]
		}
	}
}

// sameCommit reports whether two revisions name the same commit; unparsable ones never do.
func sameCommit(a, b string) bool {
	ra, errA := revision.Parse(a)
	rb, errB := revision.Parse(b)
	return errA == nil && errB == nil && ra.Equal(rb)
}

// AppliedTime returns the Ready=True transition time when its message names the applied revision, else zero.
// Flux moves lastTransitionTime whenever the Ready message changes, so this is the time it was applied.
func AppliedTime(conditions []metav1.Condition, applied string) time.Time {
	ready := apimeta.FindStatusCondition(conditions, meta.ReadyCondition)
	if ready == nil || ready.Status != metav1.ConditionTrue || applied == "" {
		return time.Time{}
	}
	if !strings.Contains(ready.Message, applied) {
		return time.Time{}
	}
	return ready.LastTransitionTime.Time
}
