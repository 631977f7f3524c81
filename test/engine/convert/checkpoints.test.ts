// Checkpoints as the Hub has them: transformers 4.x configs (most fields omitted, rope_theta at
// the top of text_config), 4.x weight names, preprocessor_config.json, sharded safetensors with
// an index, bf16 / fp16 tensors. Each must convert to the same logits as the fixture itself.
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { convert } from '../../../daemon/engine/convert/index.js';
import { float32ToFloat16, halfBitsToFloat } from '../../../daemon/engine/onnx/builder.js';
import { ConvertedModel, copyFixture, fixture, golden, maxAbsDiff, pixelValues, readSafetensors, removeDir, tempDir, writeSafetensors, type StTensor } from './helpers.js';

const f32 = (t: StTensor) => new Float32Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength));

/** bf16 bits with round-to-nearest-even, and back. */
function toBf16(x: Float32Array): { bits: Uint16Array; rounded: Float32Array } {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const bits = new Uint16Array(x.length);
  const rounded = new Float32Array(x.length);
  const ru = new Uint32Array(rounded.buffer);
  for (let i = 0; i < x.length; i++) {
    bits[i] = (u[i] + 0x7fff + ((u[i] >>> 16) & 1)) >>> 16;
    ru[i] = bits[i] << 16;
  }
  return { bits, rounded };
}

function toF16(x: Float32Array): { bits: Uint16Array; rounded: Float32Array } {
  const bits = float32ToFloat16(x);
  return { bits, rounded: Float32Array.from(bits, halfBitsToFloat) };
}

/** Writes `tensors` as `shards` files plus model.safetensors.index.json (4.x layout). */
function writeSharded(dir: string, tensors: Record<string, StTensor>, shards: number): void {
  rmSync(join(dir, 'model.safetensors'), { force: true });
  const names = Object.keys(tensors);
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const part: Record<string, StTensor> = {};
    names
      .filter((_, i) => i % shards === s)
      .forEach((n) => {
        part[n] = tensors[n];
        weightMap[n] = file;
      });
    writeSafetensors(join(dir, file), part);
  }
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
}

/** 4.x names: vision_tower.vision_model.* (the fixture has vision_tower.*). */
function legacyNames(tensors: Record<string, StTensor>): Record<string, StTensor> {
  return Object.fromEntries(Object.entries(tensors).map(([n, t]) => [n.replace(/^vision_tower\./, 'vision_tower.vision_model.'), t]));
}

/** A config.json as transformers 4.x wrote it: defaults omitted, rope_theta in text_config. */
function legacyConfig(dir: string): void {
  const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const t = c.text_config;
  for (const k of [
    'rope_parameters',
    'rms_norm_eps',
    'hidden_activation',
    'hidden_act',
    'max_position_embeddings',
    'layer_types',
    'use_bidirectional_attention',
    'attn_logit_softcapping',
    'final_logit_softcapping',
    'sliding_window',
    'tie_word_embeddings',
  ])
    delete t[k];
  t.rope_theta = 10000.0;
  t.torch_dtype = 'bfloat16';
  for (const k of ['layer_norm_eps', 'hidden_act', 'num_channels', 'attention_dropout']) delete c.vision_config[k];
  delete c.tie_word_embeddings;
  c.transformers_version = '4.47.0';
  writeFileSync(join(dir, 'config.json'), JSON.stringify(c));
  // preprocessor_config.json, flat, instead of processor_config.json
  const p = JSON.parse(readFileSync(join(dir, 'processor_config.json'), 'utf8')).image_processor;
  rmSync(join(dir, 'processor_config.json'));
  writeFileSync(join(dir, 'preprocessor_config.json'), JSON.stringify({ ...p, processor_class: 'PaliGemmaProcessor' }));
}

for (const model of ['tiny-paligemma-224', 'tiny-paligemma2-224']) {
  describe(`Hub-style checkpoints of ${model}`, () => {
    let root: string;
    const gold = golden(model);
    const cases = gold.cases.filter((c) => c.image !== 'wide.jpg').slice(0, 3);
    const m: Record<string, ConvertedModel> = {};

    async function logits(name: string): Promise<Float32Array[]> {
      const out: Float32Array[] = [];
      for (const c of cases) {
        const f = await m[name].imageFeatures(await pixelValues(`${fixture(model)}/${c.image}`));
        out.push(
          (
            await m[name].prefill(
              f,
              c.input_ids.filter((x) => x !== gold.image_token_id),
            )
          ).logits,
        );
      }
      return out;
    }

    before(async () => {
      root = tempDir('ckpt');
      const original = readSafetensors(join(fixture(model), 'model.safetensors'));

      // (1) 4.x config + names + preprocessor_config.json + fp32 shards: same weights.
      const legacy = copyFixture(model, join(root, 'legacy-src'));
      legacyConfig(legacy);
      writeSharded(legacy, legacyNames(original), 3);

      // (2) bf16 shards (vision tower fp16), and (3) the same rounded weights as one fp32 file.
      const half = copyFixture(model, join(root, 'half-src'));
      const rounded = copyFixture(model, join(root, 'rounded-src'));
      const halfTensors: Record<string, StTensor> = {};
      const roundedTensors: Record<string, StTensor> = {};
      for (const [n, t] of Object.entries(original)) {
        const r = n.startsWith('vision_tower.') ? toF16(f32(t)) : toBf16(f32(t));
        halfTensors[n] = { dtype: n.startsWith('vision_tower.') ? 'F16' : 'BF16', shape: t.shape, data: new Uint8Array(r.bits.buffer) };
        roundedTensors[n] = { dtype: 'F32', shape: t.shape, data: new Uint8Array(r.rounded.buffer) };
      }
      writeSharded(half, halfTensors, 2);
      writeSafetensors(join(rounded, 'model.safetensors'), roundedTensors);

      for (const [name, src] of [
        ['fixture', fixture(model)],
        ['legacy', legacy],
        ['half', half],
        ['rounded', rounded],
      ] as const) {
        await convert({ input: src, output: join(root, name), dtype: 'fp32' });
        m[name] = await ConvertedModel.load(join(root, name));
      }
    });
    after(async () => {
      for (const x of Object.values(m)) await x.dispose();
      removeDir(root);
    });

    it('4.x config, names, preprocessor config and fp32 shards give the same logits', async () => {
      assert.deepEqual(m.legacy.manifest.text, m.fixture.manifest.text);
      const [a, b] = [await logits('fixture'), await logits('legacy')];
      a.forEach((x, i) => assert.ok(maxAbsDiff(x, b[i]) < 1e-6, `case ${i}: ${maxAbsDiff(x, b[i])}`));
    });

    it('bf16/fp16 shards convert exactly like fp32 tensors holding the same rounded values', async () => {
      const [a, b] = [await logits('rounded'), await logits('half')];
      a.forEach((x, i) => assert.ok(maxAbsDiff(x, b[i]) < 1e-6, `case ${i}: ${maxAbsDiff(x, b[i])}`));
    });

    it('records sha256 of every source file, shards and index included', () => {
      const files = JSON.parse(readFileSync(join(root, 'half', 'manifest.json'), 'utf8')).source.files as Record<string, string>;
      for (const f of ['config.json', 'tokenizer.json', 'model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']) {
        assert.match(files[f] ?? '', /^sha256:[0-9a-f]{64}$/, f);
      }
      const legacyFiles = JSON.parse(readFileSync(join(root, 'legacy', 'manifest.json'), 'utf8')).source.files;
      assert.ok('preprocessor_config.json' in legacyFiles);
    });
  });
}
