// The int4 and 8-bit packings of convert/quantize.ts against onnxruntime's own kernels (CPU EP):
// MatMulNBits and GatherBlockQuantized must compute with exactly the dequantised weights.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import ort from 'onnxruntime-node';
import { GraphBuilder, MS_DOMAIN } from '../../../daemon/engine/onnx/builder.js';
import { dequantizeInt4Rows, int4Dims, quantizeInt4Rows, quantizeUint8Rows } from '../../../daemon/engine/convert/quantize.js';

function randomMatrix(n: number, seed: number): Float32Array {
  let x = seed;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = (x / 2 ** 32 - 0.5) * (i % 7 === 0 ? 4 : 1);
  }
  return out;
}

describe('int4 layout against onnxruntime', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pg-int4-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  // K = 80 is not a multiple of the block size: the last block is padded.
  for (const [N, K] of [
    [24, 64],
    [10, 80],
  ] as const) {
    it(`MatMulNBits [${N}x${K}] equals x @ dequant(W)^T`, async () => {
      const W = randomMatrix(N * K, N + K);
      const q = quantizeInt4Rows(W, N, K);
      const { kBlocks, blob, zpBytes } = int4Dims(K);
      const g = new GraphBuilder({ name: 'mm' });
      const x = g.input('x', 'float32', [2, K]);
      const B = g.initializer('B', 'uint8', [N, kBlocks, blob], q.packed);
      const S = g.initializer('S', 'float32', [N, kBlocks], q.scales);
      const Z = g.initializer('Z', 'uint8', [N, zpBytes], q.zeroPoints);
      g.output('y', g.op('MatMulNBits', [x, B, S, Z], { K, N, bits: 4, block_size: 32 }, { domain: MS_DOMAIN }), 'float32', [2, N]);
      const path = join(dir, `mm${N}.onnx`);
      g.save(path);
      const xs = randomMatrix(2 * K, 7);
      const s = await ort.InferenceSession.create(path, { executionProviders: ['cpu'] });
      const y = (await s.run({ x: new ort.Tensor('float32', xs, [2, K]) })).y.data as Float32Array;
      const D = dequantizeInt4Rows(q, N, K);
      let worstQuant = 0;
      for (let r = 0; r < 2; r++) {
        for (let n = 0; n < N; n++) {
          let want = 0;
          for (let k = 0; k < K; k++) want += xs[r * K + k] * D[n * K + k];
          assert.ok(Math.abs(y[r * N + n] - want) < 1e-4, `y[${r},${n}] = ${y[r * N + n]}, want ${want}`);
        }
      }
      for (let i = 0; i < W.length; i++) {
        const b = Math.floor((i % K) / 32);
        worstQuant = Math.max(worstQuant, Math.abs(W[i] - D[i]) / q.scales[Math.floor(i / K) * kBlocks + b]);
      }
      assert.ok(worstQuant <= 0.5 + 1e-4, `quantisation error ${worstQuant} steps`);
      await s.release();
    });
  }

  it('GatherBlockQuantized returns the dequantised rows', async () => {
    const [V, H] = [40, 64];
    const W = randomMatrix(V * H, 3);
    const q = quantizeInt4Rows(W, V, H);
    const { kBlocks, blob, zpBytes } = int4Dims(H);
    const g = new GraphBuilder({ name: 'gather' });
    const ids = g.input('ids', 'int64', [1, 3]);
    const data = g.initializer('D', 'uint8', [V, kBlocks * blob], q.packed);
    const S = g.initializer('S', 'float32', [V, kBlocks], q.scales);
    const Z = g.initializer('Z', 'uint8', [V, zpBytes], q.zeroPoints);
    const y = g.op('GatherBlockQuantized', [data, ids, S, Z], { gather_axis: 0, quantize_axis: 1, block_size: 32, bits: 4 }, { domain: MS_DOMAIN });
    g.output('y', y, 'float32', [1, 3, H]);
    const path = join(dir, 'gather.onnx');
    g.save(path);
    const s = await ort.InferenceSession.create(path, { executionProviders: ['cpu'] });
    const rows = [5, 0, 39];
    const out = (await s.run({ ids: new ort.Tensor('int64', BigInt64Array.from(rows.map(BigInt)), [1, 3]) })).y.data as Float32Array;
    const D = dequantizeInt4Rows(q, V, H);
    rows.forEach((r, i) => {
      for (let k = 0; k < H; k++) assert.ok(Math.abs(out[i * H + k] - D[r * H + k]) < 1e-6, `row ${r} col ${k}`);
    });
    await s.release();
  });

  it('8-bit rows (the int8 embedding table): MatMulNBits and GatherBlockQuantized with bits 8 compute with the dequantised weights, within half a step of W', async () => {
    const [V, H] = [24, 64];
    const W = randomMatrix(V * H, 11);
    const q = quantizeUint8Rows(W, V, H);
    const kBlocks = H / 32;
    const D = Float32Array.from(W, (_, i) => {
      const blk = Math.floor(i / H) * kBlocks + Math.floor((i % H) / 32);
      return (q.packed[i] - q.zeroPoints[blk]) * q.scales[blk];
    });
    for (let i = 0; i < W.length; i++) {
      const blk = Math.floor(i / H) * kBlocks + Math.floor((i % H) / 32);
      assert.ok(Math.abs(W[i] - D[i]) <= q.scales[blk] * (0.5 + 1e-4), `W[${i}] off by ${Math.abs(W[i] - D[i]) / q.scales[blk]} steps`);
    }
    const g = new GraphBuilder({ name: 'q8' });
    const ids = g.input('ids', 'int64', [1, 3]);
    const x = g.input('x', 'float32', [2, H]);
    const data = g.initializer('D', 'uint8', [V, H], q.packed);
    const S = g.initializer('S', 'float32', [V, kBlocks], q.scales);
    const Z = g.initializer('Z', 'uint8', [V, kBlocks], q.zeroPoints);
    const rowsOut = g.op('GatherBlockQuantized', [data, ids, S, Z], { gather_axis: 0, quantize_axis: 1, block_size: 32, bits: 8 }, { domain: MS_DOMAIN });
    const B = g.op('Reshape', [data, g.int64s([V, kBlocks, 32])]);
    const y = g.op('MatMulNBits', [x, B, S, Z], { K: H, N: V, bits: 8, block_size: 32 }, { domain: MS_DOMAIN });
    g.output('rows', rowsOut, 'float32', [1, 3, H]);
    g.output('y', y, 'float32', [2, V]);
    const path = join(dir, 'q8.onnx');
    g.save(path);
    const s = await ort.InferenceSession.create(path, { executionProviders: ['cpu'] });
    const picked = [7, 0, 23];
    const xs = randomMatrix(2 * H, 5);
    const out = await s.run({ ids: new ort.Tensor('int64', BigInt64Array.from(picked.map(BigInt)), [1, 3]), x: new ort.Tensor('float32', xs, [2, H]) });
    const got = out.rows.data as Float32Array;
    picked.forEach((r, i) => {
      for (let k = 0; k < H; k++) assert.ok(Math.abs(got[i * H + k] - D[r * H + k]) < 1e-6, `row ${r} col ${k}`);
    });
    const yd = out.y.data as Float32Array;
    for (let r = 0; r < 2; r++) {
      for (let n = 0; n < V; n++) {
        let want = 0;
        for (let k = 0; k < H; k++) want += xs[r * H + k] * D[n * H + k];
        assert.ok(Math.abs(yd[r * V + n] - want) < 1e-4, `y[${r},${n}] = ${yd[r * V + n]}, want ${want}`);
      }
    }
    await s.release();
  });
});
