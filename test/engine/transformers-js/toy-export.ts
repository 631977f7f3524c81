// A toy export in the onnx-community layout, built in the test: the real graphs' interfaces
// (names, ranks, symbolic dims, past/present naming) with simple math a test can recompute, so
// that what the loader feeds (embeddings, image rows, mask, positions, cache) is checked exactly.
//   vision_encoder: image_features = AvgPool14(pixel_values) as [B, N, 3] x W[3, H]
//   embed_tokens:   inputs_embeds = E[input_ids]
//   decoder:        present.0.value = concat(past, inputs_embeds); ctx = sum over positions of mask * value
//                   logits[b, t] = (ctx[b] + position_ids[b, t] * u) . E^T
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GraphBuilder, onnx } from '../../../daemon/engine/onnx/builder.js';

export interface ToyWeights {
  hidden: number;
  vocab: number;
  W: Float32Array; // [3, H]
  E: Float32Array; // [V, H]
  u: Float32Array; // [H]
}

function rand(n: number, seed: number, scale = 0.1): Float32Array {
  let x = seed;
  return Float32Array.from({ length: n }, () => {
    x = (x * 1103515245 + 12345) >>> 0;
    return ((x / 2 ** 32) * 2 - 1) * scale;
  });
}

function save(g: GraphBuilder, path: string): void {
  writeFileSync(path, onnx.ModelProto.encode(onnx.ModelProto.create(g.toModel())).finish());
}

const f32 = (g: GraphBuilder, name: string, dims: number[], data: Float32Array) => g.initializer(name, 'float32', dims, data);
const i64 = (g: GraphBuilder, name: string, values: number[]) => g.initializer(name, 'int64', [values.length], BigInt64Array.from(values, BigInt));

export function writeToyExport(dir: string, suffix = ''): ToyWeights {
  const fixture = fileURLToPath(new URL('../../../../test/fixtures/tiny-paligemma-224/', import.meta.url));
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'processor_config.json']) copyFileSync(join(fixture, f), join(dir, f));
  const hidden = 64;
  const vocab = 2112;
  const w: ToyWeights = { hidden, vocab, W: rand(3 * hidden, 1), E: rand(vocab * hidden, 2), u: rand(hidden, 3) };

  const v = new GraphBuilder({ name: 'vision_encoder', opset: 17 });
  const px = v.input('pixel_values', 'float32', ['batch_size', 3, 224, 224]);
  const pooled = v.op('AveragePool', [px], { kernel_shape: [14, 14], strides: [14, 14] });
  const flat = v.op('Reshape', [pooled, i64(v, 'shape', [0, 3, 256])]);
  const tokens = v.op('Transpose', [flat], { perm: [0, 2, 1] });
  v.output('image_features', v.op('MatMul', [tokens, f32(v, 'W', [3, hidden], w.W)]), 'float32', ['batch_size', 256, hidden]);
  save(v, join(dir, 'onnx', `vision_encoder${suffix}.onnx`));

  const e = new GraphBuilder({ name: 'embed_tokens', opset: 17 });
  const ids = e.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
  e.output('inputs_embeds', e.op('Gather', [f32(e, 'E', [vocab, hidden], w.E), ids], { axis: 0 }), 'float32', ['batch_size', 'sequence_length', hidden]);
  save(e, join(dir, 'onnx', `embed_tokens${suffix}.onnx`));

  const d = new GraphBuilder({ name: 'decoder_model_merged', opset: 17 });
  const x = d.input('inputs_embeds', 'float32', ['batch_size', 'sequence_length', hidden]);
  const mask = d.input('attention_mask', 'int64', ['batch_size', 'total_sequence_length']);
  const pos = d.input('position_ids', 'int64', ['batch_size', 'sequence_length']);
  const pastK = d.input('past_key_values.0.key', 'float32', ['batch_size', 1, 'past_sequence_length', hidden]);
  const pastV = d.input('past_key_values.0.value', 'float32', ['batch_size', 1, 'past_sequence_length', hidden]);
  const x4 = d.op('Unsqueeze', [x, i64(d, 'axis1', [1])]); // [B, 1, T, H]
  const presentK = d.op('Concat', [pastK, x4], { axis: 2 });
  const presentV = d.op('Concat', [pastV, x4], { axis: 2 });
  d.output('present.0.key', presentK, 'float32', ['batch_size', 1, 'total_sequence_length', hidden]);
  const m = d.op('Unsqueeze', [d.op('Cast', [mask], { to: 1 }), i64(d, 'axes13', [1, 3])]); // [B, 1, P+T, 1]
  const ctx = d.op('ReduceSum', [d.op('Mul', [presentV, m]), i64(d, 'axis2', [2])], { keepdims: 0 }); // [B, 1, H]
  const p = d.op('Unsqueeze', [d.op('Cast', [pos], { to: 1 }), i64(d, 'axis2b', [2])]); // [B, T, 1]
  const h = d.op('Add', [ctx, d.op('Mul', [p, f32(d, 'u', [hidden], w.u)])]); // [B, T, H]
  const et = new Float32Array(hidden * vocab);
  for (let i = 0; i < vocab; i++) for (let j = 0; j < hidden; j++) et[j * vocab + i] = w.E[i * hidden + j];
  d.output('logits', d.op('MatMul', [h, f32(d, 'Et', [hidden, vocab], et)]), 'float32', ['batch_size', 'sequence_length', vocab]);
  d.output('present.0.value', presentV, 'float32', ['batch_size', 1, 'total_sequence_length', hidden]);
  save(d, join(dir, 'onnx', `decoder_model_merged${suffix}.onnx`));
  return w;
}
