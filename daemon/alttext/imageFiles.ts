// The image file behind a reference: found, read, recognised by its content (not its name) and
// hashed, without decoding it. File access is passed in, so the CLI reads the disk and the
// extension reads through VS Code (remote and virtual workspaces).
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { ImageFileKind } from './diagnose.js';
import { errorMessage } from '../common/errors.js';
import { formatBytes } from '../common/format.js';

export interface FileStat {
  type: 'file' | 'directory' | 'other';
  size: number;
}

export interface ImageFileAccess {
  /** undefined when nothing is at `path`; throws when it cannot be looked at (permissions). */
  stat(path: string): Promise<FileStat | undefined>;
  readFile(path: string): Promise<Uint8Array>;
}

/** The local file system, for paths of this machine. */
export const nodeFileAccess: ImageFileAccess = {
  async stat(path) {
    try {
      const st = await stat(path);
      return { type: st.isFile() ? 'file' : st.isDirectory() ? 'directory' : 'other', size: st.size };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw e;
    }
  },
  readFile: (path) => readFile(path),
};

/** Formats the daemon describes (SVG is rasterised by its image loader). */
export type ImageFormat = 'png' | 'jpeg' | 'gif' | 'webp' | 'tiff' | 'heif' | 'svg';

export interface ImageFile {
  path: string;
  format: ImageFormat;
  sha256: string;
  size: number;
}

export type ImageFileCheck = { ok: true; file: ImageFile } | { ok: false; kind: Exclude<ImageFileKind, 'remote'>; message: string };

/** Larger files are not read (the daemon's own limit is far below). */
export const MAX_IMAGE_BYTES = 256 * 1024 * 1024;
const SUPPORTED = 'PNG, JPEG, WebP, GIF, TIFF, AVIF/HEIF or SVG';

/**
 * The first of `candidates` that exists, read and checked. `src` is the location as the document
 * writes it, which the messages quote (the user looks for that text, not the resolved path).
 */
export async function checkImageFile(src: string, candidates: readonly string[], files: ImageFileAccess): Promise<ImageFileCheck> {
  for (const path of candidates) {
    let st: FileStat | undefined;
    try {
      st = await files.stat(path);
    } catch (e) {
      return { ok: false, kind: 'unreadable', message: `cannot read ${src}: ${reasonOf(e)}` };
    }
    if (!st) continue;
    if (st.type === 'directory') return { ok: false, kind: 'unreadable', message: `${src} is a folder, not an image file` };
    if (st.type !== 'file') return { ok: false, kind: 'unreadable', message: `${src} is not a regular file` };
    if (st.size === 0) return { ok: false, kind: 'unreadable', message: `${src} is empty (0 bytes)` };
    if (st.size > MAX_IMAGE_BYTES) return { ok: false, kind: 'unreadable', message: `${src} is too large to describe (${formatBytes(st.size)})` };
    let bytes: Uint8Array;
    try {
      bytes = await files.readFile(path);
    } catch (e) {
      return { ok: false, kind: 'unreadable', message: `cannot read ${src}: ${reasonOf(e)}` };
    }
    const format = sniffImageFormat(bytes);
    if (!format) {
      const named = /\.bmp$/i.test(path) || (bytes[0] === 0x42 && bytes[1] === 0x4d) ? 'BMP images are not supported' : 'not an image';
      return { ok: false, kind: 'unsupported', message: `${src}: ${named} (the model reads ${SUPPORTED})` };
    }
    const damage = truncation(format, bytes);
    if (damage) return { ok: false, kind: 'unreadable', message: `${src} is damaged or truncated (${damage})` };
    return { ok: true, file: { path, format, sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length } };
  }
  return { ok: false, kind: 'not-found', message: `file not found: ${src}` };
}

function reasonOf(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EACCES' || code === 'EPERM' || code === 'NoPermissions') return 'permission denied';
  return errorMessage(e);
}

const ascii = (bytes: Uint8Array, start: number, end: number) => String.fromCharCode(...bytes.subarray(start, end));

/** The image format by its first bytes, or undefined when it is not one the model reads. */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (bytes.length >= 8 && ascii(bytes, 0, 8) === '\x89PNG\r\n\x1a\n') return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 6 && /^GIF8[79]a$/.test(ascii(bytes, 0, 6))) return 'gif';
  if (bytes.length >= 12 && ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return 'webp';
  if (bytes.length >= 4 && (ascii(bytes, 0, 4) === 'II*\0' || ascii(bytes, 0, 4) === 'MM\0*')) return 'tiff';
  if (bytes.length >= 12 && ascii(bytes, 4, 8) === 'ftyp' && /^(avif|avis|heic|heix|heim|heis|hevc|hevx|mif1|msf1)$/.test(ascii(bytes, 8, 12))) return 'heif';
  // SVG is text: an <svg element near the start (after an XML declaration, comments, a doctype).
  const head = new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(0, 4096));
  if (!head.includes('\0') && /^(?:\uFEFF)?\s*(?:<\?xml[^>]*>\s*)?(?:(?:<!--[\s\S]*?-->|<!DOCTYPE[^>]*>)\s*)*<svg[\s>]/i.test(head)) return 'svg';
  return undefined;
}

/** Why the file ends too early, for the formats whose end is marked; undefined when it looks whole. */
function truncation(format: ImageFormat, bytes: Uint8Array): string | undefined {
  switch (format) {
    case 'png':
      // The last chunk is IEND: length 0, type, CRC.
      return bytes.length >= 20 && ascii(bytes, bytes.length - 8, bytes.length - 4) === 'IEND' ? undefined : 'the PNG ends before its IEND chunk';
    case 'jpeg': {
      // The end-of-image marker, allowing a little padding after it.
      const tail = bytes.subarray(Math.max(0, bytes.length - 64));
      for (let i = tail.length - 2; i >= 0; i--) if (tail[i] === 0xff && tail[i + 1] === 0xd9) return undefined;
      return 'the JPEG has no end marker';
    }
    case 'webp': {
      const declared = (bytes[4] | (bytes[5] << 8) | (bytes[6] << 16) | (bytes[7] << 24)) >>> 0;
      return bytes.length < declared + 8 ? `the WebP file declares ${declared + 8} bytes but has ${bytes.length}` : undefined;
    }
    default:
      return undefined;
  }
}
