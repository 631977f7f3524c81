// Every protocol method against a spawned shared daemon serving the real tiny model (converted
// from test/fixtures by the real converter), over real JSON-RPC on a per-test socket.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { DaemonConnection } from '../../daemon/client/daemon.js';
import { cleanText } from '../../daemon/engine/text/index.js';
import * as protocol from '../../daemon/protocol.js';
import { cleanupScratch, fixtureDir, images, tempDir, type TestDaemon, testDaemon, tinyModel } from './daemon.js';

interface GoldenCase {
  image: string;
  prompt: string;
  input_ids: number[];
  generated_ids: number[];
}
const golden = JSON.parse(readFileSync(`${fixtureDir}/golden.json`, 'utf8')) as { cases: GoldenCase[] };
const goldenCase = (image: string, prompt: string) => golden.cases.find((c) => c.image === image && c.prompt === prompt)!;

let model: string;
let daemon: TestDaemon;
let client: DaemonConnection;

before(async () => {
  model = await tinyModel();
  daemon = await testDaemon(['--model', model, '--ep', 'cpu']);
  client = await daemon.connect();
});

after(async () => {
  client?.close();
  await daemon?.stop();
  await cleanupScratch();
});

const rpc = () => client.connection;

function assertMeta(r: protocol.ResultMeta, cached: boolean): void {
  assert.equal(r.model, 'tiny-paligemma-224');
  assert.equal(typeof r.ms, 'number');
  assert.ok(r.ms >= 0);
  assert.equal(r.cached, cached);
}

test('generate reproduces the reference token ids for the golden prompt', async () => {
  const g = goldenCase('shapes.png', 'caption en');
  const r = await rpc().sendRequest(protocol.Generate.type, {
    image: { path: images.shapes },
    prompt: 'caption en',
    decoding: { maxNewTokens: g.generated_ids.length },
  });
  assertMeta(r, false);
  assert.deepEqual(r.inputIds, g.input_ids);
  assert.deepEqual(r.generatedIds, g.generated_ids);
  assert.equal(typeof r.raw, 'string');
});

test('caption, ocr and answer return text; asking again is answered from the cache', async () => {
  const image = { path: images.gradient };
  const calls = [
    () => rpc().sendRequest(protocol.Caption.type, { image, language: 'en', decoding: { maxNewTokens: 12 } }),
    () => rpc().sendRequest(protocol.Ocr.type, { image, decoding: { maxNewTokens: 12 } }),
    () => rpc().sendRequest(protocol.Answer.type, { image, question: 'what color is the circle?', language: 'en', decoding: { maxNewTokens: 12 } }),
  ];
  for (const call of calls) {
    const first = await call();
    assertMeta(first, false);
    assert.equal(typeof first.text, 'string');
    const again = await call();
    assertMeta(again, true);
    assert.equal(again.text, first.text);
  }
});

test('caption runs the same prompt as generate("caption en"): the same text without loc/seg tokens', async () => {
  const decoding = { maxNewTokens: 10 };
  const g = await rpc().sendRequest(protocol.Generate.type, { image: { path: images.wide }, prompt: 'caption en', decoding });
  const c = await rpc().sendRequest(protocol.Caption.type, { image: { path: images.wide }, language: 'en', decoding });
  assert.equal(c.text, cleanText(g.text));
  assert.doesNotMatch(c.text, /<(loc|seg)\d+>/);
});

test('an inline image gives the same answer as the same bytes by path (content-addressed cache)', async () => {
  const decoding = { maxNewTokens: 6 };
  const byPath = await rpc().sendRequest(protocol.Ocr.type, { image: { path: images.wide }, decoding });
  const inline = await rpc().sendRequest(protocol.Ocr.type, {
    image: { data: readFileSync(images.wide).toString('base64'), mimeType: 'image/jpeg' },
    decoding,
  });
  assert.equal(inline.text, byPath.text);
  assert.equal(inline.cached, true);
});

test('a file changed in place is not answered from the cache of its old content', async () => {
  const path = join(await tempDir('pg-edit-'), 'picture.png');
  const decoding = { maxNewTokens: 7 };
  await copyFile(images.shapes, path);
  const a = await rpc().sendRequest(protocol.Ocr.type, { image: { path }, decoding });
  assert.equal(a.cached, false);
  assert.equal((await rpc().sendRequest(protocol.Ocr.type, { image: { path }, decoding })).cached, true);
  await copyFile(images.gradient, path);
  const b = await rpc().sendRequest(protocol.Ocr.type, { image: { path }, decoding });
  const direct = await rpc().sendRequest(protocol.Ocr.type, { image: { path: images.gradient }, decoding });
  assert.equal(b.text, direct.text);
  assert.notEqual(b.text, a.text);
});

test('detect and segment return labelled boxes inside the image', async () => {
  const d = await rpc().sendRequest(protocol.Detect.type, { image: { path: images.wide }, objects: ['red square', 'circle'], decoding: { maxNewTokens: 24 } });
  assertMeta(d, false);
  const s = await rpc().sendRequest(protocol.Segment.type, { image: { path: images.wide }, object: 'circle', decoding: { maxNewTokens: 24 } });
  assertMeta(s, false);
  for (const o of [...d.objects, ...s.objects]) {
    assert.equal(typeof o.label, 'string');
    const { x0, y0, x1, y1 } = o.box;
    assert.ok(0 <= x0 && x0 <= x1 && x1 <= 640, JSON.stringify(o.box));
    assert.ok(0 <= y0 && y0 <= y1 && y1 <= 360, JSON.stringify(o.box));
  }
});

test('streamId streams token notifications to the requesting client only', async () => {
  const tokens: protocol.TokenNotification[] = [];
  const sub = rpc().onNotification(protocol.TokenStream.type, (n) => void tokens.push(n));
  const other = await daemon.connect();
  const leaked: protocol.TokenNotification[] = [];
  other.connection.onNotification(protocol.TokenStream.type, (n) => void leaked.push(n));
  try {
    const r = await rpc().sendRequest(protocol.Generate.type, {
      image: { path: images.gradient },
      prompt: 'describe en',
      decoding: { maxNewTokens: 8 },
      streamId: 'stream-1',
    });
    assert.equal(tokens.length, r.generatedIds.length);
    assert.deepEqual(
      tokens.map((t) => t.tokenId),
      r.generatedIds,
    );
    assert.ok(tokens.every((t) => t.streamId === 'stream-1'));
    assert.equal(tokens.at(-1)!.text, r.text);
    assert.equal(leaked.length, 0);
  } finally {
    sub.dispose();
    other.close();
  }
});

test('status reports the model, queue, memory, cache and clients', async () => {
  const s = await rpc().sendRequest(protocol.Status.type);
  assert.equal(s.version, '0.1.0');
  assert.equal(s.transport, 'socket');
  assert.equal(s.socketPath, daemon.endpoint.socketPath);
  assert.equal(s.model.state, 'ready');
  assert.equal(s.model.name, 'tiny-paligemma-224');
  assert.equal(s.model.path, model);
  assert.equal(s.model.executionProvider, 'cpu');
  assert.equal(s.model.decodeLoop, 'host', 'the CPU decodes on the host');
  assert.equal(s.model.architecture, 'paligemma');
  assert.equal(s.model.imageSize, 224);
  assert.deepEqual(s.queue, { running: 0, pending: 0, capacity: 512 });
  assert.ok(s.memory.rssBytes > 0 && s.memory.heapUsedBytes > 0);
  assert.ok(s.cache.entries > 0 && s.cache.hits > 0 && s.cache.misses > 0);
  assert.equal(s.clients, 1);
});

test('unloadModel and loadModel change the state and notify every client', async () => {
  const changes: protocol.ModelStatus[] = [];
  const progress: protocol.ProgressNotification[] = [];
  const other = await daemon.connect();
  other.connection.onNotification(protocol.ModelChanged.type, (s) => void changes.push(s));
  other.connection.onNotification(protocol.Progress.type, (p) => void progress.push(p));
  // Once `other` has an answer, the daemon has registered it for broadcasts.
  await other.connection.sendRequest(protocol.Status.type);
  try {
    const unloaded = await rpc().sendRequest(protocol.UnloadModel.type);
    assert.equal(unloaded.state, 'none');
    const loaded = await rpc().sendRequest(protocol.LoadModel.type, { path: model, executionProvider: 'cpu' });
    assert.equal(loaded.state, 'ready');
    assert.equal(loaded.name, 'tiny-paligemma-224');
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(
      changes.map((c) => c.state),
      ['none', 'loading', 'ready'],
    );
    assert.ok(progress.some((p) => p.kind === 'loadModel' && p.done));
    // A cached answer survives an unload/reload of the same model.
    const r = await rpc().sendRequest(protocol.Ocr.type, { image: { path: images.wide }, decoding: { maxNewTokens: 6 } });
    assert.equal(r.cached, true);
  } finally {
    other.close();
  }
});

test('LSP lifecycle: initialize, initialized, shutdown, exit closes only that connection', async () => {
  const lsp = await daemon.connect();
  const init = await lsp.connection.sendRequest(protocol.Initialize.type, { processId: process.pid, capabilities: {} });
  assert.deepEqual(init, { capabilities: {}, serverInfo: { name: 'paligemma-daemon', version: '0.1.0' } });
  await lsp.connection.sendNotification(protocol.Initialized.type, {});
  assert.equal((await lsp.connection.sendRequest(protocol.Status.type)).clients, 2);
  assert.equal(await lsp.connection.sendRequest(protocol.Shutdown.type), null);
  await assert.rejects(lsp.connection.sendRequest(protocol.Status.type), (e: { code: number }) => e.code === protocol.ErrorCodes.InvalidRequest);
  const closed = new Promise<void>((r) => lsp.socket.once('close', () => r()));
  await lsp.connection.sendNotification(protocol.Exit.type);
  await closed;
  const s = await rpc().sendRequest(protocol.Status.type);
  assert.equal(s.clients, 1);
});
