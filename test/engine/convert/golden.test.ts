// The key correctness signal: converted fp32 graphs reproduce transformers' prefill logits
// (golden.json, transformers 5.17 float32) on the two exact-224 fixture images, and one
// decode step through the KV cache reproduces the golden forced step; both with the default fused
// contrib ops and with --standard-ops.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { convert } from '../../../daemon/engine/convert/index.js';
import { onnx } from '../../../daemon/engine/onnx/builder.js';
import { ConvertedModel, fixture, golden, pixelValues, removeDir, tempDir, top } from './helpers.js';

const TOL = 1e-3;

for (const [model, standardOps] of [
  ['tiny-paligemma-224', false],
  ['tiny-paligemma2-224', false],
  ['tiny-paligemma-224', true],
  ['tiny-paligemma2-224', true],
] as const) {
  describe(`fp32 ${model}${standardOps ? ' (standard ops)' : ''} against golden.json`, () => {
    let dir: string;
    let m: ConvertedModel;
    const gold = golden(model);
    const cases = gold.cases.filter((c) => c.image !== 'wide.jpg');

    before(async () => {
      dir = tempDir('golden');
      await convert({ input: fixture(model), output: `${dir}/model`, dtype: 'fp32', standardOps });
      m = await ConvertedModel.load(`${dir}/model`);
    });
    after(async () => {
      await m?.dispose();
      removeDir(dir);
    });

    it('has cases on both exact-224 images', () => {
      assert.equal(cases.length, 10);
    });

    it('writes the manifest from the checkpoint files (ids read, not hard-coded)', () => {
      const man = JSON.parse(readFileSync(`${dir}/model/manifest.json`, 'utf8'));
      assert.equal(man.format, 'paligemma-onnx');
      assert.equal(man.formatVersion, 1);
      assert.equal(man.architecture, model === 'tiny-paligemma-224' ? 'paligemma' : 'paligemma2');
      assert.deepEqual([man.dtype, man.kvDtype], ['fp32', 'float32']);
      // README of the fixtures: <image> 2052, <loc0000> 900, "\n" 260, bos/eos/pad 2/1/0.
      assert.deepEqual(man.tokens, { bos: 2, eos: 1, pad: 0, image: gold.image_token_id, newline: 260, loc0: 900, seg0: 1924 });
      assert.deepEqual(man.image, { size: 224, patchSize: 14, numImageTokens: 256, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], rescale: 0.00392156862745098 });
      assert.equal(man.text.vocabSize, 2112);
      assert.equal(man.text.finalLogitSoftcap, model === 'tiny-paligemma-224' ? null : 30);
      assert.equal(man.source.kind, 'huggingface');
      assert.equal(man.converter.graphOps, standardOps ? 'standard' : 'fused');
      assert.match(man.source.files['model.safetensors'], /^sha256:[0-9a-f]{64}$/);
      assert.ok(readFileSync(`${dir}/model/tokenizer.json`).equals(readFileSync(`${fixture(model)}/tokenizer.json`)));
    });

    it(standardOps ? 'uses no contrib ops beyond what int4 needs' : 'fuses norms, RoPE and GELU into contrib ops', () => {
      const opsOf = (file: string) => new Set(onnx.ModelProto.decode(readFileSync(`${dir}/model/${file}`)).graph!.node!.map((n) => n.opType!));
      const ops = opsOf('decoder.onnx');
      const vision = opsOf('vision.onnx');
      const fused = ['SkipSimplifiedLayerNormalization', 'RotaryEmbedding', 'FastGelu'];
      const visionFused = ['SkipLayerNormalization', 'FastGelu'];
      if (standardOps) {
        for (const op of [...fused, 'MultiHeadAttention']) assert.ok(!ops.has(op), op);
        for (const op of visionFused) assert.ok(!vision.has(op), `vision ${op}`);
        assert.ok(ops.has('Tanh') && ops.has('Softmax'));
      } else {
        for (const op of visionFused) assert.ok(vision.has(op), `vision ${op}`);
        assert.ok(!vision.has('Tanh'), 'no standard-op GELU left in the vision tower');
        for (const op of fused) assert.ok(ops.has(op), op);
        // Attention stays in standard ops (see decoder-graph.ts): no MultiHeadAttention anywhere.
        assert.ok(!ops.has('MultiHeadAttention') && !vision.has('MultiHeadAttention'));
        // GELU is FastGelu: a Tanh remains only in Gemma 2's attention softcap.
        assert.equal(ops.has('Tanh'), model === 'tiny-paligemma2-224');
      }
    });

    it('prefill last-position logits match top-5 ids and values within 1e-3', async () => {
      const features = new Map<string, Awaited<ReturnType<ConvertedModel['imageFeatures']>>>();
      for (const c of cases) {
        if (!features.has(c.image)) features.set(c.image, await m.imageFeatures(await pixelValues(`${fixture(model)}/${c.image}`)));
        const ids = c.input_ids.filter((x) => x !== gold.image_token_id);
        assert.equal(c.input_ids.length - ids.length, m.manifest.image.numImageTokens);
        const { logits } = await m.prefill(features.get(c.image)!, ids);
        assert.deepEqual(top(logits, 5).ids, c.last_logits_top5, `${c.image} / ${c.prompt}: top-5 ids`);
        c.last_logits_top5.forEach((id, i) => {
          const d = Math.abs(logits[id] - c.last_logits_top5_values[i]);
          assert.ok(d <= TOL, `${c.image} / ${c.prompt}: logit ${id} off by ${d}`);
        });
      }
    });

    it('a decode step through the KV cache matches the golden forced step', async () => {
      const c = cases[0];
      const features = await m.imageFeatures(await pixelValues(`${fixture(model)}/${c.image}`));
      const ids = c.input_ids.filter((x) => x !== gold.image_token_id);
      let { cache } = await m.prefill(features, ids);
      for (let s = 1; s < 4; s++) {
        const out = await m.step(m.noImage(), [c.forced16_ids[s - 1]], cache);
        cache = out.cache;
        const want = c.forced16_steps[s];
        assert.deepEqual(top(out.logits, 3).ids, want.top_ids, `step ${s}: top-3 ids`);
        want.top_ids.forEach((id, i) => assert.ok(Math.abs(out.logits[id] - want.top_logits[i]) <= TOL, `step ${s}: logit ${id}`));
      }
      assert.equal(cache[0].dims[2], c.input_ids.length + 3);
    });
  });
}
