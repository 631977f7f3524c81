// The converter's transformers.js export layout: the same layers as decoder.onnx behind the
// onnx-community interface, loaded by our engine and by transformers.js itself.
// What the golden ids cannot check here: the export takes a 2-D attention mask, so its prompt
// attends causally where the reference's is bidirectional, and no golden case survives that (the
// generated ids differ from the first token on). So the export is checked against decoder.onnx fed
// a causal bias (same logits), and transformers.js against our engine on the same files (same ids)
// wherever its preprocessing equals ours: the 224x224 images, where resizing is the identity
// (on wide.jpg it resizes with sharp's bicubic, not the reference's antialiased one).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFile } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { convert } from '../../../daemon/engine/convert/index.js';
import { loadImage, PaliGemma, preprocess } from '../../../daemon/engine/index.js';
import { MASKED } from '../../../daemon/engine/model/masks.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const FIXTURES = join(ROOT, 'test/fixtures');
const PEER_SCRIPT = join(ROOT, 'bench/peer/transformers-js.mjs');
const run = promisify(execFile);

interface GoldenCase {
  image: string;
  prompt: string;
  input_ids: number[];
}
const golden = (name: string) => (JSON.parse(readFileSync(join(FIXTURES, name, 'golden.json'), 'utf8')) as { cases: GoldenCase[] }).cases;

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'pg-tjs-export-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

const session = (path: string) => ort.InferenceSession.create(path, { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 });

for (const name of ['tiny-paligemma-224', 'tiny-paligemma2-224']) {
  describe(`transformers.js export of ${name}`, () => {
    let ours: string;
    let exported: string;
    before(async () => {
      ours = join(root, `${name}-ours`);
      exported = join(root, `${name}-tjs`);
      await convert({ input: join(FIXTURES, name), output: ours, dtype: 'fp32' });
      await convert({ input: join(FIXTURES, name), output: exported, dtype: 'fp32', layout: 'transformers.js' });
    });

    test('writes the layout transformers.js reads, and no manifest', () => {
      assert.equal(existsSync(join(exported, 'manifest.json')), false);
      for (const f of ['config.json', 'generation_config.json', 'preprocessor_config.json', 'tokenizer.json', 'tokenizer_config.json']) {
        assert.ok(existsSync(join(exported, f)), f);
      }
      assert.deepEqual(readdirSync(join(exported, 'onnx')).sort(), [
        'decoder_model_merged.onnx',
        'decoder_model_merged.onnx_data',
        'embed_tokens.onnx',
        'embed_tokens.onnx_data',
        'vision_encoder.onnx',
        'vision_encoder.onnx_data',
      ]);
    });

    test('the merged decoder computes what decoder.onnx computes with a causal prompt', async () => {
      const c = golden(name)[0];
      const model = await PaliGemma.load(ours, { executionProvider: 'cpu', threads: 1 });
      const m = model.manifest;
      const pixels = preprocess(await loadImage(join(FIXTURES, name, c.image)), m.image);
      await model.dispose();
      const [vision, decoder, embed, merged] = await Promise.all([
        session(join(ours, 'vision.onnx')),
        session(join(ours, 'decoder.onnx')),
        session(join(exported, 'onnx/embed_tokens.onnx')),
        session(join(exported, 'onnx/decoder_model_merged.onnx')),
      ]);
      try {
        const S = m.image.size;
        const features = (await vision.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, S, S]) })).image_features as ort.Tensor;
        const N = m.image.numImageTokens;
        const L = c.input_ids.length;
        const H = m.text.hiddenSize;
        const { numKvHeads: KV, headDim: D, numLayers } = m.text;
        const positions = new ort.Tensor(
          'int64',
          BigInt64Array.from({ length: L }, (_, i) => BigInt(i + 1)),
          [1, L],
        );
        const emptyPast = (prefix: (i: number, k: 'key' | 'value') => string) =>
          Object.fromEntries(
            Array.from({ length: numLayers }, (_, i) =>
              (['key', 'value'] as const).map((k) => [prefix(i, k), new ort.Tensor('float32', new Float32Array(0), [1, KV, 0, D])]),
            ).flat(),
          );
        const causal = new Float32Array(L * L);
        for (let q = 0; q < L; q++) for (let k = q + 1; k < L; k++) causal[q * L + k] = MASKED;
        const bias = new ort.Tensor('float32', causal, [1, 1, L, L]);
        const ref = await decoder.run({
          input_ids: new ort.Tensor('int64', BigInt64Array.from(c.input_ids.slice(N), BigInt), [1, L - N]),
          image_features: features,
          position_ids: positions,
          attention_bias: bias,
          ...(decoder.inputNames.includes('attention_bias_sliding') ? { attention_bias_sliding: bias } : {}),
          ...emptyPast((i, k) => `past_${k}.${i}`),
        });

        const embeds = (await embed.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(c.input_ids, BigInt), [1, L]) })).inputs_embeds as ort.Tensor;
        const e = new Float32Array(embeds.data as Float32Array);
        e.set(features.data as Float32Array, 0); // the image rows come first
        const out = await merged.run({
          inputs_embeds: new ort.Tensor('float32', e, [1, L, H]),
          attention_mask: new ort.Tensor('int64', new BigInt64Array(L).fill(1n), [1, L]),
          position_ids: positions,
          ...emptyPast((i, k) => `past_key_values.${i}.${k}`),
        });
        assert.deepEqual(out.logits.dims, [1, 1, m.text.vocabSize]);
        const a = ref.logits.data as Float32Array;
        const b = out.logits.data as Float32Array;
        let worst = 0;
        for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
        assert.ok(worst < 1e-4, `logits differ by up to ${worst}`);
        const k0 = ref['present_key.0'].data as Float32Array;
        assert.deepEqual(Array.from(out['present.0.key'].data as Float32Array), Array.from(k0));
      } finally {
        await Promise.all([vision, decoder, embed, merged].map((s) => s.release()));
      }
    });

    test('transformers.js and our engine give the same ids on the same files', async () => {
      // transformers.js in a process of its own: its onnxruntime-node 1.30 cannot load beside our 1.29.
      const cases = golden(name).map((c) => ({ ...c, path: join(FIXTURES, name, c.image) }));
      const { stdout } = await run(process.execPath, [
        PEER_SCRIPT,
        'ids',
        JSON.stringify({ dir: exported, dtype: 'fp32', newTokens: 8, threads: 1, cases: cases.map((c) => ({ image: c.path, prompt: c.prompt })) }),
      ]);
      const theirs = (JSON.parse(stdout.trim().split('\n').at(-1)!) as { cases: { input_ids: number[]; generated_ids: number[] }[] }).cases;
      const model = await PaliGemma.load(exported, { executionProvider: 'cpu', threads: 1 });
      try {
        let compared = 0;
        for (const [i, c] of cases.entries()) {
          assert.deepEqual(theirs[i].input_ids, c.input_ids, `${c.image} / ${c.prompt}: prompt ids`);
          const image = await loadImage(c.path);
          const mine = await model.generate({ image, prompt: c.prompt, maxNewTokens: 8, minNewTokens: 8 });
          assert.deepEqual(mine.inputIds, c.input_ids, `${c.image} / ${c.prompt}: our prompt ids`);
          // Only where both preprocess alike: no resize (transformers.js resizes with sharp's bicubic).
          if (image.width !== model.manifest.image.size || image.height !== model.manifest.image.size) continue;
          assert.deepEqual(mine.generatedIds, theirs[i].generated_ids, `${c.image} / ${c.prompt}`);
          compared++;
        }
        assert.equal(compared, 10);
      } finally {
        await model.dispose();
      }
    });
  });
}
