// The engine in a worker thread (daemon/server/workerBackend.ts): the daemon answers while a model
// runs; the worker gives the in-process engine's results, tokens and errors; an image keeps its
// cached features across the thread boundary; cancellation reaches the worker; and a crashed
// worker fails its requests with a clear error and is replaced on the next load.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CancellationTokenSource } from 'vscode-jsonrpc/node';
import { connectDaemon } from '../../daemon/client/daemon.js';
import { EngineError } from '../../daemon/engine/errors.js';
import * as protocol from '../../daemon/protocol.js';
import { ErrorCodes } from '../../daemon/protocol.js';
import type { Backend, DecodedImage, GenerateRequest, LoadedModel } from '../../daemon/server/backend.js';
import { daemonEndpoint } from '../../daemon/client/endpoint.js';
import { engineBackend } from '../../daemon/server/engineBackend.js';
import { DEFAULT_LIMITS } from '../../daemon/server/service.js';
import { workerBackend } from '../../daemon/server/workerBackend.js';
import { blockingEngineModule } from './blockingEngine.js';
import { cleanupScratch, images, inProcessDaemon, sleep, tempDir, tinyModel } from './daemon.js';

let model: string;
before(async () => {
  model = await tinyModel();
});
after(cleanupScratch);

const cpu = { executionProvider: 'cpu' as const };
const decode = async (b: Backend, path: string) => b.decodeImage(await readFile(path), DEFAULT_LIMITS);
const gen = (prompt: string, extra: Partial<protocol.GenerateParams> = {}): protocol.GenerateParams => ({
  image: { path: images.shapes },
  prompt,
  decoding: { maxNewTokens: 3 },
  ...extra,
});

/** Status latency while the daemon (its own process) runs a generation that blocks its engine's thread for BLOCK_MS. */
const BLOCK_MS = 1500;
async function statusDuringBlockingGeneration(mode: 'worker' | 'in-process'): Promise<{ ms: number; running: number }> {
  const runtimeDir = await tempDir('pg-blk-');
  const script = fileURLToPath(new URL('./blockingDaemon.js', import.meta.url));
  const child = spawn(process.execPath, [script, mode, runtimeDir, model], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const [line] = (await once(child.stdout!, 'data')) as [Buffer];
    assert.equal(line.toString().trim(), 'ready');
    const c = await connectDaemon({ endpoint: daemonEndpoint({ PALIGEMMA_RUNTIME_DIR: runtimeDir }), start: false });
    try {
      await c.connection.sendRequest(protocol.Generate.type, gen('caption en')); // loads the model
      const blocked = c.connection.sendRequest(protocol.Generate.type, gen(`block ${BLOCK_MS} caption en`));
      await sleep(300);
      const t0 = performance.now();
      const status = await c.connection.sendRequest(protocol.Status.type);
      const ms = performance.now() - t0;
      assert.equal((await blocked).generatedIds.length, 3);
      return { ms, running: status.queue.running };
    } finally {
      c.close();
    }
  } finally {
    child.kill();
    await once(child, 'exit');
  }
}

test('status is answered at once while the engine blocks its thread (engine in a worker)', async () => {
  const { ms, running } = await statusDuringBlockingGeneration('worker');
  process.stderr.write(`# worker: status took ${ms.toFixed(0)} ms during a ${BLOCK_MS} ms blocking generation\n`);
  assert.equal(running, 1, 'the blocking generation was in flight');
  assert.ok(ms < 300, `status took ${ms.toFixed(0)} ms`);
});

test('control: with the engine in the main thread, the same status waits for the blocking generation', async () => {
  // What the daemon did before the worker (engineBackend in-process); shows the test above can fail.
  const { ms } = await statusDuringBlockingGeneration('in-process');
  process.stderr.write(`# in-process: status took ${ms.toFixed(0)} ms during a ${BLOCK_MS} ms blocking generation\n`);
  assert.ok(ms > BLOCK_MS / 2, `status took ${ms.toFixed(0)} ms`);
});

test('through the worker: the in-process results, streamed tokens, info and load progress', async () => {
  const local = engineBackend();
  const remote = workerBackend();
  const progress: string[] = [];
  const [a, b] = await Promise.all([local.load(model, cpu), remote.load(model, { ...cpu, onProgress: (p) => progress.push(p.message ?? '') })]);
  try {
    assert.deepEqual(b.info, a.info);
    assert.ok(
      progress.some((m) => m.includes('creating cpu sessions')),
      progress.join('; '),
    );
    const [imgA, imgB] = await Promise.all([decode(local, images.wide), decode(remote, images.wide)]);
    for (const prompt of [local.prompt('caption', { language: 'en' }), local.prompt('ocr', {}), local.prompt('detect', { objects: ['circle', 'square'] })]) {
      const run = async (m: LoadedModel, image: DecodedImage) => {
        const tokens: Array<[number, string]> = [];
        const out = await m.generate({ image, prompt, decoding: { maxNewTokens: 8 }, onToken: (id, text) => tokens.push([id, text]) });
        return { out, tokens };
      };
      const [ra, rb] = [await run(a, imgA), await run(b, imgB)];
      assert.deepEqual(rb.out, ra.out, prompt);
      assert.ok(rb.tokens.length > 0, prompt);
      assert.deepEqual(rb.tokens, ra.tokens, prompt);
    }
    const pics = await Promise.all([images.shapes, images.gradient].map((p) => Promise.all([decode(local, p), decode(remote, p)])));
    const items = (side: 0 | 1) => pics.map((p, i) => ({ image: p[side], prompt: ['caption en', 'ocr'][i] }));
    assert.deepEqual(await b.generateBatch!(items(1), { maxNewTokens: 5 }), await a.generateBatch!(items(0), { maxNewTokens: 5 }));
  } finally {
    await Promise.all([a.dispose(), b.dispose()]);
  }
});

test('one decoded image is encoded once in the worker for all its prompts; the worker keeps a bounded number', async () => {
  const remote = workerBackend({ imageEntries: 2 });
  const m = await remote.load(model, cpu);
  try {
    const runs = async (image: DecodedImage, prompt: string) => {
      const before = (await m.runStats!()).runs;
      await m.generate({ image, prompt, decoding: { maxNewTokens: 4, minNewTokens: 4 } });
      return (await m.runStats!()).runs - before;
    };
    const shapes = await decode(remote, images.shapes);
    const first = await runs(shapes, 'caption en');
    const again = await runs(shapes, 'ocr');
    const redecoded = await runs(await decode(remote, images.shapes), 'ocr');
    // Same decoder runs each time (4 tokens); the vision encoder only for an image the worker has not seen.
    assert.equal(first, redecoded);
    assert.equal(redecoded - again, 1, `runs: ${first}, ${again}, ${redecoded}`);
    // Two more images push the first out of the worker's map (2 entries): it is encoded again.
    await runs(await decode(remote, images.gradient), 'ocr');
    await runs(await decode(remote, images.wide), 'ocr');
    assert.equal(await runs(shapes, 'ocr'), redecoded);
  } finally {
    await m.dispose();
  }
});

test('cancellation reaches the worker: a running generation stops at its next token', async () => {
  const remote = workerBackend();
  const m = await remote.load(model, cpu);
  try {
    const image = await decode(remote, images.shapes);
    const controller = new AbortController();
    let streamed = 0;
    const req: GenerateRequest = {
      image,
      prompt: 'caption en',
      decoding: { maxNewTokens: 3000, minNewTokens: 3000 },
      signal: controller.signal,
      onToken: () => {
        if (++streamed === 5) controller.abort();
      },
    };
    await assert.rejects(m.generate(req), (e) => e instanceof EngineError && e.code === 'cancelled');
    assert.ok(streamed >= 5 && streamed < 1500, `streamed ${streamed} of 3000 tokens`);
    await assert.rejects(m.generate({ ...req, signal: AbortSignal.abort(), onToken: undefined }), (e) => e instanceof EngineError && e.code === 'cancelled');
    assert.equal((await m.generate({ image, prompt: 'ocr', decoding: { maxNewTokens: 3 } })).generatedIds.length, 3);
  } finally {
    await m.dispose();
  }
});

test('engine errors arrive with their code and message; a failed load leaves the backend usable', async () => {
  const notAModel = await tempDir('pg-notmodel-');
  const local = engineBackend();
  const remote = workerBackend();
  const expected = await local.load(notAModel, cpu).then(
    () => assert.fail('loaded a folder without a model'),
    (e: EngineError) => e,
  );
  await assert.rejects(remote.load(notAModel, cpu), (e) => {
    assert.ok(e instanceof EngineError);
    assert.equal(e.code, expected.code);
    assert.equal(e.message, expected.message);
    return true;
  });
  const [a, b] = await Promise.all([local.load(model, cpu), remote.load(model, cpu)]);
  try {
    const invalid = { prompt: 'caption en', decoding: { maxNewTokens: -1 } };
    const localError = await a.generate({ image: await decode(local, images.shapes), ...invalid }).then(
      () => assert.fail('accepted maxNewTokens -1'),
      (e: EngineError) => e,
    );
    await assert.rejects(b.generate({ image: await decode(remote, images.shapes), ...invalid }), (e) => {
      assert.ok(e instanceof EngineError);
      assert.deepEqual([e.code, e.message], [localError.code, localError.message]);
      return true;
    });
  } finally {
    await Promise.all([a.dispose(), b.dispose()]);
  }
});

test('a worker that dies mid-request fails that request and later calls clearly; the next load starts a fresh one', async () => {
  const remote = workerBackend({ backendModule: blockingEngineModule });
  const image = await decode(remote, images.shapes);
  const crashes: Array<[string, RegExp]> = [
    ['exit', /the engine worker exited unexpectedly \(exit code 3\); the model will be loaded again/],
    ['throw', /the engine worker crashed: simulated engine crash/],
  ];
  for (const [prompt, why] of crashes) {
    const m = await remote.load(model, cpu);
    assert.equal(m.lost, false);
    await assert.rejects(m.generate({ image, prompt, decoding: { maxNewTokens: 3 } }), why);
    assert.equal(m.lost, true, prompt);
    await assert.rejects(m.generate({ image, prompt: 'caption en', decoding: { maxNewTokens: 3 } }), why);
    await m.dispose();
    const fresh = await remote.load(model, cpu);
    assert.equal((await fresh.generate({ image, prompt: 'caption en', decoding: { maxNewTokens: 3 } })).generatedIds.length, 3);
    await fresh.dispose();
  }
});

test('the daemon on the worker: a crash fails only its request, then the model is reloaded; cancel and streaming work', async () => {
  const d = await inProcessDaemon(workerBackend({ backendModule: blockingEngineModule }));
  try {
    const c = await d.connect();
    assert.equal((await c.connection.sendRequest(protocol.Generate.type, gen('caption en'))).generatedIds.length, 3);
    await assert.rejects(c.connection.sendRequest(protocol.Generate.type, gen('exit')), (e: { code: number; message: string }) => {
      assert.equal(e.code, ErrorCodes.InternalError);
      assert.match(e.message, /engine worker exited unexpectedly/);
      return true;
    });
    const lost = (await c.connection.sendRequest(protocol.Status.type)).model;
    assert.equal(lost.state, 'error', 'not ready while its worker is gone');
    assert.match(lost.error ?? '', /loads again with the next request/);
    assert.equal((await c.connection.sendRequest(protocol.Generate.type, gen('ocr'))).generatedIds.length, 3);
    assert.equal((await c.connection.sendRequest(protocol.Status.type)).model.state, 'ready');

    const cts = new CancellationTokenSource();
    let streamed = 0;
    c.connection.onNotification(protocol.TokenStream.type, () => {
      if (++streamed === 5) cts.cancel();
    });
    const decoding = { maxNewTokens: 3000, minNewTokens: 3000 };
    await assert.rejects(
      c.connection.sendRequest(protocol.Generate.type, gen('caption es', { streamId: 's', decoding }), cts.token),
      (e: { code: number }) => e.code === ErrorCodes.Cancelled,
    );
    assert.ok(streamed >= 5 && streamed < 1500, `streamed ${streamed} of 3000 tokens`);
  } finally {
    await d.stop();
  }
});
