#!/usr/bin/env bash
# Installs Debian's prometheus package: promtool checks and unit-tests the generated rules, and the e2e suite runs
# prometheus against the tracker. Skipped when both are on PATH. Prints promtool's path on its last line.
set -euo pipefail

log() { echo "monitoring-assets: $*" >&2; }

if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing prometheus (and promtool) with apt-get"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >&2
  else
    log "promtool or prometheus not found: install Debian's prometheus package (or put both on PATH)"
    exit 1
  fi
fi

command -v promtool
