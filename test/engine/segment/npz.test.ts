import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { zipSync } from 'fflate';
import { parseNpy, parseNpz, toFloat32 } from '../../../daemon/engine/segment/npz.js';
import { readVaeNpz, vaeWeightsFromArrays, VaeFormatError } from '../../../daemon/engine/segment/vae.js';
import { fixturePath, vaeGolden } from './fixtures.js';

function npy(descr: string, shape: number[], data: Uint8Array, version = 1, fortran = false): Uint8Array {
  const dict = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const prefix = version === 1 ? 10 : 12;
  const padded = dict.padEnd(Math.ceil((prefix + dict.length + 1) / 64) * 64 - prefix - 1) + '\n';
  const head = new Uint8Array(prefix);
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const view = new DataView(head.buffer);
  if (version === 1) view.setUint16(8, padded.length, true);
  else view.setUint32(8, padded.length, true);
  return Buffer.concat([head, Buffer.from(padded, 'latin1'), data]);
}

test('parseNpy reads v1 and v2 headers, float16/float64 widen to float32', () => {
  const f32 = new Float32Array([1.5, -2, 3.25, 0]);
  const a = parseNpy(npy('<f4', [2, 2], new Uint8Array(f32.buffer)));
  assert.deepEqual(a.shape, [2, 2]);
  assert.deepEqual(Array.from(toFloat32(a)), [1.5, -2, 3.25, 0]);
  const f64 = new Float64Array([0.1, 7]);
  const b = parseNpy(npy('<f8', [2], new Uint8Array(f64.buffer), 2));
  assert.deepEqual(Array.from(toFloat32(b)), [Math.fround(0.1), 7]);
  const half = new Uint16Array([0x3c00, 0xc000, 0x3555]); // 1, -2, ~0.333
  const c = parseNpy(npy('<f2', [3], new Uint8Array(half.buffer)));
  const v = toFloat32(c);
  assert.deepEqual([v[0], v[1]], [1, -2]);
  assert.ok(Math.abs(v[2] - 1 / 3) < 1e-3);
  const scalar = parseNpy(npy('<f4', [], new Uint8Array(new Float32Array([4]).buffer)));
  assert.deepEqual(scalar.shape, []);
});

test('parseNpy refuses what it cannot read faithfully', () => {
  const four = new Uint8Array(16);
  assert.throws(() => parseNpy(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])), /bad magic/);
  assert.throws(() => parseNpy(npy('>f4', [4], four)), /unsupported dtype '>f4'/);
  assert.throws(() => parseNpy(npy('<f4', [2, 2], four, 1, true)), /Fortran/);
  assert.throws(() => parseNpy(npy('<f4', [5], four)), /expected 20 data bytes/);
  assert.throws(() => toFloat32(parseNpy(npy('<i4', [4], four))), /expected a float array/);
});

test("parseNpz reads the fixture archive with big_vision's key names and shapes", () => {
  const arrays = parseNpz(readFileSync(fixturePath('vae-tiny.npz')));
  const golden = vaeGolden();
  assert.deepEqual([...arrays.keys()].sort(), Object.keys(golden.npz_keys).sort());
  for (const [k, shape] of Object.entries(golden.npz_keys)) assert.deepEqual(arrays.get(k)?.shape, shape, k);
  const w = readVaeNpz(fixturePath('vae-tiny.npz'));
  assert.deepEqual(w.codebook.dims, [128, golden.embedding_dim]);
  assert.deepEqual(
    w.upsample.map((u) => u.weight.dims[1]),
    [128, 64, 32, 16],
  );
});

test('a compressed .npz reads the same as a stored one', () => {
  const stored = readFileSync(fixturePath('vae-tiny.npz'));
  const a = parseNpz(stored);
  const files: Record<string, Uint8Array> = {};
  const raw = parseNpz(stored);
  for (const [k, arr] of raw) files[`${k}.npy`] = npy('<f4', arr.shape, arr.bytes);
  const b = parseNpz(zipSync(files, { level: 6 }));
  for (const [k, arr] of a) assert.deepEqual(b.get(k)?.bytes, arr.bytes, k);
});

test('VAE weights with a missing key or a wrong shape get a specific error', () => {
  const arrays = parseNpz(readFileSync(fixturePath('vae-tiny.npz')));
  const missing = new Map(arrays);
  missing.delete('decoder.8.weight');
  assert.throws(
    () => vaeWeightsFromArrays(missing, 'x.npz'),
    (e) => e instanceof VaeFormatError && /missing array 'decoder.8.weight'/.test(e.message),
  );
  const wrong = new Map(arrays);
  wrong.set('decoder.6.weight', parseNpy(npy('<f4', [64, 128, 4, 4], new Uint8Array(64 * 128 * 16 * 4))));
  assert.throws(() => vaeWeightsFromArrays(wrong, 'x.npz'), /'decoder.6.weight' has shape \[64, 128, 4, 4\], expected \[128, 64, 4, 4\]/);
  assert.throws(() => readVaeNpz(fixturePath('does-not-exist.npz')), /cannot read/);
});
