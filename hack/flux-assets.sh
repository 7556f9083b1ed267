#!/usr/bin/env bash
# Builds the Flux controllers the end-to-end tests and `make demo` run (test/stack), skipping what is
# already built: source-controller and kustomize-controller from the Go module proxy, each in its own tools
# module under hack/tools/ (their go.mod pins the versions and the replaces the upstream modules need).
# Prints the folder holding both binaries (for FLUX_BIN_DIR) on its last line.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tools_dir=${TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flux-commit-tracker/tools}

log() { echo "flux-assets: $*" >&2; }

# version <controller>: the version hack/tools/<controller>/go.mod requires, so a bump builds a new folder.
version() {
  sed -n "s|^require github.com/fluxcd/$1 \(v[^ ]*\)\$|\1|p" "$root/hack/tools/$1/go.mod"
}
sc_version=$(version source-controller)
kc_version=$(version kustomize-controller)
if [ -z "$sc_version" ] || [ -z "$kc_version" ]; then
  log "cannot read the controller versions from hack/tools/*/go.mod"
  exit 1
fi
dir="$tools_dir/flux-source-controller-$sc_version-kustomize-controller-$kc_version"

if [ ! -x "$dir/source-controller" ] || [ ! -x "$dir/kustomize-controller" ]; then
  # Built into a side folder, moved into place only when both binaries are there; a binary finished by an
  # interrupted run is kept for the next one.
  partial="$dir.partial"
  rm -rf "$dir" # an incomplete folder left by hand
  mkdir -p "$partial"
  for controller in source-controller kustomize-controller; do
    [ -x "$partial/$controller" ] && continue
    v=$([ "$controller" = source-controller ] && echo "$sc_version" || echo "$kc_version")
    log "building $controller $v from the Go module proxy: about 5 min and 2.5 GB of RAM on 2 cores the first time, less with a warm Go build cache"
    start=$SECONDS
    (cd "$root/hack/tools/$controller" &&
      GOFLAGS=-mod=mod go build -o "$partial/$controller.tmp" "github.com/fluxcd/$controller")
    mv "$partial/$controller.tmp" "$partial/$controller"
    log "built $controller in $((SECONDS - start))s"
  done
  # -T: never move the folder into an existing one (another run may have finished first).
  mv -T "$partial" "$dir" 2>/dev/null || rm -rf "$partial"
fi

echo "$dir"
