// Antialiased bicubic resize of 8-bit RGB and normalisation, bit-exact with the reference
// preprocessing, run by WebAssembly SIMD kernels (assembly/pixels.ts).
//
// transformers 5.x's SiglipImageProcessor is a torchvision backend: it resizes the uint8 tensor
// with `tvF.resize(..., BICUBIC, antialias=True)`, which on CPU runs PyTorch's native uint8
// antialiased kernel. That kernel is Pillow-SIMD's algorithm: separable passes (horizontal, then
// vertical, each rounded and clamped back to uint8), Keys' cubic with a = -0.5 stretched by the
// downscale factor, weights normalised in double and then quantised to int16 with the largest
// precision that keeps the biggest weight below 2^15. Pillow itself differs only in quantising the
// weights to 22 fractional bits, which moves a few pixels by 1.

import { bicubic, precomputeCoefficients } from './coefficients.js';
import { pixelsWasm } from './pixelsWasm.generated.js';

interface AxisWeights {
  /** first input index per output index */
  start: Int32Array;
  /** number of taps per output index */
  count: Int32Array;
  /** taps per output index, `maxTaps` apart, quantised to `precision` fractional bits */
  weights: Int32Array;
  maxTaps: number;
  precision: number;
}

/** Weights of recent sizes: photos of one camera share them, and making them costs ~0.5 ms. */
const recent = new Map<string, unknown>();
const RECENT = 16;

function remembered<T>(key: string, make: () => T): T {
  let value = recent.get(key) as T | undefined;
  if (value !== undefined) {
    recent.delete(key); // most recent last
  } else {
    value = make();
    if (recent.size >= RECENT) recent.delete(recent.keys().next().value!);
  }
  recent.set(key, value);
  return value;
}

const horizontalWeights = (inSize: number, outSize: number) => remembered(`h${inSize}>${outSize}`, () => pairedWeights(quantisedWeights(inSize, outSize)));
const verticalWeights = (inSize: number, outSize: number) => remembered(`v${inSize}>${outSize}`, () => quantisedWeights(inSize, outSize));

function quantisedWeights(inSize: number, outSize: number): AxisWeights {
  const c = precomputeCoefficients(inSize, outSize, bicubic, 2);
  let wtMax = 0;
  for (const w of c.weights) wtMax = Math.max(wtMax, w);
  let precision = 0;
  for (; precision < 22; precision++) {
    if (Math.trunc(0.5 + wtMax * 2 ** (precision + 1)) >= 1 << 15) break;
  }
  const weights = new Int32Array(c.weights.length);
  const one = 2 ** precision;
  for (let k = 0; k < c.weights.length; k++) {
    const v = c.weights[k] * one;
    weights[k] = v < 0 ? Math.trunc(-0.5 + v) : Math.trunc(0.5 + v);
  }
  return { start: c.start, count: c.count, weights, maxTaps: c.ksize, precision };
}

/** The horizontal kernel's layout: taps two by two as int16 pairs packed in int32 words. */
function pairedWeights(a: AxisWeights) {
  const maxPairs = (a.maxTaps + 1) >> 1;
  const outSize = a.start.length;
  const pairs = new Int32Array(outSize);
  const weights = new Int32Array(outSize * maxPairs);
  for (let o = 0; o < outSize; o++) {
    pairs[o] = (a.count[o] + 1) >> 1;
    for (let j = 0; j < a.count[o]; j += 2) {
      const first = a.weights[o * a.maxTaps + j];
      const second = j + 1 < a.count[o] ? a.weights[o * a.maxTaps + j + 1] : 0;
      weights[o * maxPairs + (j >> 1)] = (first & 0xffff) | (second << 16);
    }
  }
  return { start: a.start, pairs, weights, maxPairs, precision: a.precision };
}

interface KernelExports {
  memory: WebAssembly.Memory;
  horizontal3(src: number, width: number, rows: number, dst: number, outWidth: number, start: number, pairs: number, weights: number, maxPairs: number, precision: number): void;
  vertical(src: number, stride: number, dst: number, outHeight: number, start: number, count: number, weights: number, maxTaps: number, precision: number): void;
  normalize(src: number, pixels: number, table: number, dst: number): void;
}

/** Source rows are copied in and resized horizontally in pieces of about this size. */
const CHUNK_BYTES = 4 << 20;
/** An instance whose memory grew past this (a huge image) is dropped after the call, not kept. */
const KEEP_BYTES = 64 << 20;
/** Kernels read and write up to 15 bytes past a buffer's end (16-byte groups; 8-byte loads of a tap pair). */
const PAD = 16;

interface Kernels extends KernelExports {
  /** where the module's own memory ends (the arena starts there on every call) */
  base: number;
}

let module: WebAssembly.Module | undefined;
let kept: Kernels | undefined;

function instantiate(): Kernels {
  module ??= new WebAssembly.Module(Buffer.from(pixelsWasm, 'base64'));
  const exports = new WebAssembly.Instance(module).exports as unknown as KernelExports;
  return { ...exports, base: exports.memory.buffer.byteLength };
}

/** Bump allocation in the instance's memory, above what the module itself uses. */
class Arena {
  private end: number;
  constructor(private readonly k: Kernels) {
    this.end = k.base;
  }
  take(bytes: number): number {
    const at = this.end;
    this.end += (bytes + PAD + 63) & ~63;
    const grow = this.end - this.k.memory.buffer.byteLength;
    if (grow > 0) this.k.memory.grow(Math.ceil(grow / 65536));
    return at;
  }
  put(values: Int32Array | Float32Array): number {
    const at = this.take(values.byteLength);
    new Uint8Array(this.k.memory.buffer, at, values.byteLength).set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    return at;
  }
  bytes(at: number, length: number): Uint8Array {
    return new Uint8Array(this.k.memory.buffer, at, length);
  }
}

function withKernels<T>(body: (k: Kernels, arena: Arena) => T): T {
  const k = kept ?? instantiate();
  kept = undefined; // not shared while in use (a throw inside leaves it dropped)
  const result = body(k, new Arena(k));
  if (k.memory.buffer.byteLength <= KEEP_BYTES) kept = k;
  return result;
}

/** Resizes into the arena; returns where the outWidth x outHeight x 3 bytes are. */
function resizeIn(k: KernelExports, arena: Arena, src: Uint8Array, width: number, height: number, outWidth: number, outHeight: number): number {
  if (src.length !== width * height * 3) throw new RangeError(`resize: ${src.length} bytes for ${width}x${height} RGB`);
  const stride = outWidth * 3;
  const mid = arena.take(stride * height);
  if (outWidth !== width) {
    const h = horizontalWeights(width, outWidth);
    const start = arena.put(h.start);
    const pairs = arena.put(h.pairs);
    const weights = arena.put(h.weights);
    const rowBytes = width * 3;
    const rows = Math.max(1, Math.floor(CHUNK_BYTES / rowBytes));
    const chunk = arena.take(Math.min(rows, height) * rowBytes);
    for (let y = 0; y < height; y += rows) {
      const n = Math.min(rows, height - y);
      arena.bytes(chunk, n * rowBytes).set(src.subarray(y * rowBytes, (y + n) * rowBytes));
      k.horizontal3(chunk, width, n, mid + y * stride, outWidth, start, pairs, weights, h.maxPairs, h.precision);
    }
  } else {
    arena.bytes(mid, src.length).set(src);
  }
  if (outHeight === height) return mid;
  const v = verticalWeights(height, outHeight);
  const start = arena.put(v.start);
  const count = arena.put(v.count);
  const weights = arena.put(v.weights);
  const out = arena.take(stride * outHeight);
  k.vertical(mid, stride, out, outHeight, start, count, weights, v.maxTaps, v.precision);
  return out;
}

/** Resizes interleaved 8-bit RGB with antialiased bicubic. */
export function resizeBicubicAntialias(src: Uint8Array, width: number, height: number, outWidth: number, outHeight: number): Uint8Array {
  return withKernels((k, arena) => {
    const at = resizeIn(k, arena, src, width, height, outWidth, outHeight);
    return arena.bytes(at, outWidth * outHeight * 3).slice();
  });
}

/**
 * Resizes interleaved 8-bit RGB to size x size and maps each value through `table` (3 x 256
 * float32, one row per channel) into planar float32 [3, size, size], written to `out`.
 */
export function resizeToPlanar(src: Uint8Array, width: number, height: number, size: number, table: Float32Array, out: Float32Array): void {
  if (table.length !== 3 * 256) throw new RangeError('resizeToPlanar: the table needs 3 x 256 values');
  if (out.length !== 3 * size * size) throw new RangeError(`resizeToPlanar: output has ${out.length} values, expected 3x${size}x${size}`);
  withKernels((k, arena) => {
    const rgb = resizeIn(k, arena, src, width, height, size, size);
    const lut = arena.put(table);
    const planar = arena.take(out.byteLength);
    k.normalize(rgb, size * size, lut, planar);
    out.set(new Float32Array(k.memory.buffer, planar, out.length));
  });
}
