// Image -> model input, as transformers' SiglipImageProcessor (torchvision backend) computes it.
import { EngineError } from '../errors.js';
import type { RgbImage } from './load.js';
import { resizeBicubicAntialias } from './resize.js';

export interface PreprocessOptions {
  /** side of the square model input */
  size: number;
  mean: readonly number[];
  std: readonly number[];
  /** rescale factor applied to 8-bit values (1/255) */
  rescale: number;
}

/**
 * Resizes to size x size (antialiased bicubic, bit-exact with the reference), then rescales and
 * normalises to a float32 CHW array [3, size, size].
 */
export function preprocess(image: RgbImage, opts: PreprocessOptions): Float32Array {
  const { size } = opts;
  if (!Number.isInteger(size) || size <= 0) throw new EngineError('invalid-params', `image size must be a positive integer, got ${size}`);
  if (opts.mean.length !== 3 || opts.std.length !== 3) throw new EngineError('invalid-params', 'image mean and std need 3 values');
  const { width, height } = image;
  if (image.rgb.length !== width * height * 3) {
    throw new EngineError('invalid-params', `image data has ${image.rgb.length} bytes, expected ${width}x${height}x3`);
  }
  const rgb = width === size && height === size ? image.rgb : resizeBicubicAntialias(image.rgb, width, height, size, size, 3);
  // The reference fuses rescale into normalisation: (x - mean/rescale) / (std/rescale), with the
  // fused constants computed in float32, then one float32 subtraction and division per value.
  const f = Math.fround;
  const inv = f(1 / opts.rescale);
  const mean = opts.mean.map((m) => f(f(m) * inv));
  const std = opts.std.map((s) => f(f(s) * inv));
  const plane = size * size;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    // A float32 table per channel: the 256 possible results of (x - mean) / std, each rounded
    // once to float32 (double arithmetic on float32 inputs rounds the same as float32 division).
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) lut[v] = (f(v - mean[c]) / std[c]);
    const base = c * plane;
    for (let i = 0; i < plane; i++) out[base + i] = lut[rgb[i * 3 + c]];
  }
  return out;
}
