#!/usr/bin/env bash
# nats-server for the cluster tests (npm run test:cluster): Debian's package. Idempotent: does
# nothing when a nats-server is already on PATH.
set -euo pipefail
if command -v nats-server >/dev/null 2>&1; then
  echo "nats-server present: $(nats-server --version)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
# apt may be locked briefly by another install: try a few times.
for attempt in 1 2 3 4 5; do
  if $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nats-server; then
    break
  fi
  if [ "$attempt" -eq 5 ]; then echo "install-cluster: apt-get install nats-server failed" >&2; exit 1; fi
  sleep 5
done
echo "nats-server installed: $(nats-server --version)"
