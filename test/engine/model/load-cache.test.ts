// The load cache (model/load-cache.ts): the first CPU load saves onnxruntime's optimised graph with
// its pre-packed weights beside the model, later loads open that instead and compute the same, and
// a changed model gets a new entry in place of the old.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { convert } from '../../../daemon/engine/convert/index.js';
import { loadImage, PaliGemma } from '../../../daemon/engine/index.js';
import { createCachedSession, LOAD_CACHE_DIR, loadCacheEnabled } from '../../../daemon/engine/model/load-cache.js';
import { sessionOptions } from '../../../daemon/engine/model/providers.js';

const FIXTURE = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../test/fixtures/tiny-paligemma-224');

let dir: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pg-load-cache-'));
  // int4: MatMulNBits pre-packs its weights, which is what the cache keeps.
  await convert({ input: FIXTURE, output: join(dir, 'model'), dtype: 'int4' });
});
after(() => rmSync(dir, { recursive: true, force: true }));

const entries = () => readdirSync(join(dir, 'model', LOAD_CACHE_DIR)).filter((e) => e.startsWith('vision.onnx.'));

test('the second load opens the saved graph and computes the same; a changed model replaces the entry', async () => {
  const graph = join(dir, 'model', 'vision.onnx');
  const options = sessionOptions('cpu', 1);
  const pixels = new ort.Tensor(
    'float32',
    Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => Math.sin(i)),
    [1, 3, 224, 224],
  );
  const features = async (s: ort.InferenceSession) => {
    try {
      return Array.from((await s.run({ pixel_values: pixels })).image_features.data as Float32Array);
    } finally {
      await s.release();
    }
  };
  const plain = await features(await ort.InferenceSession.create(graph, options));

  const first = await createCachedSession(graph, options);
  assert.equal(first.use, 'built');
  assert.deepEqual(await features(first.session), plain);
  assert.equal(entries().length, 1);
  const entry = join(dir, 'model', LOAD_CACHE_DIR, entries()[0]);
  assert.ok(statSync(join(entry, 'model.onnx')).size > 0);
  assert.ok(statSync(join(entry, 'model.onnx.data')).size > 0, 'weights in an external file (memory-mapped at load)');

  const second = await createCachedSession(graph, options);
  assert.equal(second.use, 'hit');
  assert.deepEqual(await features(second.session), plain);

  // A rewritten weight file (same size, new time) is another model: rebuilt, the old entry gone.
  const data = join(dir, 'model', 'vision.onnx.data');
  const later = new Date(statSync(data).mtimeMs + 5000);
  utimesSync(data, later, later);
  const third = await createCachedSession(graph, options);
  assert.equal(third.use, 'built');
  await third.session.release();
  assert.equal(entries().length, 1);
  assert.notEqual(join(dir, 'model', LOAD_CACHE_DIR, entries()[0]), entry);
});

test('with PALIGEMMA_LOAD_CACHE=1 PaliGemma.load goes through the cache on the CPU: same logits from a cached load', async (t) => {
  assert.equal(loadCacheEnabled({}), false);
  assert.ok(loadCacheEnabled({ PALIGEMMA_LOAD_CACHE: '1' }));
  const saved = process.env.PALIGEMMA_LOAD_CACHE;
  process.env.PALIGEMMA_LOAD_CACHE = '1';
  t.after(() => {
    if (saved === undefined) delete process.env.PALIGEMMA_LOAD_CACHE;
    else process.env.PALIGEMMA_LOAD_CACHE = saved;
  });
  const image = await loadImage(join(FIXTURE, 'shapes.png'));
  const logits = async () => {
    const model = await PaliGemma.load(join(dir, 'model'), { executionProvider: 'cpu', threads: 1 });
    try {
      return Array.from(await model.lastLogits(image, 'caption en'));
    } finally {
      await model.dispose();
    }
  };
  const built = await logits();
  const cacheDir = join(dir, 'model', LOAD_CACHE_DIR);
  assert.ok(readdirSync(cacheDir).some((e) => e.startsWith('decoder.onnx.')));
  const mtimes = readdirSync(cacheDir).map((e) => statSync(join(cacheDir, e)).mtimeMs);
  assert.deepEqual(await logits(), built);
  // Nothing was written again: the second load read the entries the first one made.
  assert.deepEqual(
    readdirSync(cacheDir).map((e) => statSync(join(cacheDir, e)).mtimeMs),
    mtimes,
  );
});
