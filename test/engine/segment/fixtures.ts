// The tiny VAE fixture (test/fixtures/tiny-vae): random weights in vae-oid.npz's layout and the
// outputs of big_vision's Flax decoder for them.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MASK_SIZE } from '../../../daemon/engine/segment/paste.js';

export interface PasteCase {
  mask_index: number;
  loc_tokens: number[];
  image_hw: [number, number];
  box_px: number[];
  pixels_on: number;
  rows_on: number[];
}

export interface VaeGolden {
  embedding_dim: number;
  npz_keys: Record<string, number[]>;
  codes: number[][];
  mask_stats: { min: number; max: number; mean: number; positive: number }[];
  paste_cases: PasteCase[];
}

// Compiled tests live in out/test/engine/segment; fixtures stay in the source tree.
export function fixturePath(name: string): string {
  return fileURLToPath(new URL(`../../../../test/fixtures/tiny-vae/${name}`, import.meta.url));
}

export function vaeGolden(): VaeGolden {
  return JSON.parse(readFileSync(fixturePath('golden.json'), 'utf8')) as VaeGolden;
}

export function goldenMasks(): Float32Array[] {
  const buf = readFileSync(fixturePath('masks64.f32'));
  const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  const n = all.length / (MASK_SIZE * MASK_SIZE);
  return Array.from({ length: n }, (_, i) => all.subarray(i * MASK_SIZE * MASK_SIZE, (i + 1) * MASK_SIZE * MASK_SIZE));
}
