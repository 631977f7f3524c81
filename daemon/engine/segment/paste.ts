// Puts a decoded 64x64 mask into the image the way big_vision's PaliGemma segmentation evaluator
// does (big_vision/evaluators/proj/paligemma/transfers/segmentation.py), so that our masks are the
// ones the model was scored with:
//   box  = loc tokens / 1023 * (h, w, h, w), each truncated to an int   (NOT / 1024 as for detection)
//   mask = PIL.Image.fromarray(m64).resize([x1 - x0, y1 - y0], BILINEAR) > 0
import type { Box, Mask } from '../../protocol.js';
import { type Coefficients, precomputeCoefficients, triangle } from '../image/coefficients.js';

export const MASK_SIZE = 64;

/** Pixel box of a segment: `loc` = the four loc token values `[y0, x0, y1, x1]`, each 0..1023. */
export function segmentBox(loc: readonly number[], width: number, height: number): Box | null {
  if (loc.length !== 4 || loc.some((v) => !Number.isInteger(v) || v < 0 || v > 1023)) return null;
  const [ty0, tx0, ty1, tx1] = loc;
  // Same float64 operations as numpy: (t / 1023) * size, then int() truncation.
  const y0 = Math.trunc((ty0 / 1023) * height);
  const x0 = Math.trunc((tx0 / 1023) * width);
  const y1 = Math.trunc((ty1 / 1023) * height);
  const x1 = Math.trunc((tx1 / 1023) * width);
  // The evaluator counts these as invalid predictions; so do we.
  if (x1 <= x0 || y1 <= y0) return null;
  return { x0, y0, x1, y1 };
}

/**
 * Resizes a row-major float32 image like Pillow's `Image.resize(..., BILINEAR)` on mode 'F':
 * separable triangle filter widened by the scale when shrinking (antialiasing), coefficients
 * normalised per output pixel, horizontal pass first, float32 between and after the passes.
 */
export function resizeBilinearPil(src: Float32Array, srcW: number, srcH: number, dstW: number, dstH: number): Float32Array {
  if (src.length !== srcW * srcH) throw new RangeError(`image is ${src.length} values, expected ${srcW}x${srcH}`);
  let rows = src;
  let rowsW = srcW;
  if (dstW !== srcW) {
    const h = precomputeCoefficients(srcW, dstW, triangle, 1);
    rows = new Float32Array(dstW * srcH);
    for (let y = 0; y < srcH; y++) resampleLine(src, y * srcW, 1, h, rows, y * dstW, 1);
    rowsW = dstW;
  }
  if (dstH === srcH) return rows === src ? src.slice() : rows;
  const v = precomputeCoefficients(srcH, dstH, triangle, 1);
  const out = new Float32Array(rowsW * dstH);
  for (let x = 0; x < rowsW; x++) resampleLine(rows, x, rowsW, v, out, x, rowsW);
  return out;
}

function resampleLine(src: Float32Array, srcStart: number, srcStride: number, c: Coefficients, dst: Float32Array, dstStart: number, dstStride: number): void {
  const outSize = c.start.length;
  for (let xx = 0; xx < outSize; xx++) {
    const xmin = c.start[xx];
    const n = c.count[xx];
    let acc = 0; // double, as in Pillow's 32bpc path
    for (let x = 0; x < n; x++) acc += src[srcStart + (xmin + x) * srcStride] * c.weights[xx * c.ksize + x];
    dst[dstStart + xx * dstStride] = acc; // stored as float32
  }
}

/** Run-length encodes a row-major on/off grid: alternating runs, starting with a (maybe empty) run of off. */
export function encodeRle(on: ArrayLike<boolean | number>): number[] {
  const rle: number[] = [];
  let current = false;
  let run = 0;
  for (let i = 0; i < on.length; i++) {
    const v = Boolean(on[i]);
    if (v === current) {
      run++;
    } else {
      rle.push(run);
      current = v;
      run = 1;
    }
  }
  rle.push(run);
  return rle;
}

/** Expands a `Mask` back into one 0/1 byte per pixel of its box. */
export function decodeRle(mask: Mask): Uint8Array {
  const out = new Uint8Array(mask.width * mask.height);
  let pos = 0;
  let value = 0;
  for (const run of mask.rle) {
    if (pos + run > out.length) throw new RangeError('RLE runs exceed the mask size');
    if (value) out.fill(1, pos, pos + run);
    pos += run;
    value ^= 1;
  }
  if (pos !== out.length) throw new RangeError(`RLE covers ${pos} pixels, mask has ${out.length}`);
  return out;
}

export interface PastedMask {
  box: Box;
  mask: Mask;
}

/**
 * The mask of one segment in image pixels: `mask64` is the VAE output (64x64, about [-1, 1]),
 * `loc` its four loc token values. Returns null when the box is empty after truncation
 * (big_vision scores those as invalid).
 */
export function pasteMask(mask64: Float32Array, loc: readonly number[], width: number, height: number): PastedMask | null {
  if (mask64.length !== MASK_SIZE * MASK_SIZE) {
    throw new RangeError(`mask has ${mask64.length} values, expected ${MASK_SIZE}x${MASK_SIZE}`);
  }
  const box = segmentBox(loc, width, height);
  if (!box) return null;
  const w = box.x1 - box.x0;
  const h = box.y1 - box.y0;
  const resized = resizeBilinearPil(mask64, MASK_SIZE, MASK_SIZE, w, h);
  const on = new Uint8Array(w * h);
  for (let i = 0; i < on.length; i++) on[i] = resized[i] > 0 ? 1 : 0;
  return { box, mask: { width: w, height: h, rle: encodeRle(on) } };
}
