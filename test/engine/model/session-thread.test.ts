// A session on a thread of its own (model/session-thread.ts): it reports the graph's inputs and
// outputs and computes exactly what the same graph computes on this thread; a graph that cannot
// load is refused naming the file; a released session refuses runs; an idle one does not keep the
// process alive (the exit watch of npm test fails a file that cannot exit).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { convert } from '../../../daemon/engine/convert/index.js';
import { isEngineError } from '../../../daemon/engine/errors.js';
import { createSessionBeside, openAll, sessionOptions } from '../../../daemon/engine/model/providers.js';
import { openSessionThread, type GraphSession } from '../../../daemon/engine/model/session-thread.js';

const FIXTURE = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../test/fixtures/tiny-paligemma-224');

let dir: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pg-session-thread-'));
  await convert({ input: FIXTURE, output: join(dir, 'model'), dtype: 'int4' });
});
after(() => rmSync(dir, { recursive: true, force: true }));

const pixels = () =>
  new ort.Tensor(
    'float32',
    Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => Math.cos(i / 7)),
    [1, 3, 224, 224],
  );

test('a session thread has the graph’s names and metadata and computes bit for bit what this thread does', async () => {
  const graph = join(dir, 'model', 'vision.onnx');
  const here = await ort.InferenceSession.create(graph, sessionOptions('cpu', 1));
  const there = await openSessionThread(graph, 1);
  try {
    assert.deepEqual(there.inputNames, here.inputNames);
    assert.deepEqual(there.outputNames, here.outputNames);
    assert.deepEqual(there.inputMetadata, here.inputMetadata);
    assert.deepEqual(there.outputMetadata, here.outputMetadata);
    const input = pixels();
    const a = (await here.run({ pixel_values: input })).image_features;
    const b = (await there.run({ pixel_values: input }, ['image_features'])).image_features;
    assert.equal(b.type, a.type);
    assert.deepEqual(b.dims, a.dims);
    assert.deepEqual(Array.from(b.data as Float32Array), Array.from(a.data as Float32Array));
    // The caller's input is copied, not moved: it is still readable here.
    assert.equal((input.data as Float32Array).length, 3 * 224 * 224);
    // Runs in flight at once each get their own answer.
    const both = await Promise.all([there.run({ pixel_values: input }), there.run({ pixel_values: pixels() })]);
    for (const r of both) assert.deepEqual(Array.from(r.image_features.data as Float32Array), Array.from(a.data as Float32Array));
  } finally {
    await here.release();
    await there.release();
  }
  await assert.rejects(there.run({ pixel_values: pixels() }), /released/);
});

test('a graph that cannot load is refused with its path, as on this thread', async () => {
  const bad = join(dir, 'not-a-graph.onnx');
  writeFileSync(bad, 'this is not an ONNX file');
  await assert.rejects(openSessionThread(bad), (e: unknown) => isEngineError(e, 'model-invalid') && e.message.includes(bad));
});

test('openAll releases the sessions that opened when another fails, and throws that failure', async () => {
  const released: string[] = [];
  const fake = (name: string): GraphSession => ({
    inputNames: [],
    outputNames: [],
    inputMetadata: [],
    outputMetadata: [],
    run: () => Promise.reject(new Error('not used')),
    release: async () => void released.push(name),
  });
  const failure = new Error('decoder failed');
  await assert.rejects(openAll([Promise.resolve(fake('vision')), Promise.reject(failure)]), (e) => e === failure);
  assert.deepEqual(released, ['vision']);
  // The real pair: the vision tower on its thread beside a session on this one.
  const [vision, decoder] = await openAll<[GraphSession, ort.InferenceSession]>([
    createSessionBeside(join(dir, 'model', 'vision.onnx'), 'cpu', 1),
    ort.InferenceSession.create(join(dir, 'model', 'decoder.onnx'), sessionOptions('cpu', 1)),
  ]);
  assert.deepEqual(vision.outputNames, ['image_features']);
  assert.ok(decoder.inputNames.includes('input_ids'));
  await Promise.all([vision.release(), decoder.release()]);
});
