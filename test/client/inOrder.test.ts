import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inFlightFor, inOrder, type Settled } from '../../daemon/client/inOrder.js';

/** Work that finishes when the test says so, recording how many calls were in flight at once. */
function controlled() {
  const resolvers = new Map<number, (v: string) => void>();
  const rejecters = new Map<number, (e: Error) => void>();
  let active = 0;
  const peaks: number[] = [];
  const work = (_item: string, i: number) =>
    new Promise<string>((resolve, reject) => {
      active++;
      peaks.push(active);
      resolvers.set(i, (v) => (active--, resolve(v)));
      rejecters.set(i, (e) => (active--, reject(e)));
    });
  return { work, resolvers, rejecters, peaks };
}

const tick = () => new Promise((r) => setImmediate(r));

test('keeps at most limit() calls in flight and hands results over in input order', async () => {
  const c = controlled();
  const seen: Array<[number, Settled<string>]> = [];
  const run = inOrder(
    ['a', 'b', 'c', 'd', 'e'],
    () => 3,
    c.work,
    (o, _item, i) => void seen.push([i, o]),
  );
  await tick();
  assert.deepEqual([...c.resolvers.keys()], [0, 1, 2]);
  // later ones finish first: nothing is handed over before item 0
  c.resolvers.get(2)!('C');
  c.resolvers.get(1)!('B');
  await tick();
  assert.equal(seen.length, 0);
  assert.deepEqual([...c.resolvers.keys()], [0, 1, 2], 'finished but not handed over still counts');
  c.resolvers.get(0)!('A');
  await tick();
  assert.deepEqual(
    seen.map(([i]) => i),
    [0, 1, 2],
  );
  assert.deepEqual([...c.resolvers.keys()], [0, 1, 2, 3, 4]);
  c.rejecters.get(3)!(new Error('bad image'));
  c.resolvers.get(4)!('E');
  await run;
  assert.deepEqual(
    seen.map(([i, o]) => [i, o.ok ? o.value : (o.error as Error).message]),
    [
      [0, 'A'],
      [1, 'B'],
      [2, 'C'],
      [3, 'bad image'],
      [4, 'E'],
    ],
  );
  assert.equal(Math.max(...c.peaks), 3);
});

test('reads the limit before each start: one until the batch size is known, then more', async () => {
  const c = controlled();
  let limit = 1;
  const run = inOrder(
    ['a', 'b', 'c', 'd'],
    () => limit,
    c.work,
    () => {},
  );
  await tick();
  assert.deepEqual([...c.resolvers.keys()], [0]);
  limit = 8;
  c.resolvers.get(0)!('A');
  await tick();
  assert.deepEqual([...c.resolvers.keys()], [0, 1, 2, 3]);
  for (const i of [1, 2, 3]) c.resolvers.get(i)!('x');
  await run;
});

test('stops starting work when done() says so, and waits for what is in flight', async () => {
  const c = controlled();
  const handed: number[] = [];
  let finished = false;
  const run = inOrder(
    ['a', 'b', 'c', 'd'],
    () => 2,
    c.work,
    (o, _item, i) => (handed.push(i), o.ok),
  ).then(() => (finished = true));
  await tick();
  c.rejecters.get(0)!(new Error('daemon gone'));
  await tick();
  assert.deepEqual(handed, [0]);
  assert.deepEqual([...c.resolvers.keys()], [0, 1], 'nothing new started');
  assert.equal(finished, false, 'item 1 is still in flight');
  c.resolvers.get(1)!('B');
  await run;
  assert.deepEqual(handed, [0]);
});

test('a limit below one still makes progress; an empty list does nothing', async () => {
  const out: string[] = [];
  await inOrder(
    ['x', 'y'],
    () => 0,
    async (s) => s.toUpperCase(),
    (o) => void (o.ok && out.push(o.value)),
  );
  assert.deepEqual(out, ['X', 'Y']);
  await inOrder(
    [],
    () => 4,
    async () => assert.fail('no work'),
    () => assert.fail('nothing to hand over'),
  );
});

test('two batches in flight where the daemon batches (the next one full when the model frees up), else one', () => {
  assert.equal(inFlightFor(8), 16);
  assert.equal(inFlightFor(3), 6);
  assert.equal(inFlightFor(1), 1);
  assert.equal(inFlightFor(undefined), 1);
});
