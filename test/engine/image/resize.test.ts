import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bicubic, precomputeCoefficients } from '../../../daemon/engine/image/coefficients.js';
import { resizeBicubicAntialias, resizeToPlanar } from '../../../daemon/engine/image/resize.js';

// The WebAssembly kernels against a plain scalar transcription of the same fixed-point algorithm
// (torchvision's uint8 antialiased kernel; preprocess.test.ts checks both against torchvision's
// own output). These sizes reach what the fixtures do not: odd strides (SIMD groups running past
// a row), source images resized in several chunks, upscaling, one-pixel axes, huge images.

function scalarPass(src: Uint8Array, lines: number, inSize: number, outSize: number, horizontal: boolean, other: number): Uint8Array {
  const c = precomputeCoefficients(inSize, outSize, bicubic, 2);
  let wtMax = 0;
  for (const w of c.weights) wtMax = Math.max(wtMax, w);
  let precision = 0;
  while (precision < 22 && Math.trunc(0.5 + wtMax * 2 ** (precision + 1)) < 1 << 15) precision++;
  const q = Array.from(c.weights, (w) => (w * 2 ** precision < 0 ? Math.trunc(-0.5 + w * 2 ** precision) : Math.trunc(0.5 + w * 2 ** precision)));
  const out = new Uint8Array(lines * outSize * 3);
  const at = (line: number, i: number, ch: number) => (horizontal ? (line * inSize + i) * 3 + ch : (i * other + line) * 3 + ch);
  const to = (line: number, o: number, ch: number) => (horizontal ? (line * outSize + o) * 3 + ch : (o * other + line) * 3 + ch);
  for (let line = 0; line < lines; line++) {
    for (let o = 0; o < outSize; o++) {
      for (let ch = 0; ch < 3; ch++) {
        let acc = precision > 0 ? 2 ** (precision - 1) : 0;
        for (let j = 0; j < c.count[o]; j++) acc += src[at(line, c.start[o] + j, ch)] * q[o * c.ksize + j];
        out[to(line, o, ch)] = Math.min(255, Math.max(0, acc >> precision));
      }
    }
  }
  return out;
}

function scalarResize(src: Uint8Array, w: number, h: number, ow: number, oh: number): Uint8Array {
  const mid = ow === w ? src : scalarPass(src, h, w, ow, true, 0);
  return oh === h ? mid.slice() : scalarPass(mid, ow, h, oh, false, ow);
}

function noise(w: number, h: number, seed: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  let s = seed >>> 0;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

test('the WebAssembly resize equals the scalar algorithm on odd sizes, upscales and thin images', () => {
  const cases: Array<[number, number, number, number]> = [
    [640, 480, 224, 224],
    [301, 187, 224, 224],
    [57, 33, 224, 224],
    [1, 1, 5, 3],
    [5, 1, 1, 7],
    [223, 225, 224, 224],
    [97, 31, 13, 7],
    [400, 300, 448, 448],
    [17, 900, 11, 37],
  ];
  cases.forEach(([w, h, ow, oh], i) => {
    const src = noise(w, h, i + 1);
    assert.deepEqual(resizeBicubicAntialias(src, w, h, ow, oh), scalarResize(src, w, h, ow, oh), `${w}x${h} -> ${ow}x${oh}`);
  });
});

test('a source larger than one chunk (rows resized in pieces) equals the scalar algorithm', () => {
  const [w, h] = [1700, 1100]; // 5.6 MB: two chunks of 4 MiB rows, the second partial
  const src = noise(w, h, 99);
  assert.deepEqual(resizeBicubicAntialias(src, w, h, 224, 224), scalarResize(src, w, h, 224, 224));
});

test('a 24-megapixel image resizes (several chunks, 22 MB of kernel memory), and small ones after it', () => {
  const [w, h] = [4000, 6000]; // 72 MB of pixels
  const flat = new Uint8Array(w * h * 3).fill(201);
  assert.ok(resizeBicubicAntialias(flat, w, h, 896, 896).every((v) => v === 201));
  const src = noise(64, 48, 7);
  assert.deepEqual(resizeBicubicAntialias(src, 64, 48, 32, 32), scalarResize(src, 64, 48, 32, 32));
});

test('resizeToPlanar maps through the table into planar float32 and checks its buffers', () => {
  const src = noise(30, 20, 3);
  const table = new Float32Array(768).map((_, i) => (i >> 8) * 1000 + (i & 255));
  const out = new Float32Array(3 * 16 * 16);
  resizeToPlanar(src, 30, 20, 16, table, out);
  const rgb = scalarResize(src, 30, 20, 16, 16);
  for (let p = 0; p < 256; p++) for (let c = 0; c < 3; c++) assert.equal(out[c * 256 + p], c * 1000 + rgb[p * 3 + c]);
  assert.throws(() => resizeToPlanar(src, 30, 20, 16, table, new Float32Array(10)), RangeError);
  assert.throws(() => resizeToPlanar(src, 30, 20, 16, new Float32Array(3), out), RangeError);
  assert.throws(() => resizeBicubicAntialias(src, 31, 20, 16, 16), RangeError);
});
