#!/usr/bin/env bash
# Installs what the envtest suites need, skipping what is already there:
# etcd (Debian etcd-server), kube-apiserver built from the Go module proxy, and the Flux CRDs.
# Prints the assets folder (for KUBEBUILDER_ASSETS) on its last line.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
k8s_version=1.36.3
tools_dir=${TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flux-commit-tracker/tools}
assets="$tools_dir/k8s-$k8s_version"
crds="$tools_dir/flux-crds"
mkdir -p "$assets" "$crds"

log() { echo "test-assets: $*" >&2; }

# etcd: from Debian's etcd-server package.
if ! command -v etcd >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing etcd-server with apt-get"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >&2
  else
    log "etcd not found: install Debian's etcd-server (or put etcd on PATH)"
    exit 1
  fi
fi
ln -sf "$(command -v etcd)" "$assets/etcd"

# kube-apiserver: built from k8s.io/kubernetes in its own tools module (about 3 minutes cold on 2 cores).
if [ ! -x "$assets/kube-apiserver" ]; then
  log "building kube-apiserver v$k8s_version from the Go module proxy (about 3 min on first run)"
  (cd "$root/hack/tools/kube-apiserver" &&
    GOFLAGS=-mod=mod go build -o "$assets/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
  mv "$assets/kube-apiserver.tmp" "$assets/kube-apiserver"
fi

# Flux CRDs: the config/crd/bases folders of the controller modules, from the module cache. helm-controller's
# api module is versioned apart from its main module: its CRDs come from a pinned release of the main module.
helm_controller=github.com/fluxcd/helm-controller@v1.4.0
for mod in $(cd "$root" && go list -m -f '{{.Path}}@{{.Version}}' github.com/fluxcd/kustomize-controller/api github.com/fluxcd/source-controller/api) "$helm_controller"; do
  main_mod=${mod%/api@*}
  [ "$main_mod" = "$mod" ] || main_mod=$main_mod@${mod##*@}
  dir=$(cd "$root" && go mod download -json "$main_mod" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  if [ -z "$dir" ] || [ ! -d "$dir/config/crd/bases" ]; then
    log "no CRDs found for $main_mod"
    exit 1
  fi
  cp -f "$dir"/config/crd/bases/*.yaml "$crds/"
  chmod u+w "$crds"/*.yaml
done

echo "$assets"
