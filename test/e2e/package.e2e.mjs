// What `npm run package` put in the .vsix: the three bundles, the webview's media, and the native
// modules for linux-x64 only (no other platform, no CUDA/TensorRT provider libraries, no sources).
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { describe, test } from 'node:test';
import * as h from './harness.mjs';

/** The entries of a zip file from its central directory (name, sizes, and a reader for small files). */
function zipEntries(buf) {
  let eocd = buf.length - 22;
  while (eocd >= 0 && buf.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  assert.ok(eocd >= 0, 'the .vsix is a zip file');
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const entries = [];
  for (let i = 0; i < count; i++) {
    assert.equal(buf.readUInt32LE(p), 0x02014b50, 'central directory entry');
    const method = buf.readUInt16LE(p + 10);
    const compressed = buf.readUInt32LE(p + 20);
    const size = buf.readUInt32LE(p + 24);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    entries.push({
      name,
      size,
      read() {
        const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
        const data = buf.subarray(start, start + compressed);
        return method === 0 ? data : inflateRawSync(data);
      },
    });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

describe('the packaged .vsix', () => {
  test('holds the bundles and linux-x64 native modules only', () => {
    const bytes = readFileSync(h.VSIX);
    const entries = zipEntries(bytes);
    const names = entries.map((e) => e.name);
    h.log(`${h.VSIX}: ${(statSync(h.VSIX).size / 1048576).toFixed(1)} MB, ${names.length} files`);
    for (const f of [
      'extension/package.json',
      'extension/dist/extension.cjs',
      'extension/dist/daemon.mjs',
      'extension/dist/engineWorker.mjs',
      'extension/dist/session-thread-worker.mjs',
      'extension/dist/webview.js',
      'extension/media/inspector.css',
    ]) {
      assert.ok(names.includes(f), `${f} is packaged`);
    }
    const native = names.filter((n) => /\.node$|\.so(\.\d+)*$/.test(n));
    assert.ok(
      native.some((n) => n.endsWith('onnxruntime_binding.node')),
      'onnxruntime-node binding',
    );
    assert.ok(
      native.some((n) => /sharp-linux-x64.*\.node$/.test(n)),
      'sharp binding',
    );
    assert.ok(
      native.some((n) => /libvips-cpp\.so/.test(n)),
      'libvips',
    );
    for (const n of native) assert.match(n, /linux[-/]x64/, `${n} is a linux-x64 file`);
    assert.deepEqual(
      names.filter((n) => /cuda|tensorrt|providers_(cuda|tensorrt|shared)/i.test(n)),
      [],
      'no GPU provider libraries',
    );
    assert.deepEqual(
      names.filter((n) => /^extension\/(out|test|daemon|extension|webview|bench|\.ci|\.e2e)\//.test(n) || /\.ts$|\.map$/.test(n)),
      [],
      'no sources, tests or maps',
    );
    const manifest = entries
      .find((e) => e.name === 'extension.vsixmanifest')
      .read()
      .toString('utf8');
    assert.match(manifest, /TargetPlatform="linux-x64"/);
    const pkg = JSON.parse(
      entries
        .find((e) => e.name === 'extension/package.json')
        .read()
        .toString('utf8'),
    );
    assert.equal(pkg.main, './dist/extension.cjs');
  });
});
