// Per-output-pixel filter taps for separable antialiased resizing: Pillow's precompute_coeffs
// (libImaging/Resample.c), which PyTorch's antialiased uint8 kernel copies. Shared by the
// preprocessing resize (bicubic, then quantised) and the segmentation mask paste (bilinear, float).

export type Filter = (x: number) => number;

/** Keys' cubic convolution kernel with a = -0.5 (PIL's and PyTorch's antialiased bicubic); support 2. */
export function bicubic(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0;
}

/** The triangle (bilinear) filter; support 1. */
export function triangle(x: number): number {
  const a = Math.abs(x);
  return a < 1 ? 1 - a : 0;
}

export interface Coefficients {
  /** Taps reserved per output pixel in `weights`. */
  ksize: number;
  /** First input index per output pixel. */
  start: Int32Array;
  /** Number of taps per output pixel. */
  count: Int32Array;
  /** Normalised taps, `ksize` apart. */
  weights: Float64Array;
}

export function precomputeCoefficients(inSize: number, outSize: number, filter: Filter, filterSupport: number): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterSupport * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * ksize);
  const ss = 1 / filterScale;
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    // Truncation toward zero, as the C code's int casts (center - support + 0.5 may be negative).
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const n = Math.min(Math.trunc(center + support + 0.5), inSize) - lo;
    let total = 0;
    for (let j = 0; j < n; j++) {
      const w = filter((j + lo - center + 0.5) * ss);
      weights[i * ksize + j] = w;
      total += w;
    }
    if (total !== 0) for (let j = 0; j < n; j++) weights[i * ksize + j] /= total;
    start[i] = lo;
    count[i] = n;
  }
  return { ksize, start, count, weights };
}
