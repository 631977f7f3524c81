#!/usr/bin/env bash
# Builds .device/app/: what the GPU machine needs to run `paligemma bench` (it has no Node packages and
# no network): the CLI bundled into one file plus the linux-x64 native packages, xz-compressed to
# stay under the 64 MiB a device call may carry. Unpack there with bench/gpu/unpack-app.sh.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
rm -rf .device/app && mkdir -p .device/app
node .ci/build-wasm.mjs   # the image kernels' generated module, imported by the engine
npx esbuild daemon/cli/main.ts --bundle --platform=node --format=esm --target=node20 \
  --external:onnxruntime-node --external:sharp \
  --banner:js="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);" \
  --outfile=.device/app/paligemma.mjs --log-level=warning
tar -C . -cf - \
  node_modules/onnxruntime-node/package.json node_modules/onnxruntime-node/dist \
  node_modules/onnxruntime-node/bin/napi-v6/linux/x64 \
  node_modules/onnxruntime-common node_modules/sharp node_modules/@img/colour \
  node_modules/@img/sharp-linux-x64 node_modules/@img/sharp-libvips-linux-x64 \
  node_modules/detect-libc node_modules/semver \
  | xz -T2 -6 > .device/app/node_modules.tar.xz
cp bench/hf_baseline.py .device/app/
du -sh .device/app/*
