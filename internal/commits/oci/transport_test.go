package oci

import "testing"

func TestURLTemplate(t *testing.T) {
	tests := map[string]string{
		"/v2/":                                "/v2/",
		"/v2/app/manifests/latest":            "/v2/{name}/manifests/{reference}",
		"/v2/manifests/app/blobs/sha256:abc":  "/v2/{name}/blobs/{reference}",
		"/v2/org/blobs/manifests/sha256:abc":  "/v2/{name}/manifests/{reference}",
		"/v2/org/app/blobs/uploads/some-uuid": "/v2/{name}/blobs/uploads/{uuid}",
		"/v2/org/app/tags/list":               "/v2/{name}/tags/{reference}",
		"/v2/_catalog":                        "/v2/{…}",
		"/token":                              "/{token}",
		"/oauth2/token":                       "/{token}",
	}
	for path, want := range tests {
		if got := urlTemplate(path); got != want {
			t.Errorf("urlTemplate(%q) = %q, want %q", path, got, want)
		}
	}
}
