// What both sides of `paligemma bench --peer` share, in a module without an onnxruntime import:
// the transformers.js side (bench/peer/transformers-js.mjs) loads its own onnxruntime, and times
// the very same pixels and takes the same medians.

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A deterministic 640x480 test card, so preprocessing (a real resize) is part of the timing. */
export function testImage(seed: number): { width: number; height: number; rgb: Uint8Array } {
  const width = 640;
  const height = 480;
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      rgb[i] = (x + seed * 37) & 255;
      rgb[i + 1] = (y * 2 + seed * 11) & 255;
      rgb[i + 2] = ((x ^ y) + seed) & 255;
    }
  }
  return { width, height, rgb };
}
