// Antialiased bicubic resize of 8-bit RGB, bit-exact with the reference preprocessing.
//
// transformers 5.x's SiglipImageProcessor is a torchvision backend: it resizes the uint8 tensor
// with `tvF.resize(..., BICUBIC, antialias=True)`, which on CPU runs PyTorch's native uint8
// antialiased kernel. That kernel is Pillow-SIMD's algorithm: separable passes (horizontal, then
// vertical, each rounded and clamped back to uint8), Keys' cubic with a = -0.5 stretched by the
// downscale factor, weights normalised in double and then quantised to int16 with the largest
// precision that keeps the biggest weight below 2^15. Pillow itself differs only in quantising the
// weights to 22 fractional bits, which moves a few pixels by 1.

import { bicubic, precomputeCoefficients } from './coefficients.js';

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

function axisWeights(inSize: number, outSize: number): AxisWeights {
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

function clamp8(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

function resizeHorizontal(src: Uint8Array, width: number, height: number, outWidth: number, ch: number): Uint8Array {
  const { start, count, weights, maxTaps, precision } = axisWeights(width, outWidth);
  const out = new Uint8Array(outWidth * height * ch);
  const half = precision > 0 ? 2 ** (precision - 1) : 0;
  for (let y = 0; y < height; y++) {
    const row = y * width * ch;
    let o = y * outWidth * ch;
    for (let x = 0; x < outWidth; x++) {
      const w0 = x * maxTaps;
      const n = count[x];
      let s = row + start[x] * ch;
      if (ch === 3) {
        // the common case, with one accumulator per channel (3x fewer passes over the taps)
        let r = half;
        let g = half;
        let b = half;
        for (let j = 0; j < n; j++, s += 3) {
          const k = weights[w0 + j];
          r += src[s] * k;
          g += src[s + 1] * k;
          b += src[s + 2] * k;
        }
        out[o++] = clamp8(r >> precision);
        out[o++] = clamp8(g >> precision);
        out[o++] = clamp8(b >> precision);
      } else {
        for (let c = 0; c < ch; c++) {
          let acc = half;
          for (let j = 0, t = s + c; j < n; j++, t += ch) acc += src[t] * weights[w0 + j];
          out[o++] = clamp8(acc >> precision);
        }
      }
    }
  }
  return out;
}

function resizeVertical(src: Uint8Array, width: number, height: number, outHeight: number, ch: number): Uint8Array {
  const { start, count, weights, maxTaps, precision } = axisWeights(height, outHeight);
  const stride = width * ch;
  const out = new Uint8Array(outHeight * stride);
  const half = precision > 0 ? 2 ** (precision - 1) : 0;
  const acc = new Int32Array(stride);
  for (let y = 0; y < outHeight; y++) {
    // row by row: each tap adds one whole input row (sequential memory access)
    acc.fill(half);
    const w0 = y * maxTaps;
    for (let j = 0; j < count[y]; j++) {
      const k = weights[w0 + j];
      const s0 = (start[y] + j) * stride;
      for (let i = 0; i < stride; i++) acc[i] += src[s0 + i] * k;
    }
    const orow = y * stride;
    for (let i = 0; i < stride; i++) out[orow + i] = clamp8(acc[i] >> precision);
  }
  return out;
}

/** Resizes interleaved 8-bit pixels (`channels` per pixel) with antialiased bicubic. */
export function resizeBicubicAntialias(
  src: Uint8Array,
  width: number,
  height: number,
  outWidth: number,
  outHeight: number,
  channels = 3,
): Uint8Array {
  let data = src;
  if (outWidth !== width) data = resizeHorizontal(data, width, height, outWidth, channels);
  if (outHeight !== height) data = resizeVertical(data, outWidth, height, outHeight, channels);
  return data === src ? src.slice() : data;
}
