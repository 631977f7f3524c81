#!/usr/bin/env bash
# Installs Mesa's lavapipe (a Vulkan driver that runs on the CPU) so that onnxruntime's WebGPU
# execution provider finds an adapter on a machine without a GPU: test/engine/model/webgpu.test.ts
# then checks the WebGPU EP against the CPU EP (it skips, saying why, without an adapter).
# Dawn needs Vulkan features that Debian 12's Mesa 22.3 lacks (shaderUniform*ArrayDynamicIndexing);
# bookworm-backports' Mesa 25 has them. Idempotent: a second run takes well under a second.
set -euo pipefail
log() { printf '[install-webgpu] %s\n' "$*"; }

version=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
if [ -f /usr/share/vulkan/icd.d/lvp_icd.json ] && [ "${version%%.*}" -ge 24 ] 2>/dev/null; then
  log "lavapipe $version already installed"
  exit 0
fi

SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
. /etc/os-release
suite=()
if [ "${VERSION_CODENAME:-}" = bookworm ]; then
  echo "deb http://deb.debian.org/debian bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
  suite=(-t bookworm-backports)
fi
log "apt-get install ${suite[*]} mesa-vulkan-drivers libvulkan1"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${suite[@]}" mesa-vulkan-drivers libvulkan1 >/dev/null
log "lavapipe $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"
