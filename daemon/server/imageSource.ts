// Reads the bytes behind an ImageRef (a path the daemon reads, or inline base64) and hashes them:
// results are cached by content, so a renamed or copied file still hits.
import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { EngineError } from '../engine/errors.js';
import type { ImageRef } from '../protocol.js';

export interface ImageBytes {
  bytes: Buffer;
  sha256: string;
  /** For logs and messages: the path, or "inline image". */
  label: string;
}

export async function readImageRef(ref: ImageRef, maxBytes: number): Promise<ImageBytes> {
  if ('path' in ref) return readImageFile(ref.path, maxBytes);
  const bytes = Buffer.from(ref.data, 'base64');
  if (bytes.length === 0) throw new EngineError('empty-file', 'inline image is empty');
  if (bytes.length > maxBytes) {
    throw new EngineError('file-too-large', `inline image is ${bytes.length} bytes; the limit is ${maxBytes}`);
  }
  return { bytes, sha256: sha256(bytes), label: 'inline image' };
}

async function readImageFile(path: string, maxBytes: number): Promise<ImageBytes> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new EngineError('not-found', `image not found: ${path}`);
    if (code === 'EACCES') throw new EngineError('not-found', `image not readable (permission denied): ${path}`);
    throw new EngineError('not-found', `cannot read image ${path}: ${(e as Error).message}`);
  }
  if (!st.isFile()) throw new EngineError('not-a-file', `not a file: ${path}${st.isDirectory() ? ' (a directory)' : ''}`);
  if (st.size === 0) throw new EngineError('empty-file', `image file is empty: ${path}`);
  if (st.size > maxBytes) throw new EngineError('file-too-large', `image file is ${st.size} bytes; the limit is ${maxBytes}: ${path}`);
  // Read at most maxBytes + 1 so a file growing under us cannot blow the limit.
  const fh = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
    throw new EngineError('not-found', `cannot open image ${path}: ${e.message}`);
  });
  try {
    const buf = Buffer.allocUnsafe(Math.min(st.size, maxBytes) + 1);
    let n = 0;
    while (n < buf.length) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    if (n > maxBytes) throw new EngineError('file-too-large', `image file grew past the limit of ${maxBytes} bytes: ${path}`);
    if (n === 0) throw new EngineError('empty-file', `image file is empty: ${path}`);
    const bytes = buf.subarray(0, n);
    return { bytes, sha256: sha256(bytes), label: path };
  } finally {
    await fh.close();
  }
}

export function sha256(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}
