#!/usr/bin/env node
// Bundles the programs the packaged extension runs, with esbuild:
//   dist/extension.cjs  the extension host side (CommonJS; `vscode` is provided by VS Code)
//   dist/daemon.mjs     the daemon and `paligemma` CLI, `paligemma lsp` included (the extension's
//                       language server; ESM; native modules stay in node_modules)
//   dist/engineWorker.mjs  the daemon's engine thread (ESM, started by daemon.mjs)
//   dist/session-thread-worker.mjs  the thread a CPU vision session loads and runs on (ESM,
//                       daemon/engine/model/session-thread.ts starts it from beside either bundle)
//   dist/webview.js     the image inspector's webview script (browser IIFE, @vscode-elements included)
// Usage: node .ci/bundle.mjs [--dev]   (--dev: no minification, inline source maps)
import { build } from 'esbuild';
import { existsSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dev = process.argv.includes('--dev');
const common = {
  bundle: true,
  minify: !dev,
  sourcemap: dev ? 'inline' : false,
  legalComments: 'none',
  logLevel: 'warning',
  absWorkingDir: root,
};
// Native code and what loads it is shipped as node_modules (linux-x64 files only, see .vscodeignore).
const nativeExternals = ['onnxruntime-node', 'onnxruntime-common', 'sharp'];
const esmRequireBanner = "import { createRequire as __pgCreateRequire } from 'node:module'; const require = __pgCreateRequire(import.meta.url);";

const targets = [
  {
    name: 'extension',
    entryPoints: ['extension/main.ts'],
    outfile: 'dist/extension.cjs',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['vscode', ...nativeExternals],
    // Shared modules locate files with import.meta.url, which CommonJS lacks: give them this file's URL.
    define: { 'import.meta.url': '__pgImportMetaUrl' },
    banner: { js: "const __pgImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  },
  {
    name: 'daemon',
    entryPoints: ['daemon/cli/main.ts'],
    outfile: 'dist/daemon.mjs',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: nativeExternals,
    // CommonJS dependencies bundled into an ES module still call require() for Node built-ins.
    banner: { js: esmRequireBanner },
  },
  {
    // The daemon's engine thread: daemon/server/workerBackend.ts starts it from beside daemon.mjs.
    name: 'engineWorker',
    entryPoints: ['daemon/server/engineWorker.ts'],
    outfile: 'dist/engineWorker.mjs',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: nativeExternals,
    banner: { js: esmRequireBanner },
  },
  {
    name: 'sessionThread',
    entryPoints: ['daemon/engine/model/session-thread-worker.ts'],
    outfile: 'dist/session-thread-worker.mjs',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: nativeExternals,
    banner: { js: esmRequireBanner },
  },
  {
    name: 'webview',
    entryPoints: ['webview/main.ts'],
    outfile: 'dist/webview.js',
    platform: 'browser',
    format: 'iife',
    target: 'chrome120',
  },
];

rmSync(join(root, 'dist'), { recursive: true, force: true });
let failed = false;
await Promise.all(
  targets.map(async ({ name, ...options }) => {
    if (!existsSync(join(root, options.entryPoints[0]))) {
      console.error(`bundle: ${name}: ${options.entryPoints[0]} does not exist`);
      failed = true;
      return;
    }
    const started = Date.now();
    try {
      await build({ ...common, ...options });
      console.log(`bundle: ${options.outfile} (${Date.now() - started} ms)`);
    } catch (err) {
      console.error(`bundle: ${name} failed: ${err.message}`);
      failed = true;
    }
  }),
);
if (failed) process.exit(1);
