package oci

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
)

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

var goodManifest = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
	`"config":{"mediaType":"application/vnd.cncf.flux.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},` +
	`"layers":[{"mediaType":"application/vnd.cncf.flux.content.v1.tar+gzip","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":10},` +
	`{"mediaType":"` + ExporterInfoMediaType + `","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":321}],` +
	`"annotations":{"org.opencontainers.image.revision":"main@sha1:0123456789abcdef0123456789abcdef01234567",` +
	`"org.opencontainers.image.source":"https://github.com/example/manifests","org.opencontainers.image.created":"2025-03-04T05:06:07Z"}}`

func TestParseManifest(t *testing.T) {
	a, layer, ok, err := parseManifest(testDigest, []byte(goodManifest))
	if err != nil || !ok {
		t.Fatalf("ok %v, err %v", ok, err)
	}
	if a.Digest != testDigest || a.Revision != "main@sha1:0123456789abcdef0123456789abcdef01234567" ||
		a.Source != "https://github.com/example/manifests" || !a.Created.Equal(time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)) {
		t.Errorf("got %+v", a)
	}
	if layer.Size != 321 || layer.Digest.Hex != strings.Repeat("2", 64) {
		t.Errorf("layer %+v", layer)
	}

	soft := map[string]string{
		"created not RFC 3339": strings.Replace(goodManifest, "2025-03-04T05:06:07Z", "yesterday", 1),
		"revision too long":    strings.Replace(goodManifest, "main@sha1:", "main@sha1:"+strings.Repeat("x", maxAnnotation), 1),
		"no annotations":       `{"schemaVersion":2,"layers":[]}`,
	}
	for name, body := range soft {
		t.Run(name, func(t *testing.T) {
			if _, _, _, err := parseManifest(testDigest, []byte(body)); err != nil {
				t.Errorf("err = %v, want the manifest accepted with the value left empty", err)
			}
		})
	}

	bad := map[string]string{
		"empty":                 ``,
		"null":                  `null`,
		"truncated":             goodManifest[:len(goodManifest)/2],
		"schema 1":              `{"schemaVersion":1}`,
		"schemaVersion missing": `{"layers":[]}`,
		"layers a string":       `{"schemaVersion":2,"layers":"x"}`,
		"annotations an array":  `{"schemaVersion":2,"annotations":[]}`,
		"negative layer size":   strings.Replace(goodManifest, `"size":321`, `"size":-1`, 1),
		"bad layer digest":      strings.Replace(goodManifest, "sha256:2222", "md5:2222", 1),
	}
	for name, body := range bad {
		t.Run(name, func(t *testing.T) {
			_, _, _, err := parseManifest(testDigest, []byte(body))
			if !errors.Is(err, ErrInvalid) || !errors.Is(err, commits.ErrBadResponse) {
				t.Errorf("err = %v, want ErrInvalid and commits.ErrBadResponse", err)
			}
		})
	}
}

var hexDigest = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(goodManifest))
	f.Add([]byte(`null`))
	f.Add([]byte(``))
	f.Add([]byte(`{"schemaVersion":2,"layers":[null,{"mediaType":"` + ExporterInfoMediaType + `"}],"annotations":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, layer, ok, err := parseManifest(testDigest, data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || !errors.Is(err, commits.ErrBadResponse) {
				t.Fatalf("error %v does not wrap ErrInvalid and commits.ErrBadResponse", err)
			}
			return
		}
		if a.Digest != testDigest || len(a.Revision) > maxAnnotation || len(a.Source) > maxAnnotation {
			t.Fatalf("accepted %+v", a)
		}
		if ok && (layer.Size < 0 || !hexDigest.MatchString(layer.Digest.String())) {
			t.Fatalf("accepted layer %+v", layer)
		}
		// A created time comes only from an RFC 3339 annotation that says the same.
		var raw struct {
			Annotations map[string]string `json:"annotations"`
		}
		if !a.Created.IsZero() {
			if json.Unmarshal(data, &raw) != nil {
				t.Fatalf("created %v from a manifest that does not decode", a.Created)
			}
			if want, perr := time.Parse(time.RFC3339Nano, raw.Annotations[AnnotationCreated]); perr != nil || !want.Equal(a.Created) {
				t.Fatalf("created %v, annotation %q", a.Created, raw.Annotations[AnnotationCreated])
			}
		}
	})
}
