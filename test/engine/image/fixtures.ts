// Paths of the image test inputs: the tiny checkpoints' images (test/fixtures) and the extra
// inputs + Hugging Face references in test/engine/image/fixtures (see make_reference.py there).
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

// Compiled tests live in out/test/engine/image; fixtures stay in the source tree.
export function repoPath(rel: string): string {
  return fileURLToPath(new URL(`../../../../${rel}`, import.meta.url));
}

export const imageInput = (name: string) => repoPath(`test/engine/image/fixtures/${name}`);
export const imageReference = (name: string) => repoPath(`test/engine/image/fixtures/reference/${name}`);

/** 8-bit RGB pixels of a reference PNG (PIL writes a tRNS chunk for some; alpha is not part of it). */
export async function readRgb(file: string): Promise<{ width: number; height: number; rgb: Uint8Array }> {
  const { data, info } = await sharp(file).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, rgb: new Uint8Array(data) };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
