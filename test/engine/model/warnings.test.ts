// The model status warnings of a converted model per execution provider (runtime.ts modelWarnings):
// fp16 matmuls on WebGPU lose precision, int8 layers off the CPU lose their kernels.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { modelWarnings } from '../../../daemon/engine/model/runtime.js';

const int4 = { dtype: 'int4', converter: { weights: { vision: 'fp32', decoder: 'int4' } } } as const;
const int4v8 = { dtype: 'int4', converter: { weights: { vision: 'int8', decoder: 'int4' } } } as const;
const int8 = { dtype: 'int8', converter: { weights: { vision: 'int8', decoder: 'int8' } } } as const;
const fp16 = { dtype: 'fp16', converter: { weights: { vision: 'fp16', decoder: 'fp16' } } } as const;

test('int8 layers (decoder or vision tower) warn on GPU providers only', () => {
  for (const m of [int8, int4v8]) {
    assert.deepEqual(modelWarnings(m, 'cpu'), []);
    for (const ep of ['cuda', 'webgpu'] as const) {
      const w = modelWarnings(m, ep);
      assert.equal(w.length, 1, `${m.dtype}/${m.converter.weights.vision} on ${ep}`);
      assert.match(w[0], /int8 layers, a CPU format/);
    }
  }
  assert.deepEqual(modelWarnings(int4, 'cuda'), []);
});

test('fp16 matmuls warn on WebGPU only', () => {
  assert.match(modelWarnings(fp16, 'webgpu').join(), /accumulates in fp16/);
  assert.deepEqual(modelWarnings(fp16, 'cuda'), []);
  assert.deepEqual(modelWarnings(int4, 'webgpu'), []);
});
