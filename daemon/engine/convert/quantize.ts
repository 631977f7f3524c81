// Block-wise 4-bit weight quantisation in the layout of onnxruntime's com.microsoft.MatMulNBits
// (and GatherBlockQuantized, which follows the same uint8 conventions):
// - weights [N, K] (a Linear's [out, in]) are quantised along K in blocks of `blockSize`;
// - B is uint8 [N, kBlocks, blockSize / 2], element 2j in the low nibble, 2j+1 in the high one;
// - scales [N, kBlocks]; zero points uint8 [N, ceil(kBlocks / 2)], packed the same way;
// - dequantised value = (q - zeroPoint) * scale.
// Asymmetric (min/max with zero included, as onnxruntime's own quantizer does by default), so
// that zero stays exactly representable.
export const INT4_BLOCK = 32;

export interface Int4Rows {
  /** uint8 [rows, kBlocks * blockSize / 2] */
  packed: Uint8Array;
  /** float32 [rows, kBlocks] */
  scales: Float32Array;
  /** uint8 [rows, ceil(kBlocks / 2)] */
  zeroPoints: Uint8Array;
}

export function int4Dims(K: number, blockSize = INT4_BLOCK): { kBlocks: number; blob: number; zpBytes: number } {
  const kBlocks = Math.ceil(K / blockSize);
  return { kBlocks, blob: blockSize / 2, zpBytes: Math.ceil(kBlocks / 2) };
}

// One block's scale, zero point and 1 / scale (0 for an all-zero block), written into `out`.
const params = new Float64Array(3);

/**
 * Asymmetric parameters of w[start, end) over the levels 0..`levels`, min and max taken with zero
 * included so that zero stays exactly representable; an all-zero block gets scale 0 and the middle
 * level as its zero point.
 */
function blockParams(w: Float32Array, start: number, end: number, levels: number, out: Float64Array): void {
  let min = 0;
  let max = 0;
  for (let i = start; i < end; i++) {
    const v = w[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const scale = (max - min) / levels;
  out[0] = scale;
  out[1] = scale > 0 ? Math.min(levels, Math.max(0, Math.round(-min / scale))) : (levels + 1) / 2;
  out[2] = scale > 0 ? 1 / scale : 0;
}

/** Quantises `rows` rows of length K (row-major). */
export function quantizeInt4Rows(w: Float32Array, rows: number, K: number, blockSize = INT4_BLOCK): Int4Rows {
  const { kBlocks, blob, zpBytes } = int4Dims(K, blockSize);
  const packed = new Uint8Array(rows * kBlocks * blob);
  const scales = new Float32Array(rows * kBlocks);
  const zeroPoints = new Uint8Array(rows * zpBytes);
  for (let r = 0; r < rows; r++) {
    const row = r * K;
    for (let b = 0; b < kBlocks; b++) {
      const start = b * blockSize;
      const end = Math.min(start + blockSize, K);
      blockParams(w, row + start, row + end, 15, params);
      const scale = params[0];
      const zp = params[1];
      const inv = params[2];
      scales[r * kBlocks + b] = scale;
      zeroPoints[r * zpBytes + (b >> 1)] |= zp << ((b & 1) * 4);
      const out = (r * kBlocks + b) * blob;
      // Hot loop (billions of weights for --random presets): values + zp + 0.5 are >= 0 up to
      // rounding, so truncation is Math.round; clamp by comparison.
      const bias = zp + 0.5;
      for (let i = start; i < end; i += 2) {
        let lo = (w[row + i] * inv + bias) | 0;
        lo = lo < 0 ? 0 : lo > 15 ? 15 : lo;
        let hi = i + 1 < end ? (w[row + i + 1] * inv + bias) | 0 : zp;
        hi = hi < 0 ? 0 : hi > 15 ? 15 : hi;
        packed[out + ((i - start) >> 1)] = lo | (hi << 4);
      }
      // Padding past K (last block) dequantises to 0: fill it with the zero point.
      for (let j = ((end - start + 1) >> 1) << 1; j < blockSize; j++) packed[out + (j >> 1)] |= zp << ((j & 1) * 4);
    }
  }
  return { packed, scales, zeroPoints };
}

/**
 * Block-wise asymmetric 8-bit rows in the same conventions (MatMulNBits and GatherBlockQuantized
 * with bits 8, K a multiple of `blockSize`): B uint8 [rows, kBlocks * blockSize], one byte per
 * value; scales [rows, kBlocks]; zero points uint8 [rows, kBlocks], one byte per block.
 */
export function quantizeUint8Rows(w: Float32Array, rows: number, K: number, blockSize = INT4_BLOCK): Int4Rows {
  if (K % blockSize !== 0) throw new Error(`8-bit rows need K (${K}) to be a multiple of ${blockSize}`);
  const kBlocks = K / blockSize;
  const packed = new Uint8Array(rows * K);
  const scales = new Float32Array(rows * kBlocks);
  const zeroPoints = new Uint8Array(rows * kBlocks);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < kBlocks; b++) {
      const start = r * K + b * blockSize;
      blockParams(w, start, start + blockSize, 255, params);
      const scale = params[0];
      const zp = params[1];
      const inv = params[2];
      scales[r * kBlocks + b] = scale;
      zeroPoints[r * kBlocks + b] = zp;
      const bias = zp + 0.5;
      for (let i = start; i < start + blockSize; i++) {
        const q = (w[i] * inv + bias) | 0;
        packed[i] = q < 0 ? 0 : q > 255 ? 255 : q;
      }
    }
  }
  return { packed, scales, zeroPoints };
}

/** The inverse, for tests: dequantised [rows, K]. */
export function dequantizeInt4Rows(q: Int4Rows, rows: number, K: number, blockSize = INT4_BLOCK): Float32Array {
  const { kBlocks, blob, zpBytes } = int4Dims(K, blockSize);
  const out = new Float32Array(rows * K);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < K; i++) {
      const b = Math.floor(i / blockSize);
      const j = i % blockSize;
      const byte = q.packed[(r * kBlocks + b) * blob + (j >> 1)];
      const v = (byte >> ((j & 1) * 4)) & 15;
      const zp = (q.zeroPoints[r * zpBytes + (b >> 1)] >> ((b & 1) * 4)) & 15;
      out[r * K + i] = (v - zp) * q.scales[r * kBlocks + b];
    }
  }
  return out;
}

// Per-output-channel symmetric 8-bit weights in the layout of ONNX MatMulInteger's B: int8
// [K, N] (the Linear's weight transposed), one float32 scale per column, zero point 0, so
// dequantised W^T[k, n] = q[k, n] * scale[n]. Activations are quantised per tensor at run time
// (DynamicQuantizeLinear), which onnxruntime's CPU EP fuses with the MatMulInteger into
// DynamicQuantizeMatMul (int8 GEMM on VNNI / AMX).
export interface Int8Columns {
  /** int8 [K, N] */
  q: Int8Array;
  /** float32 [N] */
  scales: Float32Array;
}

/** Quantises the weight [N, K] (row-major, a Linear's [out, in]) into int8 W^T with a scale per output. */
export function quantizeInt8Columns(w: Float32Array, N: number, K: number): Int8Columns {
  const q = new Int8Array(K * N);
  const scales = new Float32Array(N);
  for (let n = 0; n < N; n++) {
    let max = 0;
    for (let k = 0; k < K; k++) max = Math.max(max, Math.abs(w[n * K + k]));
    const s = max > 0 ? max / 127 : 1;
    scales[n] = s;
    for (let k = 0; k < K; k++) q[k * N + n] = Math.max(-127, Math.min(127, Math.round(w[n * K + k] / s)));
  }
  return { q, scales };
}
