// Segmentation masks: `<loc>` x4 + `<seg>` x16 per object -> box + run-length mask in image pixels.
//
// Where the decoder comes from: a converted VAE (`paligemma convert-vae vae-oid.npz vae.onnx`)
// lives in the model folder, named by manifest.json's `files.vae`, or as `vae.onnx` when the
// manifest names none (which also covers onnx-community folders that have no manifest).
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { DetectedObject } from '../../protocol.js';
import { EngineError } from '../errors.js';
import type { MaskDecoder } from './decoder.js';
import { pasteMask, segmentBox } from './paste.js';

export { MaskDecoder, NUM_SEG_CODES } from './decoder.js';
export { decodeRle, encodeRle, MASK_SIZE, pasteMask, resizeBilinearPil, segmentBox } from './paste.js';
export { buildVaeDecoder, readVaeNpz, vaeDecoderOnnx, VaeFormatError } from './vae.js';

export const DEFAULT_VAE_FILE = 'vae.onnx';

/**
 * The mask decoder of a model folder: manifest `files.vae` if set (an error when that file is
 * missing), else `<dir>/vae.onnx` if present, else null (segment then returns boxes without masks).
 */
export async function findMaskDecoder(modelDir: string): Promise<string | null> {
  let named: unknown;
  try {
    const manifest = JSON.parse(await readFile(join(modelDir, 'manifest.json'), 'utf8')) as { files?: { vae?: unknown } };
    named = manifest.files?.vae;
  } catch {
    named = undefined; // no or unreadable manifest: the model loader reports that, not us
  }
  if (named !== undefined) {
    if (typeof named !== 'string' || named.length === 0) {
      throw new EngineError('model-invalid', `${join(modelDir, 'manifest.json')}: files.vae must be a file name`);
    }
    const path = join(modelDir, named);
    if (!(await isFile(path))) {
      throw new EngineError('model-missing', `manifest.json names files.vae = '${named}', but ${path} does not exist`);
    }
    return path;
  }
  const fallback = join(modelDir, DEFAULT_VAE_FILE);
  return (await isFile(fallback)) ? fallback : null;
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isFile() ?? false;
}

/** One parsed segment: loc token values `[y0, x0, y1, x1]` (0..1023) and 16 seg codes (0..127). */
export interface SegmentTokens {
  label: string;
  loc: readonly number[];
  codes: readonly number[];
}

/**
 * Boxes and masks for parsed segments in an image of `width` x `height` pixels. The box is
 * big_vision's (/1023, truncated) so that the mask covers it exactly; objects whose box is empty
 * after truncation keep their box and get no mask. All masks are decoded in one batch.
 */
export async function segmentObjects(decoder: MaskDecoder, segments: readonly SegmentTokens[], width: number, height: number): Promise<DetectedObject[]> {
  const boxes = segments.map((s) => segmentBox(s.loc, width, height));
  const withBox = segments.filter((_, i) => boxes[i] !== null);
  const masks = await decoder.decode(withBox.map((s) => s.codes));
  let next = 0;
  return segments.map((s, i): DetectedObject => {
    if (!boxes[i]) {
      const [y0, x0, y1, x1] = s.loc.map((v, j) => Math.trunc((v / 1023) * (j % 2 === 0 ? height : width)));
      return { label: s.label, box: { x0, y0, x1, y1 } };
    }
    const pasted = pasteMask(masks[next++], s.loc, width, height);
    return pasted ? { label: s.label, box: pasted.box, mask: pasted.mask } : { label: s.label, box: boxes[i] };
  });
}
