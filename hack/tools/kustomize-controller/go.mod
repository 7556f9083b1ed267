// Builds Flux kustomize-controller for the end-to-end tests (hack/flux-assets.sh); never linked into the tracker.
// v1.9.5, not v1.9.6: v1.9.6 needs a github.com/fluxcd/pkg/kustomize version the module proxy here does not serve.
module github.com/flux-commit-tracker/flux-commit-tracker/hack/tools/kustomize-controller

go 1.26.0

require github.com/fluxcd/kustomize-controller v1.9.5

tool github.com/fluxcd/kustomize-controller

// The replaces below are copied from kustomize-controller v1.9.5's own go.mod.

// go-digest at master for BLAKE3.
replace github.com/opencontainers/go-digest => github.com/opencontainers/go-digest v1.0.1-0.20220411205349-bde1400a84be

replace (
	sigs.k8s.io/kustomize/api => sigs.k8s.io/kustomize/api v0.21.1
	sigs.k8s.io/kustomize/kyaml => sigs.k8s.io/kustomize/kyaml v0.21.1
)

// Fix CVE-2022-28948.
replace gopkg.in/yaml.v3 => gopkg.in/yaml.v3 v3.0.1
