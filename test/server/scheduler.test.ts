import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCodes } from '../../daemon/protocol.js';
import { RpcFailure } from '../../daemon/server/errors.js';
import { Scheduler } from '../../daemon/server/scheduler.js';

// Jobs here are plain async functions whose timing the test controls (gates), not a model.
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

const code = (e: unknown) => (e as RpcFailure).code;

test('runs jobs one at a time in order', async () => {
  const s = new Scheduler(10);
  const order: string[] = [];
  let concurrent = 0;
  let maxConcurrent = 0;
  const job = (name: string) => async () => {
    concurrent++;
    maxConcurrent = Math.max(maxConcurrent, concurrent);
    await new Promise((r) => setTimeout(r, 5));
    order.push(name);
    concurrent--;
    return name;
  };
  const results = await Promise.all(['a', 'b', 'c'].map((n) => s.submit(job(n))));
  assert.deepEqual(results, ['a', 'b', 'c']);
  assert.deepEqual(order, ['a', 'b', 'c']);
  assert.equal(maxConcurrent, 1);
});

test('answers Busy when the waiting queue is full, and accepts again once it drains', async () => {
  const s = new Scheduler(2);
  const g = gate();
  const running = s.submit(() => g.opened);
  const waiting = [s.submit(async () => 1), s.submit(async () => 2)];
  await assert.rejects(
    s.submit(async () => 3),
    (e) => code(e) === ErrorCodes.Busy,
  );
  assert.equal(s.pending, 2);
  g.open();
  await running;
  assert.deepEqual(await Promise.all(waiting), [1, 2]);
  assert.equal(await s.submit(async () => 4), 4);
});

test('a job cancelled while waiting never runs; the running one sees its signal', async () => {
  const s = new Scheduler(10);
  let sawAbort = false;
  const stopRunning = new AbortController();
  setTimeout(() => stopRunning.abort(), 50);
  const running = s.submit(
    (signal) =>
      new Promise((_, reject) => {
        signal.addEventListener('abort', () => {
          sawAbort = true;
          reject(new Error('stopped'));
        });
      }),
    stopRunning.signal,
  );
  const cancelMe = new AbortController();
  let ran = false;
  const queued = s.submit(async () => {
    ran = true;
  }, cancelMe.signal);
  cancelMe.abort();
  await assert.rejects(queued, (e) => code(e) === ErrorCodes.Cancelled);
  await assert.rejects(running, (e) => code(e) === ErrorCodes.Cancelled);
  assert.ok(sawAbort);
  await s.submit(async () => {});
  assert.equal(ran, false);
});

test('idle listeners fire when the last job finishes', async () => {
  const s = new Scheduler(4);
  let idles = 0;
  s.onIdle(() => idles++);
  await Promise.all([s.submit(async () => {}), s.submit(async () => {})]);
  await new Promise((r) => setImmediate(r));
  assert.equal(idles, 1);
  assert.ok(s.idle);
});

test('close fails the running, the waiting and every later job with ShuttingDown', async () => {
  const s = new Scheduler(4);
  const running = s.submit((signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))));
  const waiting = s.submit(async () => 1);
  s.close();
  for (const p of [running, waiting, s.submit(async () => 2)]) {
    await assert.rejects(p, (e) => code(e) === ErrorCodes.ShuttingDown);
  }
});
