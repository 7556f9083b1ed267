package oci_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/oci"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/revision"
)

var hex64 = strings.Repeat("0123456789abcdef", 4)

func TestParseArtifactRevision(t *testing.T) {
	tests := []struct {
		rev, tag, digest string
		wantErr          bool
	}{
		{rev: "latest@sha256:" + hex64, tag: "latest", digest: "sha256:" + hex64},
		{rev: "sha256:" + hex64, digest: "sha256:" + hex64},
		{rev: "6.0.1@sha256:" + hex64, tag: "6.0.1", digest: "sha256:" + hex64},
		{rev: "v1.2.3-rc.1_build@sha256:" + hex64, tag: "v1.2.3-rc.1_build", digest: "sha256:" + hex64},
		{rev: "latest@sha256:" + strings.ToUpper(hex64), tag: "latest", digest: "sha256:" + hex64},
		{rev: strings.Repeat("t", 128) + "@sha256:" + hex64, tag: strings.Repeat("t", 128), digest: "sha256:" + hex64},

		{rev: "", wantErr: true},
		{rev: "latest", wantErr: true},
		{rev: "latest@", wantErr: true},
		{rev: "@sha256:" + hex64, wantErr: true},
		{rev: "latest@sha256:" + hex64[:63], wantErr: true},
		{rev: "latest@sha256:" + hex64 + "0", wantErr: true},
		{rev: "latest@sha256:" + hex64[:63] + "g", wantErr: true},
		{rev: "latest@sha512:" + hex64 + hex64, wantErr: true},
		{rev: "main@sha1:" + hex64[:40], wantErr: true},   // a git revision
		{rev: "main/" + hex64[:40], wantErr: true},        // legacy git revision
		{rev: hex64[:40], wantErr: true},                  // bare git SHA
		{rev: "latest/" + hex64, wantErr: true},           // pre-v2 Flux OCI revision
		{rev: "feature/x@sha256:" + hex64, wantErr: true}, // not an OCI tag
		{rev: "a@b@sha256:" + hex64, wantErr: true},       // not an OCI tag
		{rev: ".hidden@sha256:" + hex64, wantErr: true},   // tags start with a word character
		{rev: strings.Repeat("t", 129) + "@sha256:" + hex64, wantErr: true},
		{rev: "latest @sha256:" + hex64, wantErr: true},
		{rev: "latest@sha256:" + hex64 + "\n", wantErr: true},
	}
	for _, tt := range tests {
		tag, digest, err := oci.ParseArtifactRevision(tt.rev)
		if tt.wantErr {
			if err == nil {
				t.Errorf("ParseArtifactRevision(%q) = %q, %q; want an error", tt.rev, tag, digest)
			} else if !errors.Is(err, revision.ErrInvalid) {
				t.Errorf("ParseArtifactRevision(%q) error %v does not wrap revision.ErrInvalid", tt.rev, err)
			}
			continue
		}
		if err != nil || tag != tt.tag || digest != tt.digest {
			t.Errorf("ParseArtifactRevision(%q) = %q, %q, %v; want %q, %q", tt.rev, tag, digest, err, tt.tag, tt.digest)
		}
	}
}

var (
	digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	tagPattern    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
)

func FuzzParseArtifactRevision(f *testing.F) {
	for _, s := range []string{
		"latest@sha256:" + hex64, "sha256:" + hex64, "v1@sha256:" + strings.ToUpper(hex64),
		"main@sha1:" + hex64[:40], "latest/" + hex64, "a@b@sha256:" + hex64, "", "@", "sha256:",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rev string) {
		tag, digest, err := oci.ParseArtifactRevision(rev)
		if err != nil {
			if !errors.Is(err, revision.ErrInvalid) {
				t.Fatalf("error %v does not wrap revision.ErrInvalid", err)
			}
			if tag != "" || digest != "" {
				t.Fatalf("error %v with results %q, %q", err, tag, digest)
			}
			return
		}
		if !digestPattern.MatchString(digest) {
			t.Fatalf("digest %q is not sha256:<64 lower hex>", digest)
		}
		if tag != "" && !tagPattern.MatchString(tag) {
			t.Fatalf("tag %q is not an OCI tag", tag)
		}
		// The parts rebuild the revision, up to the case of the hex digits.
		canon := digest
		if tag != "" {
			canon = tag + "@" + digest
		}
		if !strings.EqualFold(canon, rev) {
			t.Fatalf("%q parsed to %q, %q", rev, tag, digest)
		}
		if tag2, digest2, err := oci.ParseArtifactRevision(canon); err != nil || tag2 != tag || digest2 != digest {
			t.Fatalf("canonical %q reparsed to %q, %q, %v", canon, tag2, digest2, err)
		}
	})
}
