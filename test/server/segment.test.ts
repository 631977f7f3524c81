// paligemma/segment on the tiny model with a mask decoder (vae.onnx), through a spawned daemon:
// decoding held to the segment grammar (the default) yields an object with a mask over its box.
import assert from 'node:assert/strict';
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { command as convertVae } from '../../daemon/cli/convert-vae.js';
import type { DaemonConnection } from '../../daemon/client/daemon.js';
import { decodeRle } from '../../daemon/engine/segment/index.js';
import * as protocol from '../../daemon/protocol.js';
import { cleanupScratch, images, repoRoot, tempDir, type TestDaemon, testDaemon, tinyModel } from './daemon.js';

let daemon: TestDaemon;
let client: DaemonConnection;

before(async () => {
  // A copy of the shared converted model, so that other tests keep a folder without vae.onnx.
  const model = join(await tempDir('pg-segmodel-'), 'tiny-paligemma-224');
  await cp(await tinyModel(), model, { recursive: true });
  assert.equal(await convertVae.run([join(repoRoot, 'test/fixtures/tiny-vae/vae-tiny.npz'), join(model, 'vae.onnx')]), 0);
  daemon = await testDaemon(['--model', model, '--ep', 'cpu']);
  client = await daemon.connect();
});

after(async () => {
  client?.close();
  await daemon?.stop();
  await cleanupScratch();
});

const segment = (params: Partial<protocol.SegmentParams>) =>
  client.connection.sendRequest(protocol.Segment.type, { image: { path: images.wide }, object: 'circle', decoding: { maxNewTokens: 24 }, ...params });

test('segment returns one object whose mask covers exactly its box, on each fixture image', async () => {
  for (const [name, path] of Object.entries(images)) {
    const r = await segment({ image: { path } });
    assert.equal(r.objects.length, 1, `${name}: ${JSON.stringify(r.objects)}`);
    const { box, mask } = r.objects[0];
    assert.ok(mask, `${name}: no mask for box ${JSON.stringify(box)}`);
    assert.equal(mask.width, Math.round(box.x1 - box.x0), name);
    assert.equal(mask.height, Math.round(box.y1 - box.y0), name);
    assert.ok(mask.width > 0 && mask.height > 0, name);
    assert.equal(decodeRle(mask).length, mask.width * mask.height, name);
    if (name === 'wide') assert.ok(0 <= box.x0 && box.x1 <= 640 && 0 <= box.y0 && box.y1 <= 360, JSON.stringify(box));
  }
});

test('constrained: false decodes freely and is cached apart from the constrained answer', async () => {
  const free = await segment({ constrained: false });
  assert.equal(free.cached, false, 'the constrained answer must not be served for an unconstrained request');
  // The random-weight model does not follow the grammar by itself.
  assert.equal(free.objects.length, 0, JSON.stringify(free.objects));
  assert.equal((await segment({ constrained: false })).cached, true);
  const constrained = await segment({ constrained: true });
  assert.equal(constrained.cached, true, 'constrained: true is the default, asked for in the first test');
  assert.equal(constrained.objects.length, 1);
});

test('constrained must be a boolean', async () => {
  await assert.rejects(segment({ constrained: 'yes' as unknown as boolean }), /segment\.constrained must be a boolean/);
});
