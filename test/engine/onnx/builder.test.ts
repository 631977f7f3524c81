// The graph builder: external data layout (aligned offsets, small protobuf), value infos with
// symbolic dims, and fp16 rounding.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import ort from 'onnxruntime-node';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { GraphBuilder, halfBitsToFloat, onnx, toHalfBits } from '../../../daemon/engine/onnx/builder.js';
import { ExternalDataWriter } from '../../../daemon/engine/onnx/external-data.js';

describe('GraphBuilder', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pg-onnx-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('streams big initializers into an aligned external data file and runs on onnxruntime', async () => {
    const data = new ExternalDataWriter(join(dir, 'g.onnx.data'));
    const g = new GraphBuilder({ name: 'g', externalData: data, externalThreshold: 512 });
    const x = g.input('x', 'float32', ['batch', 300]);
    const small = g.initializer('small', 'float32', [3], new Float32Array([1, 2, 3]));
    const W = new Float32Array(300 * 200).map((_, i) => ((i % 13) - 6) / 8);
    // Written in two chunks: never whole in memory on the writer's side.
    const w = g.streamedInitializer('W', 'float32', [300, 200], (write) => {
      write(W.subarray(0, 30000));
      write(W.subarray(30000));
    });
    const b = g.initializer('b', 'float32', [200], new Float32Array(200).fill(0.5));
    const y = g.op('Add', [g.op('MatMul', [x, w]), b]);
    g.output('y', y, 'float32', ['batch', 200]);
    g.output('s', g.op('Identity', [small]), 'float32', [3]);
    data.close();
    g.save(join(dir, 'g.onnx'));

    assert.ok(statSync(join(dir, 'g.onnx')).size < 2048, 'protobuf holds no big tensor');
    const model = onnx.ModelProto.decode(readFileSync(join(dir, 'g.onnx')));
    const inits = Object.fromEntries(model.graph!.initializer!.map((t) => [t.name, t]));
    assert.equal(inits.small.dataLocation, onnx.TensorProto.DataLocation.DEFAULT);
    const ext = Object.fromEntries(inits.W.externalData!.map((e: OnnxTypes.IStringStringEntryProto) => [e.key, e.value]));
    assert.equal(inits.W.dataLocation, onnx.TensorProto.DataLocation.EXTERNAL);
    assert.equal(ext.location, 'g.onnx.data');
    assert.equal(Number(ext.offset) % 4096, 0);
    assert.equal(Number(ext.length), W.byteLength);
    const bExt = Object.fromEntries(inits.b.externalData!.map((e: OnnxTypes.IStringStringEntryProto) => [e.key, e.value]));
    assert.equal(Number(bExt.offset) % 64, 0);
    const dims = model.graph!.input![0].type!.tensorType!.shape!.dim!;
    assert.equal(dims[0].dimParam, 'batch');
    assert.equal(Number(dims[1].dimValue), 300);

    const s = await ort.InferenceSession.create(join(dir, 'g.onnx'), { executionProviders: ['cpu'] });
    const xs = new Float32Array(600).map((_, i) => (i % 5) - 2);
    const out = await s.run({ x: new ort.Tensor('float32', xs, [2, 300]) });
    const got = out.y.data as Float32Array;
    for (const [r, c] of [
      [0, 0],
      [1, 199],
      [1, 57],
    ]) {
      let want = 0.5;
      for (let k = 0; k < 300; k++) want += xs[r * 300 + k] * W[k * 200 + c];
      assert.ok(Math.abs(got[r * 200 + c] - want) < 1e-3, `y[${r},${c}]`);
    }
    assert.deepEqual(Array.from(out.s.data as Float32Array), [1, 2, 3]);
    await s.release();
  });

  it('rejects duplicate names and mis-sized data', () => {
    const g = new GraphBuilder({ name: 'bad' });
    g.input('x', 'float32', [1]);
    assert.throws(() => g.input('x', 'float32', [1]), /duplicate/);
    assert.throws(() => g.initializer('w', 'float32', [2, 2], new Float32Array(3)), /bytes for dims/);
  });

  it('rounds to fp16 like IEEE round-to-nearest-even', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [65504, 0x7bff],
      [65520, 0x7c00],
      [-2, 0xc000],
      [0.1, 0x2e66],
      [Math.sqrt(2048), 0x51a8],
      [2 ** -24, 0x0001],
      [2 ** -26, 0x0000],
      [1 + 2 ** -11, 0x3c00],
      [1 + 3 * 2 ** -11, 0x3c02],
    ];
    for (const [v, bits] of cases) assert.equal(toHalfBits(v), bits, `${v}`);
    assert.equal(halfBitsToFloat(0x51a8), 45.25);
  });
});
