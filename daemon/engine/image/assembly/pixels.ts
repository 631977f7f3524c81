// AssemblyScript, compiled to WebAssembly (SIMD) by .ci/build-wasm.mjs; driven by ../resize.ts.
//
// The two passes of the antialiased bicubic resize and the normalisation, on buffers the driver
// lays out in this module's memory. The arithmetic is the JavaScript reference's, lane by lane
// (the results are bit-exact with torchvision's uint8 kernel): int32 sums of pixel x quantised
// weight, starting at half a unit, shifted right by the precision and saturated to 0..255.
// Pillow-SIMD vectorises the same way; V8 ran the scalar loops at about 3 ns per tap.

/**
 * Horizontal pass over `rows` rows of 3-channel pixels: output pixel x sums taps from input pixel
 * `start[x]` on, two at a time: `pairs[x]` int32 words, each two int16 weights (the first in the
 * low half; a zero second weight pads an odd count). One 8-byte load holds both taps' pixels;
 * a swizzle lays them out as int16 [R0 R1 G0 G1 B0 B1 0 0] and one dot product with the weights
 * gives the three channels' partial sums in lanes 0..2. Reads up to 8 bytes past a tap pair's
 * start (the driver pads).
 */
export function horizontal3(src: usize, width: i32, rows: i32, dst: usize, outWidth: i32, start: usize, pairs: usize, weights: usize, maxPairs: i32, precision: i32): void {
  const half = i32x4.splat(precision > 0 ? 1 << (precision - 1) : 0);
  const zero = i32x4.splat(0);
  for (let y = 0; y < rows; y++) {
    const row = src + <usize>y * <usize>width * 3;
    let o = dst + <usize>y * <usize>outWidth * 3;
    for (let x = 0; x < outWidth; x++) {
      const n = load<i32>(pairs + ((<usize>x) << 2));
      let s = row + <usize>load<i32>(start + ((<usize>x) << 2)) * 3;
      let w = weights + ((<usize>x * <usize>maxPairs) << 2);
      let acc = half;
      for (let j = 0; j < n; j++) {
        // bytes 0..5 of the load as int16 [R0 R1 G0 G1 B0 B1], zeros (lane 16) elsewhere
        const px = i8x16.shuffle(v128.load64_zero(s), zero, 0, 16, 3, 16, 1, 16, 4, 16, 2, 16, 5, 16, 16, 16, 16, 16);
        acc = i32x4.add(acc, i32x4.dot_i16x8_s(px, v128.load32_splat(w)));
        s += 6;
        w += 4;
      }
      const v = i32x4.shr_s(acc, precision);
      const narrow = i16x8.narrow_i32x4_s(v, v);
      const bytes = i8x16.narrow_i16x8_u(narrow, narrow);
      store<u16>(o, i16x8.extract_lane_u(bytes, 0));
      store<u8>(o, i8x16.extract_lane_u(bytes, 2), 2);
      o += 3;
    }
  }
}

/**
 * Vertical pass over rows of `stride` bytes, 16 bytes at a time: output row y sums `count[y]`
 * whole input rows from `start[y]` on. The last 16-byte group of a row runs past its end (into the
 * next row, rewritten after, or the driver's padding).
 */
export function vertical(src: usize, stride: i32, dst: usize, outHeight: i32, start: usize, count: usize, weights: usize, maxTaps: i32, precision: i32): void {
  const half = i32x4.splat(precision > 0 ? 1 << (precision - 1) : 0);
  for (let y = 0; y < outHeight; y++) {
    const first = src + <usize>load<i32>(start + ((<usize>y) << 2)) * <usize>stride;
    const n = load<i32>(count + ((<usize>y) << 2));
    const w0 = weights + ((<usize>y * <usize>maxTaps) << 2);
    const orow = dst + <usize>y * <usize>stride;
    for (let i = 0; i < stride; i += 16) {
      let a0 = half;
      let a1 = half;
      let a2 = half;
      let a3 = half;
      let s = first + <usize>i;
      for (let j = 0; j < n; j++) {
        const k = v128.load32_splat(w0 + ((<usize>j) << 2));
        const v = v128.load(s);
        const lo = i16x8.extend_low_i8x16_u(v);
        const hi = i16x8.extend_high_i8x16_u(v);
        a0 = i32x4.add(a0, i32x4.mul(i32x4.extend_low_i16x8_s(lo), k));
        a1 = i32x4.add(a1, i32x4.mul(i32x4.extend_high_i16x8_s(lo), k));
        a2 = i32x4.add(a2, i32x4.mul(i32x4.extend_low_i16x8_s(hi), k));
        a3 = i32x4.add(a3, i32x4.mul(i32x4.extend_high_i16x8_s(hi), k));
        s += <usize>stride;
      }
      const lo16 = i16x8.narrow_i32x4_s(i32x4.shr_s(a0, precision), i32x4.shr_s(a1, precision));
      const hi16 = i16x8.narrow_i32x4_s(i32x4.shr_s(a2, precision), i32x4.shr_s(a3, precision));
      v128.store(orow + <usize>i, i8x16.narrow_i16x8_u(lo16, hi16));
    }
  }
}

/**
 * Interleaved 8-bit RGB -> planar float32 [3, pixels] through a table of 3 x 256 float32 values
 * (the driver computes each entry once with the reference's float32 formula).
 */
export function normalize(src: usize, pixels: i32, table: usize, dst: usize): void {
  const plane = (<usize>pixels) << 2;
  for (let p: usize = 0; p < <usize>pixels; p++) {
    const s = src + p * 3;
    const d = dst + (p << 2);
    store<f32>(d, load<f32>(table + ((<usize>load<u8>(s)) << 2)));
    store<f32>(d + plane, load<f32>(table + 1024 + ((<usize>load<u8>(s, 1)) << 2)));
    store<f32>(d + 2 * plane, load<f32>(table + 2048 + ((<usize>load<u8>(s, 2)) << 2)));
  }
}
