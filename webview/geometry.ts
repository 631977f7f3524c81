// Pure helpers for drawing detections over the image: no DOM here, so they are unit-tested in Node.
import type { Box, Mask } from '../daemon/protocol.js';

/** A box as percentages of the image size, so the overlay scales with the image without resize handlers. */
export interface PercentRect {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** Clamps a pixel box to the image and converts it to percentages; null when nothing of it is inside. */
export function boxToPercent(box: Box, imageWidth: number, imageHeight: number): PercentRect | null {
  if (!(imageWidth > 0) || !(imageHeight > 0)) return null;
  const x0 = clamp(Math.min(box.x0, box.x1), 0, imageWidth);
  const x1 = clamp(Math.max(box.x0, box.x1), 0, imageWidth);
  const y0 = clamp(Math.min(box.y0, box.y1), 0, imageHeight);
  const y1 = clamp(Math.max(box.y0, box.y1), 0, imageHeight);
  if (![x0, x1, y0, y1].every(Number.isFinite)) return null;
  return {
    left: (x0 / imageWidth) * 100,
    top: (y0 / imageHeight) * 100,
    width: ((x1 - x0) / imageWidth) * 100,
    height: ((y1 - y0) / imageHeight) * 100,
  };
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

/**
 * Expands a run-length encoded mask (alternating runs, starting with 0s) to one byte per pixel.
 * Throws on a mask whose runs do not add up to width x height: drawing half a mask would mislead.
 */
export function decodeRle(mask: Mask): Uint8Array {
  const { width, height, rle } = mask;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 0 || height < 0) {
    throw new Error(`mask has an invalid size ${width}x${height}`);
  }
  const out = new Uint8Array(width * height);
  let pos = 0;
  for (let i = 0; i < rle.length; i++) {
    const run = rle[i];
    if (!Number.isInteger(run) || run < 0) throw new Error(`mask run ${i} is not a count: ${run}`);
    if (pos + run > out.length) throw new Error(`mask runs exceed ${width}x${height} pixels`);
    if (i % 2 === 1) out.fill(1, pos, pos + run);
    pos += run;
  }
  if (pos !== out.length) throw new Error(`mask runs cover ${pos} of ${width}x${height} pixels`);
  return out;
}

/** Number of pixels set in a mask, without expanding it. */
export function maskArea(mask: Mask): number {
  let n = 0;
  for (let i = 1; i < mask.rle.length; i += 2) n += mask.rle[i];
  return n;
}

/** The same label always gets the same colour, so "cat" keeps its colour across runs. */
export function labelColorIndex(label: string, paletteSize: number): number {
  let h = 2166136261;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return (h >>> 0) % paletteSize;
}
