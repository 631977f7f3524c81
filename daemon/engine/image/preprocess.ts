// Image -> model input, as transformers' SiglipImageProcessor (torchvision backend) computes it.
import { EngineError } from '../errors.js';
import type { RgbImage } from './load.js';
import { resizeToPlanar } from './resize.js';

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
 * normalises to a float32 CHW array [3, size, size], written to `out` when given.
 */
export function preprocess(image: RgbImage, opts: PreprocessOptions, out?: Float32Array): Float32Array {
  const { size } = opts;
  if (!Number.isInteger(size) || size <= 0) throw new EngineError('invalid-params', `image size must be a positive integer, got ${size}`);
  if (opts.mean.length !== 3 || opts.std.length !== 3) throw new EngineError('invalid-params', 'image mean and std need 3 values');
  const { width, height } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new EngineError('invalid-params', `image size must be positive integers, got ${width}x${height}`);
  }
  if (image.rgb.length !== width * height * 3) {
    throw new EngineError('invalid-params', `image data has ${image.rgb.length} bytes, expected ${width}x${height}x3`);
  }
  const target = out ?? new Float32Array(3 * size * size);
  if (target.length !== 3 * size * size) throw new EngineError('invalid-params', `preprocess output holds ${target.length} values, expected 3x${size}x${size}`);
  resizeToPlanar(image.rgb, width, height, size, normalisationTable(opts), target);
  return target;
}

/**
 * The 256 possible results of (x - mean) / std per channel, each rounded once to float32. The
 * reference fuses rescale into normalisation: (x - mean/rescale) / (std/rescale), with the fused
 * constants computed in float32, then one float32 subtraction and division per value (double
 * arithmetic on float32 inputs rounds the same as float32 division).
 */
function normalisationTable(opts: PreprocessOptions): Float32Array {
  const f = Math.fround;
  const inv = f(1 / opts.rescale);
  const table = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    const mean = f(f(opts.mean[c]) * inv);
    const std = f(f(opts.std[c]) * inv);
    for (let v = 0; v < 256; v++) table[c * 256 + v] = f(v - mean) / std;
  }
  return table;
}
