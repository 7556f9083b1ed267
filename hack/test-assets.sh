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
# api module is versioned apart from its main module: its CRDs come from a pinned release of the main module,
# as do notification-controller's (the tracker reads its kinds unstructured, so go.mod does not name it).
helm_controller=github.com/fluxcd/helm-controller@v1.4.0
notification_controller=github.com/fluxcd/notification-controller@v1.6.0
for mod in $(cd "$root" && go list -m -f '{{.Path}}@{{.Version}}' github.com/fluxcd/kustomize-controller/api github.com/fluxcd/source-controller/api) "$helm_controller" "$notification_controller"; do
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

# Image CRDs: the proxy serves only the api modules of image-reflector-controller and image-automation-controller,
# so their CRDs are generated from those modules' types with controller-gen, as the controllers' own builds do.
controller_gen="$tools_dir/controller-gen-v0.21.0"
image_crds_done="$crds/.image-crds-v1.2.5"
if [ ! -f "$image_crds_done" ] && [ ! -x "$controller_gen" ]; then
  log "building controller-gen v0.21.0 from the Go module proxy"
  GOBIN="$tools_dir/controller-gen.tmp" GOFLAGS=-mod=mod go install sigs.k8s.io/controller-tools/cmd/controller-gen@v0.21.0
  mv "$tools_dir/controller-gen.tmp/controller-gen" "$controller_gen"
  rmdir "$tools_dir/controller-gen.tmp"
fi
for mod in github.com/fluxcd/image-reflector-controller/api@v1.2.5 github.com/fluxcd/image-automation-controller/api@v1.2.5; do
  [ ! -f "$image_crds_done" ] || break
  dir=$(cd "$root" && go mod download -json "$mod" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  if [ -z "$dir" ]; then
    log "module $mod not downloaded"
    exit 1
  fi
  work=$(mktemp -d)
  cp -r "$dir"/. "$work"/
  chmod -R u+w "$work"
  (cd "$work" && GOFLAGS=-mod=mod "$controller_gen" crd paths=./... output:crd:dir="$crds")
  rm -rf "$work"
done
touch "$image_crds_done"

# prometheus-operator CRDs (ServiceMonitor, PrometheusRule) for the install tests' dry-runs: from the main
# module's example/prometheus-operator-crd, into a folder of their own beside the Flux CRDs.
prometheus_operator=github.com/prometheus-operator/prometheus-operator@v0.94.1
prometheus_crds="$tools_dir/prometheus-operator-crds"
if [ ! -f "$prometheus_crds/monitoring.coreos.com_servicemonitors.yaml" ]; then
  dir=$(cd "$root" && go mod download -json "$prometheus_operator" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  if [ -z "$dir" ] || [ ! -d "$dir/example/prometheus-operator-crd" ]; then
    log "no CRDs found for $prometheus_operator"
    exit 1
  fi
  mkdir -p "$prometheus_crds"
  cp -f "$dir"/example/prometheus-operator-crd/monitoring.coreos.com_{servicemonitors,prometheusrules}.yaml "$prometheus_crds/"
  chmod u+w "$prometheus_crds"/*.yaml
fi

echo "$assets"
