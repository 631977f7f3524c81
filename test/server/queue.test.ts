// Queueing, Busy, cancellation and keep-alive, against an in-process daemon on a per-test socket.
// The model is the real tiny model; where a test must hold a generation in flight it wraps that
// model in a GATE (generate waits for the test to open it, then runs the real model) - a
// deliberately slow backend, used only to control timing.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { CancellationTokenSource } from 'vscode-jsonrpc/node';
import * as protocol from '../../daemon/protocol.js';
import { ErrorCodes } from '../../daemon/protocol.js';
import type { Backend, GenerateRequest } from '../../daemon/server/backend.js';
import { engineBackend } from '../../daemon/server/engineBackend.js';
import { cleanupScratch, images, inProcessDaemon, sleep, waitFor } from './daemon.js';

after(cleanupScratch);

/** The real backend, whose generate first waits for `open()`; records every prompt that ran. */
function gatedBackend() {
  const real = engineBackend();
  let release!: () => void;
  let opened = new Promise<void>((r) => (release = r));
  const ran: string[] = [];
  const batches: string[][] = [];
  let releaseBatches!: () => void;
  const batchesOpened = new Promise<void>((r) => (releaseBatches = r));
  let holdBatches = false;
  const backend: Backend = {
    ...real,
    async load(path, o) {
      const model = await real.load(path, o);
      return {
        get info() {
          return model.info;
        },
        async generate(req: GenerateRequest) {
          ran.push(req.prompt);
          await opened;
          return model.generate(req);
        },
        async generateBatch(items, decoding, signal) {
          batches.push(items.map((it) => it.prompt));
          await opened;
          if (holdBatches) await batchesOpened;
          return model.generateBatch!(items, decoding, signal);
        },
        dispose: () => model.dispose(),
      };
    },
  };
  return {
    backend,
    ran,
    batches,
    open: () => release(),
    close: () => (opened = new Promise<void>((r) => (release = r))),
    /** Batched calls wait for openBatches() (after the main gate). */
    holdBatches: () => (holdBatches = true),
    openBatches: () => releaseBatches(),
  };
}

const gen = (prompt: string, extra: Partial<protocol.GenerateParams> = {}): protocol.GenerateParams => ({
  image: { path: images.shapes },
  prompt,
  decoding: { maxNewTokens: 3 },
  ...extra,
});

test('a queued request that is cancelled never runs; the one in flight finishes', async () => {
  const g = gatedBackend();
  const d = await inProcessDaemon(g.backend);
  try {
    const c = await d.connect();
    const first = c.connection.sendRequest(protocol.Generate.type, gen('caption en'));
    await waitFor(() => g.ran.length === 1, 10_000, 'the first request to start');
    const cts = new CancellationTokenSource();
    const second = c.connection.sendRequest(protocol.Generate.type, gen('ocr'), cts.token);
    await waitFor(async () => (await c.connection.sendRequest(protocol.Status.type)).queue.pending === 1, 5000, 'the second to queue');
    cts.cancel();
    await assert.rejects(second, (e: { code: number }) => e.code === ErrorCodes.Cancelled);
    g.open();
    const r = await first;
    assert.equal(r.generatedIds.length, 3);
    // Something queued after the cancelled one still runs, and the cancelled one never did.
    await c.connection.sendRequest(protocol.Generate.type, gen('caption es'));
    assert.deepEqual(g.ran, ['caption en', 'caption es']);
  } finally {
    await d.stop();
  }
});

test('an in-flight generation stops at the next token when cancelled', async () => {
  const d = await inProcessDaemon(engineBackend());
  try {
    const c = await d.connect();
    const cts = new CancellationTokenSource();
    let streamed = 0;
    let afterCancel = 0;
    c.connection.onNotification(protocol.TokenStream.type, () => {
      streamed++;
      if (cts.token.isCancellationRequested) afterCancel++;
      else if (streamed === 5) cts.cancel();
    });
    const maxNewTokens = 3000;
    const t0 = Date.now();
    const pending = c.connection.sendRequest(protocol.Generate.type, gen('caption en', { streamId: 's', decoding: { maxNewTokens, minNewTokens: maxNewTokens } }), cts.token);
    await assert.rejects(pending, (e: { code: number }) => e.code === ErrorCodes.Cancelled);
    const ms = Date.now() - t0;
    assert.ok(streamed >= 5 && streamed < maxNewTokens / 2, `streamed ${streamed} of ${maxNewTokens} tokens`);
    process.stderr.write(`# cancelled after ${streamed} tokens (${afterCancel} after the cancel was sent), ${ms} ms\n`);
    // The model is free again right away.
    const ok = await c.connection.sendRequest(protocol.Generate.type, gen('caption fr'));
    assert.equal(ok.generatedIds.length, 3);
  } finally {
    await d.stop();
  }
});

test('a full queue answers Busy; the accepted requests all complete', async () => {
  const g = gatedBackend();
  const d = await inProcessDaemon(g.backend, { queueCapacity: 2 });
  try {
    const c = await d.connect();
    const running = c.connection.sendRequest(protocol.Generate.type, gen('caption en'));
    await waitFor(() => g.ran.length === 1, 10_000, 'the first request to start');
    const queued = [c.connection.sendRequest(protocol.Generate.type, gen('ocr')), c.connection.sendRequest(protocol.Generate.type, gen('caption de'))];
    await waitFor(async () => (await c.connection.sendRequest(protocol.Status.type)).queue.pending === 2, 5000, 'two queued');
    await assert.rejects(c.connection.sendRequest(protocol.Generate.type, gen('caption it')), (e: { code: number; message: string }) => {
      assert.equal(e.code, ErrorCodes.Busy);
      assert.match(e.message, /busy: 2 requests are waiting \(capacity 2\)/);
      return true;
    });
    g.open();
    const done = await Promise.all([running, ...queued]);
    assert.deepEqual(
      done.map((r) => r.generatedIds.length),
      [3, 3, 3],
    );
  } finally {
    await d.stop();
  }
});

test('a client that disconnects takes its queued work with it', async () => {
  const g = gatedBackend();
  const d = await inProcessDaemon(g.backend);
  try {
    const a = await d.connect();
    const b = await d.connect();
    const first = a.connection.sendRequest(protocol.Generate.type, gen('caption en'));
    await waitFor(() => g.ran.length === 1, 10_000, 'the first request to start');
    b.connection.sendRequest(protocol.Generate.type, gen('ocr')).catch(() => {});
    await waitFor(async () => (await a.connection.sendRequest(protocol.Status.type)).queue.pending === 1, 5000, 'b to queue');
    b.close();
    await waitFor(async () => (await a.connection.sendRequest(protocol.Status.type)).queue.pending === 0, 5000, "b's work to go");
    g.open();
    await first;
    assert.deepEqual(g.ran, ['caption en']);
  } finally {
    await d.stop();
  }
});

test('the model is unloaded after the keep-alive and reloaded on the next request', async () => {
  const d = await inProcessDaemon(engineBackend(), { keepAliveMs: 300 });
  try {
    const c = await d.connect();
    const states: string[] = [];
    c.connection.onNotification(protocol.ModelChanged.type, (s) => void states.push(s.state));
    await c.connection.sendRequest(protocol.Generate.type, gen('caption en'));
    assert.equal((await c.connection.sendRequest(protocol.Status.type)).model.state, 'ready');
    await waitFor(async () => (await c.connection.sendRequest(protocol.Status.type)).model.state === 'none', 5000, 'the idle unload');
    const r = await c.connection.sendRequest(protocol.Generate.type, gen('ocr'));
    assert.equal(r.generatedIds.length, 3);
    assert.equal((await c.connection.sendRequest(protocol.Status.type)).model.state, 'ready');
    await sleep(20);
    assert.deepEqual(states, ['loading', 'ready', 'none', 'loading', 'ready']);
  } finally {
    await d.stop();
  }
});

test('requests waiting with the same decoding options (their own token limits) run as one batch, with the answers they get alone', async () => {
  const prompts = ['caption en', 'ocr', 'detect circle', 'answer en what is it?', 'caption fr'];
  const pics = [images.shapes, images.gradient, images.wide, images.shapes, images.gradient];
  const limits = [6, 7, 6, 3, 5];
  const params = (i: number) => ({ image: { path: pics[i] }, prompt: prompts[i], decoding: { maxNewTokens: limits[i] } });

  const alone = await inProcessDaemon(engineBackend(), { maxBatch: 1 });
  const expected: protocol.GenerateResult[] = [];
  try {
    const c = await alone.connect();
    for (let i = 0; i < prompts.length; i++) expected.push(await c.connection.sendRequest(protocol.Generate.type, params(i)));
  } finally {
    await alone.stop();
  }

  const g = gatedBackend();
  const d = await inProcessDaemon(g.backend, { maxBatch: 3 });
  try {
    const c = await d.connect();
    const first = c.connection.sendRequest(protocol.Generate.type, params(0));
    await waitFor(() => g.ran.length === 1, 10_000, 'the first request to start');
    const cts = new CancellationTokenSource();
    const rest = [1, 2, 3, 4].map((i) => c.connection.sendRequest(protocol.Generate.type, params(i), i === 2 ? cts.token : undefined));
    await waitFor(async () => (await c.connection.sendRequest(protocol.Status.type)).queue.pending === 4, 5000, 'four queued');
    cts.cancel();
    await assert.rejects(rest[1], (e: { code: number }) => e.code === ErrorCodes.Cancelled);
    g.open();
    const results = await Promise.all([first, rest[0], rest[2], rest[3]]);
    // The first ran alone (nothing waited when it started); the next one to start took the other
    // two along (which one leads depends on which image decoded first); 2 was cancelled.
    assert.deepEqual(g.ran, [prompts[0]]);
    assert.equal(g.batches.length, 1);
    assert.deepEqual([...g.batches[0]].sort(), [prompts[1], prompts[3], prompts[4]].sort());
    [0, 1, 3, 4].forEach((i, j) => {
      assert.deepEqual(results[j].inputIds, expected[i].inputIds, prompts[i]);
      assert.deepEqual(results[j].generatedIds, expected[i].generatedIds, prompts[i]);
      assert.equal(results[j].generatedIds.length, limits[i], `${prompts[i]}: its own limit`);
    });
  } finally {
    await d.stop();
  }
});

test('status tells clients how many requests the model runs together: maxBatch, 1 on the CPU by default', async () => {
  for (const [extra, want] of [
    [{}, 1],
    [{ maxBatch: 5 }, 5],
  ] as const) {
    const d = await inProcessDaemon(engineBackend(), extra);
    try {
      const c = await d.connect();
      const changes: Array<number | undefined> = [];
      c.connection.onNotification(protocol.ModelChanged.type, (s) => void (s.state === 'ready' && changes.push(s.maxBatch)));
      assert.equal((await c.connection.sendRequest(protocol.Status.type)).model.maxBatch, undefined, 'unknown before the model loads');
      await c.connection.sendRequest(protocol.Generate.type, gen('caption en'));
      assert.equal((await c.connection.sendRequest(protocol.Status.type)).model.maxBatch, want);
      await waitFor(() => changes.length > 0, 5000, 'the ready notification');
      assert.deepEqual(changes, [want]);
    } finally {
      await d.stop();
    }
  }
});

test('streaming and beam-search requests are never batched', async () => {
  const g = gatedBackend();
  const d = await inProcessDaemon(g.backend, { maxBatch: 8 });
  try {
    const c = await d.connect();
    const first = c.connection.sendRequest(protocol.Generate.type, gen('caption en'));
    await waitFor(() => g.ran.length === 1, 10_000, 'the first request to start');
    const rest = [
      c.connection.sendRequest(protocol.Generate.type, gen('ocr', { streamId: 'x' })),
      c.connection.sendRequest(protocol.Generate.type, gen('caption de', { streamId: 'y' })),
      c.connection.sendRequest(protocol.Generate.type, gen('caption es', { decoding: { maxNewTokens: 3, strategy: 'beam', numBeams: 2 } })),
      c.connection.sendRequest(protocol.Generate.type, gen('caption it', { decoding: { maxNewTokens: 3, strategy: 'beam', numBeams: 2 } })),
    ];
    await waitFor(async () => (await c.connection.sendRequest(protocol.Status.type)).queue.pending === 4, 5000, 'four queued');
    g.open();
    await Promise.all([first, ...rest]);
    assert.deepEqual(g.batches, []);
    assert.equal(g.ran.length, 5);
  } finally {
    await d.stop();
  }
});

test("a batch cut short by its leader's cancellation: the others run alone and still answer", async () => {
  const g = gatedBackend();
  g.holdBatches();
  const d = await inProcessDaemon(g.backend, { maxBatch: 4 });
  try {
    const c = await d.connect();
    const first = c.connection.sendRequest(protocol.Generate.type, gen('caption en'));
    await waitFor(() => g.ran.length === 1, 10_000, 'the first request to start');
    const tokens = [new CancellationTokenSource(), new CancellationTokenSource(), new CancellationTokenSource()];
    const rest = ['ocr', 'caption de', 'caption es'].map((p, i) => c.connection.sendRequest(protocol.Generate.type, gen(p), tokens[i].token));
    await waitFor(async () => (await c.connection.sendRequest(protocol.Status.type)).queue.pending === 3, 5000, 'three queued');
    g.open();
    await first;
    await waitFor(() => g.batches.length === 1, 5000, 'the batch to start');
    const leader = ['ocr', 'caption de', 'caption es'].indexOf(g.batches[0][0]);
    tokens[leader].cancel();
    await waitFor(async () => (await c.connection.sendRequest(protocol.Status.type)).queue.running === 1, 5000, 'the batch still running');
    g.openBatches();
    const settled = await Promise.allSettled(rest);
    settled.forEach((r, i) => {
      if (i === leader) assert.equal(r.status === 'rejected' && (r.reason as { code: number }).code, ErrorCodes.Cancelled);
      else assert.equal(r.status === 'fulfilled' && r.value.generatedIds.length, 3);
    });
    // The two followers ran again, one by one.
    assert.equal(g.ran.length, 3);
  } finally {
    await d.stop();
  }
});
