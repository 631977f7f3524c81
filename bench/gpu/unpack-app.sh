#!/usr/bin/env bash
# On the GPU machine, from the project root: unpack .device/app (see make-carry.sh) into /tmp/app.
set -euo pipefail
mkdir -p /tmp/app && tar -C /tmp/app -xJf .device/app/node_modules.tar.xz
cp .device/app/paligemma.mjs .device/app/hf_baseline.py /tmp/app/
echo "app: $(du -sh /tmp/app | cut -f1) in /tmp/app"
