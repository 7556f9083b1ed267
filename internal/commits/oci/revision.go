package oci

import (
	"fmt"
	"regexp"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/revision"
)

// tagPattern is the OCI distribution spec's tag grammar.
var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// ParseArtifactRevision splits a Flux OCIRepository revision, <tag>@sha256:<hex> or sha256:<hex>, into
// its tag (empty for the second form) and the manifest digest sha256:<hex>, lower-cased. Errors wrap
// revision.ErrInvalid. Git revisions (sha1, legacy ref/<hex>) are rejected.
func ParseArtifactRevision(rev string) (tag, digest string, err error) {
	r, err := revision.Parse(rev)
	if err != nil {
		return "", "", fmt.Errorf("oci: artifact revision: %w", err)
	}
	if r.Algorithm != revision.SHA256 {
		return "", "", fmt.Errorf("oci: artifact revision %s: %w: want [<tag>@]sha256:<64 hex>", revision.Quote(rev), revision.ErrInvalid)
	}
	if r.Ref != "" && !tagPattern.MatchString(r.Ref) {
		return "", "", fmt.Errorf("oci: artifact revision %s: %w: %s is not an OCI tag", revision.Quote(rev), revision.ErrInvalid, revision.Quote(r.Ref))
	}
	return r.Ref, revision.SHA256 + ":" + r.Digest, nil
}
