#!/usr/bin/env bash
# Installs Debian's Neovim for test/e2e/neovim.e2e.mjs (`paligemma lsp` in a real editor).
# Idempotent: a second run takes well under a second.
set -euo pipefail
log() { printf '[install-neovim] %s\n' "$*"; }

if command -v nvim >/dev/null 2>&1; then
  log "$(nvim --version | head -1) already installed"
  exit 0
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
log "apt-get install neovim"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends neovim >/dev/null
log "$(nvim --version | head -1)"
