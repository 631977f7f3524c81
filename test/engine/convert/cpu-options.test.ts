// The converter's CPU options: `--vision-dtype` (the vision tower's format under int4 weights;
// fp32 by default, fp16 on request) and `--accuracy-level` (MatMulNBits
// accuracy_level of the int4 decoder).
//
// Accuracy level 4 quantises the activations to int8 per block before the int4 matmul, so its
// logits differ from level 0's. Measured on the fixtures (the 10 non-wide golden prompts each,
// prefill last-position logits, CPU EP, onnxruntime-node 1.29, same on repeated runs): worst
// max |logit diff| 0.189 (PaliGemma 1) and 0.133 (PaliGemma 2), typically 0.03-0.15; small next
// to the int4 quantisation noise itself (rms 0.3-0.5 against fp32, see dtypes.test.ts).
// Asserted with small headroom: 0.25.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { command } from '../../../daemon/cli/convert.js';
import { convert, cpuHint } from '../../../daemon/engine/convert/index.js';
import { ConvertedModel, fixture, golden, maxAbsDiff, pixelValues, removeDir, tempDir } from './helpers.js';

const ACC4_BOUND = 0.25;
// The int8 vision tower (per-channel int8 weights, activations quantised per tensor at run time):
// its image features differ from fp32's by 0.029-0.069 of their rms at most (max |diff| / rms,
// both fixtures, every golden image, CPU EP); asserted with headroom: 0.1.
const INT8_VISION_BOUND = 0.1;

function rms(a: Float32Array): number {
  let s = 0;
  for (const x of a) s += x * x;
  return Math.sqrt(s / a.length);
}

for (const model of ['tiny-paligemma-224', 'tiny-paligemma2-224']) {
  describe(`vision dtype and accuracy level, ${model}`, () => {
    let root: string;
    const m: Record<string, ConvertedModel> = {};
    const gold = golden(model);
    const cases = gold.cases.filter((c) => c.image !== 'wide.jpg');

    before(async () => {
      root = tempDir('cpu-options');
      const variants = {
        fp32: { dtype: 'fp32' },
        int4: { dtype: 'int4' },
        int4v16: { dtype: 'int4', visionDtype: 'fp16' },
        int4v32: { dtype: 'int4', visionDtype: 'fp32' },
        int4v32acc4: { dtype: 'int4', visionDtype: 'fp32', accuracyLevel: 4 },
        int4v8: { dtype: 'int4', visionDtype: 'int8' },
      } as const;
      for (const [name, o] of Object.entries(variants)) {
        await convert({ input: fixture(model), output: join(root, name), ...o });
        m[name] = await ConvertedModel.load(join(root, name));
      }
    });
    after(async () => {
      for (const x of Object.values(m)) await x.dispose();
      removeDir(root);
    });

    const manifest = (name: string) => JSON.parse(readFileSync(join(root, name, 'manifest.json'), 'utf8'));

    it('records the vision weights and the accuracy level in manifest.converter', () => {
      assert.deepEqual(manifest('int4').converter, {
        weights: { vision: 'fp32', decoder: 'int4' },
        graphOps: 'fused',
        int4: { blockSize: 32, zeroPoints: true, accuracyLevel: 0, activations: 'fp32' },
      });
      assert.deepEqual(manifest('int4v16').converter.weights, { vision: 'fp16', decoder: 'int4' });
      assert.deepEqual(manifest('int4v32acc4').converter, {
        weights: { vision: 'fp32', decoder: 'int4' },
        graphOps: 'fused',
        int4: { blockSize: 32, zeroPoints: true, accuracyLevel: 4, activations: 'fp32' },
      });
      assert.deepEqual(manifest('fp32').converter, { weights: { vision: 'fp32', decoder: 'fp32' }, graphOps: 'fused' });
    });

    it('int4 (fp32 vision tower by default): image features equal the fp32 conversion within 1e-5', async () => {
      for (const image of new Set(cases.map((c) => c.image))) {
        const px = await pixelValues(`${fixture(model)}/${image}`);
        const a = (await m.fp32.imageFeatures(px)).data as Float32Array;
        for (const name of ['int4', 'int4v32']) {
          const d = maxAbsDiff(a, (await m[name].imageFeatures(px)).data as Float32Array);
          assert.ok(d <= 1e-5, `${name} ${image}: max diff ${d}`);
        }
        // An fp16 tower is measurably different, so the comparison can fail.
        const c = (await m.int4v16.imageFeatures(px)).data as Float32Array;
        assert.ok(maxAbsDiff(a, c) > 1e-5, `${image}: fp16 tower unexpectedly equals fp32`);
      }
    });

    it(`int8 vision tower: image features within ${INT8_VISION_BOUND} of fp32 relative to their rms, linears in a quarter of the bytes`, async () => {
      assert.deepEqual(manifest('int4v8').converter.weights, { vision: 'int8', decoder: 'int4' });
      let worst = 0;
      for (const image of new Set(cases.map((c) => c.image))) {
        const px = await pixelValues(`${fixture(model)}/${image}`);
        const a = (await m.fp32.imageFeatures(px)).data as Float32Array;
        const b = (await m.int4v8.imageFeatures(px)).data as Float32Array;
        const rel = maxAbsDiff(a, b) / rms(a);
        if (process.env.PG_REPORT) console.log(`${model} ${image}: int8 vision tower vs fp32, max |diff| / rms ${rel}`);
        worst = Math.max(worst, rel);
        assert.ok(rel <= INT8_VISION_BOUND, `${image}: max diff / rms ${rel}`);
      }
      // The int8 layers must actually run (else the format was not applied).
      assert.ok(worst > 1e-4, `int8 tower unexpectedly equals fp32 (${worst})`);
      // The encoder's linears (4 C x C and 2 C x I per layer) take 1 byte per weight instead of 4.
      const v = JSON.parse(readFileSync(join(fixture(model), 'config.json'), 'utf8')).vision_config;
      const linears = v.num_hidden_layers * (4 * v.hidden_size ** 2 + 2 * v.hidden_size * v.intermediate_size);
      const weights = (name: string) => statSync(join(root, name, 'vision.onnx.data')).size;
      const saved = weights('fp32') - weights('int4v8');
      assert.ok(saved >= 2.9 * linears, `int8 tower saves ${saved} bytes of ${4 * linears} in fp32 linears`);
    });

    it(`accuracy level 4: logits within ${ACC4_BOUND} of level 0`, async () => {
      let worst = 0;
      for (const c of cases) {
        const ids = c.input_ids.filter((x) => x !== gold.image_token_id);
        const f = await m.int4v32.imageFeatures(await pixelValues(`${fixture(model)}/${c.image}`));
        const a = (await m.int4v32.prefill(f, ids)).logits;
        const b = (await m.int4v32acc4.prefill(f, ids)).logits;
        const d = maxAbsDiff(a, b);
        if (process.env.PG_REPORT) console.log(`${model} ${c.image} / ${c.prompt}: accuracy level 4 vs 0, max |logit diff| ${d}`);
        worst = Math.max(worst, d);
        assert.ok(d <= ACC4_BOUND, `${c.image} / ${c.prompt}: max diff ${d}`);
      }
      // Level 4 must actually change the arithmetic (else the attribute was not applied).
      assert.ok(worst > 0, 'accuracy level 4 gave bit-identical logits');
    });
  });
}

describe('paligemma convert --vision-dtype / --accuracy-level / --activations', () => {
  let root: string;
  before(() => {
    root = tempDir('cpu-options-cli');
  });
  after(() => removeDir(root));

  it('passes them to the converter', async () => {
    const out = join(root, 'm');
    const code = await command.run([fixture('tiny-paligemma-224'), out, '--dtype', 'int4', '--vision-dtype', 'fp32', '--accuracy-level', '4', '--layers', '1']);
    assert.equal(code, 0);
    const converter = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')).converter;
    assert.equal(converter.weights.vision, 'fp32');
    assert.equal(converter.int4.accuracyLevel, 4);
    assert.equal(converter.int4.activations, 'fp32');
    assert.equal(cpuHint({ dtype: 'int4', converter }), null);
    const half = join(root, 'h');
    assert.equal(await command.run([fixture('tiny-paligemma-224'), half, '--dtype', 'int4', '--activations', 'fp16', '--layers', '1']), 0);
    const manifest = JSON.parse(readFileSync(join(half, 'manifest.json'), 'utf8'));
    assert.equal(manifest.converter.int4.activations, 'fp16');
    assert.equal(manifest.kvDtype, 'float16');
    assert.match(cpuHint(manifest)!, /--activations fp32/);
  });

  it('rejects bad values with exit code 2 and writes nothing', async () => {
    const run = (...a: string[]) => command.run([fixture('tiny-paligemma-224'), join(root, 'bad'), '--layers', '1', ...a]);
    assert.equal(await run('--dtype', 'int4', '--vision-dtype', 'bf16'), 2);
    assert.equal(await run('--dtype', 'int4', '--accuracy-level', '5'), 2);
    assert.equal(await run('--dtype', 'int4', '--accuracy-level', 'x'), 2);
    assert.equal(await run('--dtype', 'fp16', '--accuracy-level', '4'), 2);
    assert.equal(await run('--dtype', 'int4', '--activations', 'bf16'), 2);
    assert.equal(await run('--dtype', 'fp32', '--activations', 'fp16'), 2);
    assert.equal(existsSync(join(root, 'bad')), false);
  });

  it('the engine rejects them too', async () => {
    await assert.rejects(convert({ input: fixture('tiny-paligemma-224'), output: join(root, 'e'), dtype: 'fp32', accuracyLevel: 4 }), { code: 'invalid-params' });
    await assert.rejects(convert({ input: fixture('tiny-paligemma-224'), output: join(root, 'e'), dtype: 'int4', accuracyLevel: 7 }), { code: 'invalid-params' });
    await assert.rejects(convert({ input: fixture('tiny-paligemma-224'), output: join(root, 'e'), dtype: 'fp16', activations: 'fp16' }), { code: 'invalid-params' });
    // @ts-expect-error: a value from untyped input
    await assert.rejects(convert({ input: fixture('tiny-paligemma-224'), output: join(root, 'e'), dtype: 'int4', visionDtype: 'int4' }), { code: 'invalid-params' });
  });

  it('hints at the CPU options where a model lacks them', () => {
    assert.match(
      cpuHint({ dtype: 'int4', converter: { weights: { vision: 'fp16', decoder: 'int4' }, graphOps: 'fused', int4: { blockSize: 32, zeroPoints: true, accuracyLevel: 0 } } })!,
      /--vision-dtype fp32 --accuracy-level 4/,
    );
    assert.match(cpuHint({ dtype: 'fp16', converter: { weights: { vision: 'fp16', decoder: 'fp16' } } })!, /--vision-dtype fp32/);
    assert.equal(cpuHint({ dtype: 'fp32', converter: { weights: { vision: 'fp32', decoder: 'fp32' } } }), null);
  });
});
