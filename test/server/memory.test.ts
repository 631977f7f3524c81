// Memory stays flat: after a warm-up, 1,000 cached and 200 uncached requests (200 distinct
// inline images, so decoding, the vision encoder and the decoder all run) must not grow the
// daemon's resident set by more than a few MB. RSS is read through `status`.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import type { DaemonConnection } from '../../daemon/client/daemon.js';
import * as protocol from '../../daemon/protocol.js';
import { cleanupScratch, images, type TestDaemon, testDaemon, tinyModel } from './daemon.js';

let daemon: TestDaemon;
let client: DaemonConnection;

before(async () => {
  daemon = await testDaemon(['--model', await tinyModel(), '--ep', 'cpu']);
  client = await daemon.connect();
});

after(async () => {
  client?.close();
  await daemon?.stop();
  await cleanupScratch();
});

/** A distinct small PNG per index (its own colour and size), base64. */
async function distinctImage(i: number): Promise<string> {
  const png = await sharp({
    create: { width: 48 + (i % 17), height: 40 + (i % 13), channels: 3, background: { r: i % 256, g: (i * 37) % 256, b: (i * 91) % 256 } },
  })
    .png()
    .toBuffer();
  return png.toString('base64');
}

const MB = 1024 * 1024;

test('RSS stays flat over 1,000 cached and 200 uncached requests', async () => {
  const rpc = client.connection;
  const decoding = { maxNewTokens: 2 };
  const inline = await Promise.all(Array.from({ length: 500 }, (_, i) => distinctImage(i)));
  const uncached = (i: number) => rpc.sendRequest(protocol.Caption.type, { image: { data: inline[i], mimeType: 'image/png' }, decoding });
  const cached = () => rpc.sendRequest(protocol.Caption.type, { image: { path: images.shapes }, decoding });

  // Warm-up: sessions, allocator arenas and caches reach their working size. With the engine in
  // its worker thread (a second V8 isolate, onnxruntime's allocations on that thread) RSS climbs
  // for the first ~300 new images (daemon process, 2026-11-23: +11 MB over images 100-300), then
  // by about 1-2 MB per 100 more; in-process it was the first ~100.
  for (let i = 200; i < 500; i += 10) await Promise.all(Array.from({ length: 10 }, (_, j) => uncached(i + j)));
  await cached();
  for (let i = 0; i < 100; i++) await cached();
  // ... and bursts of 100 concurrent cached requests, as measured below (their buffers set the
  // allocator's high-water mark once).
  for (let burst = 0; burst < 3; burst++) await Promise.all(Array.from({ length: 100 }, cached));
  global.gc?.();
  const start = (await rpc.sendRequest(protocol.Status.type)).memory;

  const t0 = Date.now();
  for (let batch = 0; batch < 10; batch++) await Promise.all(Array.from({ length: 100 }, cached));
  const cachedMs = Date.now() - t0;
  const afterCached = (await rpc.sendRequest(protocol.Status.type)).memory;
  const t1 = Date.now();
  const uncachedBatch = async (from: number) => {
    const rs = await Promise.all(Array.from({ length: 10 }, (_, j) => uncached(from + j)));
    assert.ok(rs.every((r) => !r.cached));
  };
  for (let i = 0; i < 100; i += 10) await uncachedBatch(i);
  const mid = (await rpc.sendRequest(protocol.Status.type)).memory;
  for (let i = 100; i < 200; i += 10) await uncachedBatch(i);
  const uncachedMs = Date.now() - t1;
  const end = await rpc.sendRequest(protocol.Status.type);

  const mb = (b: number) => (b / MB).toFixed(1);
  const growth = end.memory.rssBytes - start.rssBytes;
  const secondHalf = end.memory.rssBytes - mid.rssBytes;
  process.stderr.write(
    `# rss ${mb(start.rssBytes)} MB -> ${mb(afterCached.rssBytes)} MB (after 1000 cached) -> ${mb(mid.rssBytes)} MB (+100 uncached) -> ${mb(end.memory.rssBytes)} MB (+100 uncached): ` +
      `${mb(growth)} MB in all, ${mb(secondHalf)} MB in the last 100; heap ${mb(start.heapUsedBytes)} -> ${mb(end.memory.heapUsedBytes)} MB; ` +
      `1000 cached in ${cachedMs} ms, 200 uncached in ${uncachedMs} ms; cache ${end.cache.entries} results, ${end.cache.imageEntries} images\n`,
  );
  assert.ok(end.cache.imageEntries <= 16, 'decoded images are bounded');
  // A leak of 100 KB per request would add 10 MB per 100 requests; allocator noise is a few MB.
  assert.ok(growth < 16 * MB, `rss grew by ${mb(growth)} MB`);
  assert.ok(secondHalf < 8 * MB, `rss grew by ${mb(secondHalf)} MB over the last 100 uncached requests`);
});
