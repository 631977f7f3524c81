// fp16, int4 and int8 graphs against the fp32 conversion of the same checkpoint.
//
// Tolerances (measured on the fixtures, see the report in the commit):
// - fp16 (fp16 weights and matmuls, fp32 residual stream/norms/softmax/RoPE, fp16 KV cache):
//   top-1 equal on all 10 prompts, max |logit diff| about 0.02 -> bound 0.05.
// - int4 (MatMulNBits block 32 with zero points for every decoder linear and the tied
//   embedding / lm_head): the graph must compute exactly with the dequantised weights (checked
//   against an fp32 conversion of a checkpoint holding those weights, within 1e-4). The
//   quantisation noise itself is large on these toy models (random weights of std 0.3 at width
//   64 amplify perturbations ~2.4x per linear): rms logit diff ~0.3-0.5 against a logit std of
//   ~0.8; the correlation of int4 and fp32 logits measured 0.70-0.94 (PaliGemma 1) and
//   0.90-0.97 (PaliGemma 2), top-1 equal on 2/10 and 5/10 prompts. Asserted: correlation > 0.6.
// - int4 with fp16 activations (the decoder's MatMulNBits in fp16, fp16 KV cache; the lm_head and
//   embedding lookup stay fp32) against int4 with fp32 activations, the same quantised weights:
//   top-1 equal on all 10 prompts, max |logit diff| 0.003-0.014 -> bound 0.05 (as fp16 above).
// - int8 (per-channel int8 layers with activations quantised per tensor at run time, 8-bit blocks
//   of 32 for the tied embedding / lm_head, int8 vision tower): correlation with fp32 logits
//   0.982-0.999 (PaliGemma 1) and 0.990-0.9996 (PaliGemma 2), above int4's on every prompt, top-1
//   equal on 9/10 prompts of each. Asserted: correlation > 0.97, above int4's, top-1 on 8/10.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { convert } from '../../../daemon/engine/convert/index.js';
import { dequantizeInt4Rows, quantizeInt4Rows } from '../../../daemon/engine/convert/quantize.js';
import { ConvertedModel, copyFixture, fixture, golden, maxAbsDiff, pixelValues, readSafetensors, removeDir, tempDir, top, writeSafetensors } from './helpers.js';

const INT8_CORRELATION = 0.97;
const INT8_SAME_TOP = 0.8;

function correlation(a: Float32Array, b: Float32Array): number {
  let ma = 0,
    mb = 0;
  for (let i = 0; i < a.length; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= a.length;
  mb /= b.length;
  let sab = 0,
    saa = 0,
    sbb = 0;
  for (let i = 0; i < a.length; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

for (const model of ['tiny-paligemma-224', 'tiny-paligemma2-224']) {
  describe(`fp16 and int4 ${model}`, () => {
    let root: string;
    const m: Record<string, ConvertedModel> = {};
    const gold = golden(model);
    const cases = gold.cases.filter((c) => c.image !== 'wide.jpg');
    const featureCache = new Map<string, Awaited<ReturnType<ConvertedModel['imageFeatures']>>>();
    const features = async (dtype: string, image: string) => {
      const key = `${dtype}:${image}`;
      if (!featureCache.has(key)) featureCache.set(key, await m[dtype].imageFeatures(await pixelValues(`${fixture(model)}/${image}`)));
      return featureCache.get(key)!;
    };

    before(async () => {
      root = tempDir('dtypes');
      for (const dtype of ['fp32', 'fp16', 'int4', 'int8'] as const) {
        await convert({ input: fixture(model), output: join(root, dtype), dtype });
        m[dtype] = await ConvertedModel.load(join(root, dtype));
      }
      await convert({ input: fixture(model), output: join(root, 'int4h'), dtype: 'int4', activations: 'fp16' });
      m.int4h = await ConvertedModel.load(join(root, 'int4h'));
      // The same checkpoint with the int4-quantised decoder weights dequantised back to fp32.
      const ckpt = copyFixture(model, join(root, 'src'));
      const tensors = readSafetensors(join(ckpt, 'model.safetensors'));
      for (const [name, t] of Object.entries(tensors)) {
        if (!/^language_model\.model\.(embed_tokens|layers\.\d+\.(self_attn|mlp)\.\w+_proj)\.weight$/.test(name)) continue;
        const [N, K] = t.shape;
        const w = new Float32Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength));
        t.data = new Uint8Array(dequantizeInt4Rows(quantizeInt4Rows(w, N, K), N, K).buffer);
      }
      writeSafetensors(join(ckpt, 'model.safetensors'), tensors);
      await convert({ input: ckpt, output: join(root, 'dequant'), dtype: 'fp32' });
      m.dequant = await ConvertedModel.load(join(root, 'dequant'));
    });
    after(async () => {
      for (const x of Object.values(m)) await x.dispose();
      removeDir(root);
    });

    it('records dtype and kvDtype in the manifest', () => {
      assert.equal(m.fp16.manifest.kvDtype, 'float16');
      assert.equal(m.int4.manifest.kvDtype, 'float32');
    });

    it('fp16: same top-1 as fp32 on every prompt, logits within 0.05', async () => {
      for (const c of cases) {
        const ids = c.input_ids.filter((x) => x !== gold.image_token_id);
        const a = (await m.fp32.prefill(await features('fp32', c.image), ids)).logits;
        const b = (await m.fp16.prefill(await features('fp16', c.image), ids)).logits;
        assert.equal(top(b, 1).ids[0], top(a, 1).ids[0], `${c.image} / ${c.prompt}`);
        const d = maxAbsDiff(a, b);
        assert.ok(d < 0.05, `${c.image} / ${c.prompt}: max diff ${d}`);
      }
    });

    it('fp16: decode steps run on the fp16 KV cache', async () => {
      const c = cases[0];
      const ids = c.input_ids.filter((x) => x !== gold.image_token_id);
      const p = await m.fp16.prefill(await features('fp16', c.image), ids);
      assert.equal(p.cache[0].type, 'float16');
      const s = await m.fp16.step(m.fp16.noImage(), [c.forced16_ids[0]], p.cache);
      assert.deepEqual(top(s.logits, 1).ids, [c.forced16_steps[1].top_ids[0]]);
    });

    it('int4: computes exactly with the dequantised weights', async () => {
      for (const c of cases.slice(0, 4)) {
        const f = await features('int4', c.image);
        const ids = c.input_ids.filter((x) => x !== gold.image_token_id);
        const q = (await m.int4.prefill(f, ids)).logits;
        const ref = (await m.dequant.prefill(f, ids)).logits;
        const d = maxAbsDiff(q, ref);
        assert.ok(d < 1e-4, `${c.image} / ${c.prompt}: int4 vs dequantised fp32 differ by ${d}`);
      }
    });

    it('int4: logits stay correlated with fp32', async () => {
      for (const c of cases) {
        const ids = c.input_ids.filter((x) => x !== gold.image_token_id);
        const a = (await m.fp32.prefill(await features('fp32', c.image), ids)).logits;
        const b = (await m.int4.prefill(await features('int4', c.image), ids)).logits;
        const r = correlation(a, b);
        if (process.env.PG_REPORT) console.log(`${model} int4 ${c.image} / ${c.prompt}: r=${r.toFixed(3)} top1 ${top(b, 1).ids[0] === top(a, 1).ids[0]}`);
        assert.ok(r > 0.6, `${c.image} / ${c.prompt}: correlation ${r}`);
      }
    });

    it(`int8: logits correlate with fp32 above ${INT8_CORRELATION}, closer than int4's, the top-1 kept`, async () => {
      let sameTop = 0;
      for (const c of cases) {
        const ids = c.input_ids.filter((x) => x !== gold.image_token_id);
        const a = (await m.fp32.prefill(await features('fp32', c.image), ids)).logits;
        const b = (await m.int8.prefill(await features('int8', c.image), ids)).logits;
        const q4 = (await m.int4.prefill(await features('int4', c.image), ids)).logits;
        const r = correlation(a, b);
        const r4 = correlation(a, q4);
        if (top(b, 1).ids[0] === top(a, 1).ids[0]) sameTop++;
        if (process.env.PG_REPORT)
          console.log(
            `${model} int8 ${c.image} / ${c.prompt}: r=${r.toFixed(4)} (int4 ${r4.toFixed(3)}) max diff ${maxAbsDiff(a, b).toFixed(3)} top1 ${top(b, 1).ids[0] === top(a, 1).ids[0]}`,
          );
        assert.ok(r > INT8_CORRELATION, `${c.image} / ${c.prompt}: correlation ${r}`);
        assert.ok(r > r4, `${c.image} / ${c.prompt}: int8 ${r} no closer than int4 ${r4}`);
      }
      if (process.env.PG_REPORT) console.log(`${model} int8: top-1 as fp32 on ${sameTop}/${cases.length}`);
      assert.ok(sameTop >= INT8_SAME_TOP * cases.length, `top-1 as fp32 on ${sameTop}/${cases.length}`);
    });

    it('int4 with fp16 activations: fp16 KV cache, the same top-1 as fp32 activations, logits within 0.05', async () => {
      assert.equal(m.int4h.manifest.kvDtype, 'float16');
      for (const c of cases) {
        const ids = c.input_ids.filter((x) => x !== gold.image_token_id);
        const f = await features('int4', c.image);
        const a = (await m.int4.prefill(f, ids)).logits;
        const p = await m.int4h.prefill(f, ids);
        assert.equal(p.cache[0].type, 'float16');
        const d = maxAbsDiff(a, p.logits);
        if (process.env.PG_REPORT) console.log(`${model} int4 fp16 activations ${c.image} / ${c.prompt}: max diff ${d.toFixed(4)} vs fp32 activations`);
        assert.equal(top(p.logits, 1).ids[0], top(a, 1).ids[0], `${c.image} / ${c.prompt}`);
        assert.ok(d < 0.05, `${c.image} / ${c.prompt}: max diff ${d}`);
      }
    });
  });
}
