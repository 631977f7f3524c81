// Reads the bytes behind an ImageRef (a path the daemon reads, or inline base64) and hashes them:
// results are cached by content, so a renamed or copied file still hits.
import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { EngineError } from '../engine/errors.js';
import type { ImageRef } from '../protocol.js';
import { Lru } from './lru.js';

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

/** The hash of an image, and a way to its bytes (read only when the model must run). */
export interface ImageContent {
  sha256: string;
  label: string;
  /** The bytes and their hash now (which differs from `sha256` if the file changed meanwhile). */
  read(): Promise<ImageBytes>;
}

/**
 * Hashes images, remembering the hash of a file by its identity (device, inode, size, times), so
 * a cached answer for an unchanged file (hovers ask often) costs a stat, not a read and a hash.
 */
export class ImageHasher {
  private readonly known = new Lru<string>(4096);

  constructor(private readonly maxBytes: number) {}

  async open(ref: ImageRef): Promise<ImageContent> {
    if (!('path' in ref)) {
      const img = await readImageRef(ref, this.maxBytes);
      return { sha256: img.sha256, label: img.label, read: async () => img };
    }
    const st = await statImage(ref.path, this.maxBytes);
    const id = `${ref.path}\0${st.dev}\0${st.ino}\0${st.size}\0${st.mtimeMs}\0${st.ctimeMs}`;
    const sha = this.known.get(id);
    if (sha) {
      return {
        sha256: sha,
        label: ref.path,
        read: async () => {
          const img = await readImageFile(ref.path, this.maxBytes);
          if (img.sha256 !== sha) this.known.set(id, img.sha256);
          return img;
        },
      };
    }
    const img = await readImageFile(ref.path, this.maxBytes, st);
    this.known.set(id, img.sha256);
    return { sha256: img.sha256, label: img.label, read: async () => img };
  }
}

async function statImage(path: string, maxBytes: number): Promise<Stats> {
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
  return st;
}

async function readImageFile(path: string, maxBytes: number, checked?: Stats): Promise<ImageBytes> {
  const st = checked ?? (await statImage(path, maxBytes));
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
