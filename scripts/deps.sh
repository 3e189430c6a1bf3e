#!/usr/bin/env bash
# Installs the system libraries the package links (Debian/Ubuntu), only when missing.
set -euo pipefail
need=()
pkg-config --exists libzstd 2>/dev/null || need+=(libzstd-dev)
pkg-config --exists libxxhash 2>/dev/null || need+=(libxxhash-dev)
pkg-config --exists sndfile 2>/dev/null || need+=(libsndfile1-dev)
pkg-config --exists samplerate 2>/dev/null || need+=(libsamplerate0-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing ${need[*]}" >&2
  $SUDO apt-get -o DPkg::Lock::Timeout=900 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -qq pkg-config "${need[@]}" >/dev/null
fi
