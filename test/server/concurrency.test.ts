// 3 clients x 100 requests at once over the shared socket: every response arrives, each matches
// its own request, and streamed tokens reach only the stream that asked. Every fifth request
// carries a unique (greedy-neutral) seed, so it misses the cache and runs the real tiny model in
// the shared queue; the others are answered from the cache.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { DaemonConnection } from '../../daemon/client/daemon.js';
import * as protocol from '../../daemon/protocol.js';
import { cleanupScratch, images, type TestDaemon, testDaemon, tinyModel } from './daemon.js';

let daemon: TestDaemon;

before(async () => {
  daemon = await testDaemon(['--model', await tinyModel(), '--ep', 'cpu', '--cache-entries', '4096']);
});

after(async () => {
  await daemon?.stop();
  await cleanupScratch();
});

const combos = Object.values(images).flatMap((path) => ['caption en', 'ocr', 'detect circle', 'answer en what is it?'].map((prompt) => ({ path, prompt })));

test('3 clients x 100 requests: none lost, none crossed', async () => {
  const clients: DaemonConnection[] = await Promise.all([daemon.connect(), daemon.connect(), daemon.connect()]);
  try {
    const decoding = { maxNewTokens: 4 };
    const expected: protocol.GenerateResult[] = [];
    for (const c of combos) {
      expected.push(await clients[0].connection.sendRequest(protocol.Generate.type, { image: { path: c.path }, prompt: c.prompt, decoding }));
    }
    // Distinct answers, so a response delivered to the wrong request would be noticed.
    assert.equal(new Set(expected.map((e) => JSON.stringify([e.inputIds, e.generatedIds]))).size, combos.length);

    const streams = clients.map(() => new Map<string, number[]>());
    clients.forEach((c, ci) =>
      c.connection.onNotification(protocol.TokenStream.type, (n) => {
        const got = streams[ci].get(n.streamId) ?? [];
        got.push(n.tokenId);
        streams[ci].set(n.streamId, got);
      }),
    );
    const t0 = Date.now();
    const runs = clients.map((c, ci) =>
      Promise.all(
        Array.from({ length: 100 }, async (_, i) => {
          const k = (i * 7 + ci * 5) % combos.length;
          const streamId = `client${ci}-req${i}`;
          const uncached = i % 5 === 0;
          const r = await c.connection.sendRequest(protocol.Generate.type, {
            image: { path: combos[k].path },
            prompt: combos[k].prompt,
            decoding: uncached ? { ...decoding, seed: 1000 * ci + i } : decoding,
            streamId,
          });
          return { k, streamId, r, uncached };
        }),
      ),
    );
    const results = (await Promise.all(runs)).flat();
    const ms = Date.now() - t0;
    assert.equal(results.length, 300);
    for (const { k, streamId, r, uncached } of results) {
      assert.deepEqual(r.inputIds, expected[k].inputIds, streamId);
      assert.deepEqual(r.generatedIds, expected[k].generatedIds, streamId);
      assert.equal(r.cached, !uncached, streamId);
    }
    await new Promise((r) => setTimeout(r, 50));
    clients.forEach((_, ci) => {
      // Tokens are streamed only by requests that ran the model.
      assert.equal(streams[ci].size, 20, `client ${ci} streams`);
      for (const [id, tokens] of streams[ci]) {
        assert.ok(id.startsWith(`client${ci}-`), `client ${ci} got tokens of ${id}`);
        const { k } = results.find((x) => x.streamId === id)!;
        assert.deepEqual(tokens, expected[k].generatedIds, id);
      }
    });
    const s = await clients[0].connection.sendRequest(protocol.Status.type);
    assert.equal(s.clients, 3);
    assert.deepEqual([s.queue.running, s.queue.pending], [0, 0]);
    process.stderr.write(`# 300 requests (60 uncached) from 3 clients in ${ms} ms\n`);
  } finally {
    clients.forEach((c) => c.close());
  }
});
