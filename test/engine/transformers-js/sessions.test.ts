import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { isEngineError } from '../../../daemon/engine/errors.js';
import { transformersJsVariants, readTransformersJsFolder } from '../../../daemon/engine/transformers-js/folder.js';
import { APPROXIMATE_ATTENTION, TransformersJsSessions } from '../../../daemon/engine/transformers-js/sessions.js';
import { writeToyExport, type ToyWeights } from './toy-export.js';

let dir: string;
let w: ToyWeights;
let sessions: TransformersJsSessions;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pg-oc-'));
  w = writeToyExport(dir);
  writeFileSync(join(dir, 'onnx', 'decoder_model_merged_q4.onnx'), 'only one graph of this variant');
  sessions = await TransformersJsSessions.create(readTransformersJsFolder(dir), 'cpu', 1);
});
after(async () => {
  await sessions?.release();
  rmSync(dir, { recursive: true, force: true });
});

test('the folder is recognised by its complete variants and described as a manifest', () => {
  assert.deepEqual(transformersJsVariants(dir), ['fp32']);
  assert.equal(transformersJsVariants(tmpdir()), null);
  const folder = readTransformersJsFolder(dir);
  assert.equal(folder.variant, 'fp32');
  assert.equal(folder.graphs.decoder_model_merged, join(dir, 'onnx', 'decoder_model_merged.onnx'));
  const m = folder.manifest;
  assert.equal(m.image.size, 224);
  assert.equal(m.image.numImageTokens, 256);
  assert.equal(m.tokens.image, 2052);
  assert.equal(m.text.vocabSize, 2112);
  assert.deepEqual(m.files, { vision: 'onnx/vision_encoder.onnx', decoder: 'onnx/decoder_model_merged.onnx', tokenizer: 'tokenizer.json' });
  assert.throws(
    () => readTransformersJsFolder(dir, 'q4'),
    (e) => isEngineError(e, 'model-missing') && /has fp32/.test((e as Error).message),
  );
});

test('a 2-D attention mask is reported as approximate attention', () => {
  assert.deepEqual(sessions.warnings, [APPROXIMATE_ATTENTION]);
});

// What the toy decoder must return for a row, given every embedding fed so far (mask 1) and the last position.
function expectedLogits(embeds: Float32Array[], lastPosition: number): Float32Array {
  const h = new Float64Array(w.hidden);
  for (const e of embeds) for (let j = 0; j < w.hidden; j++) h[j] += e[j];
  for (let j = 0; j < w.hidden; j++) h[j] += lastPosition * w.u[j];
  const out = new Float32Array(w.vocab);
  for (let i = 0; i < w.vocab; i++) {
    let s = 0;
    for (let j = 0; j < w.hidden; j++) s += h[j] * w.E[i * w.hidden + j];
    out[i] = s;
  }
  return out;
}

const embedOf = (id: number) => w.E.subarray(id * w.hidden, (id + 1) * w.hidden);

function assertClose(actual: Float32Array, expected: Float32Array, what: string): void {
  let max = 0;
  for (let i = 0; i < expected.length; i++) max = Math.max(max, Math.abs(actual[i] - expected[i]));
  assert.ok(max < 1e-4, `${what}: max |diff| ${max}`);
}

test('prefill, steps and beam reordering feed what transformers.js feeds', async () => {
  const { hidden } = w;
  const pixels = Float32Array.from({ length: 2 * 3 * 224 * 224 }, (_, i) => Math.sin(i * 0.001));
  const features = await sessions.encodeImages(pixels, 2);
  assert.deepEqual(features.dims, [2, 256, hidden]);
  // Image row 0, token 0 = mean of the first 14x14 patch of each channel times W.
  const f = features.data as Float32Array;
  const mean = [0, 1, 2].map((c) => {
    let s = 0;
    for (let y = 0; y < 14; y++) for (let x = 0; x < 14; x++) s += pixels[c * 224 * 224 + y * 224 + x];
    return s / 196;
  });
  for (let j = 0; j < 4; j++) assert.ok(Math.abs(f[j] - mean.reduce((a, m, c) => a + m * w.W[c * hidden + j], 0)) < 1e-5);

  const texts = [
    [2, 10, 11, 260],
    [2, 12, 260],
  ]; // different lengths: row 1 is left-padded
  const seq = sessions.sequence(features, texts);
  const image = (r: number) => Array.from({ length: 256 }, (_, i) => f.subarray((r * 256 + i) * hidden, (r * 256 + i + 1) * hidden));
  const fed = texts.map((t, r) => [...image(r), ...t.map(embedOf)]);

  const logits = await seq.prefill();
  for (let r = 0; r < 2; r++) {
    assertClose(logits.subarray(r * w.vocab, (r + 1) * w.vocab), expectedLogits(fed[r], 256 + texts[r].length), `prefill row ${r}`);
  }
  const step = await seq.next([5, 6]);
  fed[0].push(embedOf(5));
  fed[1].push(embedOf(6));
  for (let r = 0; r < 2; r++) {
    assertClose(step.subarray(r * w.vocab, (r + 1) * w.vocab), expectedLogits(fed[r], 256 + texts[r].length + 1), `step row ${r}`);
  }
  seq.reorder([1, 1]);
  const again = await seq.next([7, 8]);
  assertClose(again.subarray(0, w.vocab), expectedLogits([...fed[1], embedOf(7)], 256 + texts[1].length + 2), 'reordered row 0');
  assertClose(again.subarray(w.vocab), expectedLogits([...fed[1], embedOf(8)], 256 + texts[1].length + 2), 'reordered row 1');
});

test('PaliGemma.load opens an onnx-community folder and reports the approximate attention', async () => {
  const { PaliGemma, loadImage } = await import('../../../daemon/engine/index.js');
  const model = await PaliGemma.load(dir, { executionProvider: 'cpu', threads: 1 });
  try {
    assert.deepEqual(model.warnings, [APPROXIMATE_ATTENTION]);
    assert.equal(model.manifest.image.numImageTokens, 256);
    const image = await loadImage(fileURLToPath(new URL('../../../../test/fixtures/tiny-paligemma-224/shapes.png', import.meta.url)));
    const out = await model.generate({ image, prompt: 'caption en', maxNewTokens: 3 });
    assert.equal(out.inputIds.length, 256 + out.inputIds.slice(256).length);
    assert.equal(out.inputIds[255], model.manifest.tokens.image);
    assert.equal(out.inputIds[256], model.manifest.tokens.bos);
    assert.ok(out.generatedIds.length >= 1 && out.generatedIds.length <= 3);
    // Greedy: the first generated id is the argmax of the prefill logits.
    const first = await model.lastLogits(image, 'caption en');
    let best = 0;
    for (let i = 1; i < first.length; i++) if (first[i] > first[best]) best = i;
    assert.equal(out.generatedIds[0], best);
  } finally {
    await model.dispose();
  }
});
