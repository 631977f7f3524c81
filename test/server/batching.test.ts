// A client with many images keeps the daemon's batches full: with inFlightFor(maxBatch) requests
// in flight (two batches) they run in fuller batches than with maxBatch in flight. The real daemon
// (worker thread, tiny model on the CPU, --max-batch 4) logs each request's batch size at debug level.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { inFlightFor, inOrder } from '../../daemon/client/inOrder.js';
import * as protocol from '../../daemon/protocol.js';
import { cleanupScratch, testDaemon, tinyModel } from './daemon.js';

after(cleanupScratch);

const distinct = async (i: number) =>
  (
    await sharp({ create: { width: 48 + (i % 17), height: 40 + (i % 13), channels: 3, background: { r: i % 256, g: (i * 37) % 256, b: (i * 91) % 256 } } })
      .png()
      .toBuffer()
  ).toString('base64');

/** Batch sizes (rows of the engine call) of each of `count` requests sent `window` at a time. */
async function batchSizes(window: number, count: number, first: number): Promise<number[]> {
  const daemon = await testDaemon(['--model', await tinyModel(), '--ep', 'cpu', '--max-batch', '4']);
  try {
    const { connection } = await daemon.connect();
    const caption = (data: string) => connection.sendRequest(protocol.Caption.type, { image: { data, mimeType: 'image/png' }, decoding: { maxNewTokens: 4 } });
    await caption(await distinct(first - 1)); // loads the model
    assert.equal((await connection.sendRequest(protocol.Status.type)).model.maxBatch, 4);
    const images = await Promise.all(Array.from({ length: count }, (_, i) => distinct(first + i)));
    const failures: unknown[] = [];
    let answered = 0;
    await inOrder(
      images,
      () => window,
      caption,
      (o) => void (o.ok ? answered++ : failures.push(o.error)),
    );
    assert.deepEqual(failures, []);
    assert.equal(answered, count);
    const sizes = readFileSync(daemon.endpoint.logPath, 'utf8')
      .split('\n')
      .filter((l) => l.includes('generated'))
      .map((l) => Number(/"batch":(\d+)/.exec(l)?.[1]))
      .slice(1);
    assert.equal(sizes.length, count, 'one log line per request');
    return sizes;
  } finally {
    await daemon.stop();
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

test('with two batches in flight, requests run in fuller batches than with one', async (t) => {
  const level = process.env.PALIGEMMA_TEST_LOG_LEVEL;
  process.env.PALIGEMMA_TEST_LOG_LEVEL = 'debug';
  try {
    const one = await batchSizes(4, 48, 0);
    const two = await batchSizes(inFlightFor(4), 48, 1000);
    // Measured on 2 cores (also with a busy core): one batch in flight 1.96-2.5 rows per call on
    // average (the refill's first request finds the model idle), two batches 3.5-3.9.
    t.diagnostic(`mean rows per engine call: ${mean(one).toFixed(2)} with one batch in flight, ${mean(two).toFixed(2)} with two`);
    assert.ok(mean(two) >= 3, `two batches in flight: mean batch ${mean(two)} (${two.join(' ')})`);
    assert.ok(mean(two) > mean(one), `two batches ${mean(two)} vs one ${mean(one)} (${one.join(' ')})`);
  } finally {
    if (level === undefined) delete process.env.PALIGEMMA_TEST_LOG_LEVEL;
    else process.env.PALIGEMMA_TEST_LOG_LEVEL = level;
  }
});
