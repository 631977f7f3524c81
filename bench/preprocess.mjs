#!/usr/bin/env node
// Host-side preprocessing (antialiased bicubic resize + normalisation, daemon/engine/image) on
// synthetic RGB images of common sizes: medians of repeated runs, one JSON object per line.
// The time is part of every uncached request's first token. Run after `npm run build`:
//   node bench/preprocess.mjs [--runs 31]
import { parseArgs } from 'node:util';
import { preprocess } from '../out/daemon/engine/image/preprocess.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '31' } } });
const runs = Number(values.runs);
const SIGLIP = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], rescale: 1 / 255 };
const CASES = [
  [640, 480, 224],
  [640, 480, 448],
  [640, 480, 896],
  [1920, 1080, 224],
  [4032, 3024, 224],
  [4032, 3024, 896],
];

for (const [width, height, size] of CASES) {
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = (Math.imul(i, 2654435761) >>> 24) & 255;
  const image = { width, height, rgb };
  const out = new Float32Array(3 * size * size);
  const times = [];
  for (let r = 0; r < runs + 3; r++) {
    const t = performance.now();
    preprocess(image, { size, ...SIGLIP }, out);
    if (r >= 3) times.push(performance.now() - t); // the first runs compile and grow memory
  }
  times.sort((a, b) => a - b);
  const median = times[times.length >> 1];
  console.log(JSON.stringify({ source: `${width}x${height}`, size, runs, median_ms: Math.round(median * 100) / 100 }));
}
