// A model folder in the onnx-community / transformers.js layout (no manifest.json) served by a
// spawned daemon: the toy export the engine tests build (test/engine/transformers-js/toy-export.ts).
import assert from 'node:assert/strict';
import { cp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { DaemonConnection } from '../../daemon/client/daemon.js';
import { PaliGemma, loadImage } from '../../daemon/engine/index.js';
import { APPROXIMATE_ATTENTION } from '../../daemon/engine/transformers-js/sessions.js';
import { cleanText } from '../../daemon/engine/text/index.js';
import * as protocol from '../../daemon/protocol.js';
import { identifyModelFolder } from '../../daemon/server/modelIdentity.js';
import { writeToyExport } from '../engine/transformers-js/toy-export.js';
import { cleanupScratch, images, tempDir, type TestDaemon, testDaemon, tinyModel } from './daemon.js';

let toy: string;
const daemons: TestDaemon[] = [];
const clients: DaemonConnection[] = [];

before(async () => {
  toy = join(await tempDir('pg-oc-'), 'toy-export');
  writeToyExport(toy);
});

after(async () => {
  for (const c of clients) c.close();
  await Promise.all(daemons.map((d) => d.stop()));
  await cleanupScratch();
});

async function connect(serveArgs: string[]): Promise<DaemonConnection> {
  const d = await testDaemon(serveArgs);
  daemons.push(d);
  const c = await d.connect();
  clients.push(c);
  return c;
}

/** What the engine itself answers for a caption of `image`, in process. */
async function engineCaption(image: string, maxNewTokens: number): Promise<{ name: string; text: string }> {
  const model = await PaliGemma.load(toy, { executionProvider: 'cpu' });
  try {
    const out = await model.generate({ image: await loadImage(image), prompt: 'caption en', maxNewTokens });
    return { name: model.manifest.name, text: cleanText(out.text) };
  } finally {
    await model.dispose();
  }
}

test("an onnx-community folder has a stable id from config.json and the onnx files, and the engine's name", async () => {
  const a = await identifyModelFolder(toy);
  assert.match(a.id, /^[0-9a-f]{32}$/);
  assert.equal(a.name, 'toy-export (fp32)'); // the fixture's config.json has no _name_or_path
  assert.deepEqual(await identifyModelFolder(`${toy}/`), a);
  const copy = join(await tempDir('pg-oc-copy-'), 'elsewhere');
  await cp(toy, copy, { recursive: true });
  assert.equal((await identifyModelFolder(copy)).id, a.id, 'a copy of the same export has the same id');
  // a different graph (another size) or config is another model: cached results must not mix
  await writeFile(join(copy, 'onnx', 'embed_tokens.onnx_data'), 'x');
  const withData = await identifyModelFolder(copy);
  assert.notEqual(withData.id, a.id);
  await writeFile(join(copy, 'config.json'), JSON.stringify({ _name_or_path: 'onnx-community/toy' }));
  const renamed = await identifyModelFolder(copy);
  assert.notEqual(renamed.id, withData.id);
  assert.equal(renamed.name, 'onnx-community/toy (fp32)');
  // neither layout: the error names both
  await assert.rejects(identifyModelFolder(await tempDir('pg-empty-')), { code: 'model-missing', message: /manifest\.json.*onnx-community/ });
});

test('paligemma/loadModel switches to an onnx-community folder: status warns of approximate attention, captions answer', async () => {
  const client = await connect(['--model', await tinyModel(), '--ep', 'cpu']);
  const rpc = client.connection;
  const before = await rpc.sendRequest(protocol.Status.type);
  assert.equal(before.model.warnings, undefined);

  const loaded = await rpc.sendRequest(protocol.LoadModel.type, { path: toy });
  const { id, name } = await identifyModelFolder(toy);
  assert.equal(loaded.state, 'ready');
  assert.equal(loaded.path, toy);
  assert.equal(loaded.id, id);
  assert.equal(loaded.name, name);
  assert.deepEqual(loaded.warnings, [APPROXIMATE_ATTENTION]);
  assert.deepEqual((await rpc.sendRequest(protocol.Status.type)).model.warnings, [APPROXIMATE_ATTENTION]);

  const want = await engineCaption(images.shapes, 8);
  const r = await rpc.sendRequest(protocol.Caption.type, { image: { path: images.shapes }, language: 'en', decoding: { maxNewTokens: 8 } });
  assert.equal(r.model, want.name);
  assert.equal(r.cached, false);
  assert.equal(r.text, want.text);
  assert.equal((await rpc.sendRequest(protocol.Caption.type, { image: { path: images.shapes }, language: 'en', decoding: { maxNewTokens: 8 } })).cached, true);
});

test('serve --model accepts an onnx-community folder', async () => {
  const client = await connect(['--model', toy, '--ep', 'cpu']);
  const rpc = client.connection;
  const want = await engineCaption(images.gradient, 6);
  const r = await rpc.sendRequest(protocol.Caption.type, { image: { path: images.gradient }, language: 'en', decoding: { maxNewTokens: 6 } });
  assert.equal(r.text, want.text);
  const status = await rpc.sendRequest(protocol.Status.type);
  assert.equal(status.model.state, 'ready');
  assert.equal(status.model.id, (await identifyModelFolder(toy)).id);
  assert.deepEqual(status.model.warnings, [APPROXIMATE_ATTENTION]);
});
