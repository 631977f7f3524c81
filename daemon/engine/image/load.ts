// Decoding images into 8-bit RGB with sharp, the way the reference pipeline sees them, except for
// transparency.
//
// The reference (transformers' PaliGemma processor) takes PIL's `Image.open(...).convert("RGB")`:
// palette/grey images are expanded, CMYK uses PIL's naive formula, and embedded ICC profiles are
// ignored (sharp's raw output does not colour-manage unless asked to). We match that, and apply the
// EXIF orientation as transformers' own `load_image` does (a rotated photo should be seen upright).
//
// Alpha is FLATTENED onto white, where PIL's `convert("RGB")` drops it and shows whatever colour
// the transparent pixels happen to hold. That colour is invisible to a reader and often black (a
// dark logo on a transparent background becomes a black square), so the model would describe
// something nobody sees; white is how docs pages and image viewers show the picture. Opaque pixels
// are exactly PIL's.
//
// SVG is rasterised by librsvg (in sharp's prebuilt binaries) on white, at `svgSize` pixels on its
// short side: the model's resolution, or more, so the resize to the model input only scales down.
import { promises as fs } from 'node:fs';
import sharp, { type Metadata } from 'sharp';
import { EngineError } from '../errors.js';
import { errorMessage } from '../../common/errors.js';
import { formatBytes } from '../../common/format.js';

// Each image is decoded once (callers keep decoded pixels in their own caches), so libvips's
// operation cache (by default up to 50 MB / 100 operations) would only hold memory.
sharp.cache(false);

export interface RgbImage {
  width: number;
  height: number;
  /** width * height * 3 bytes, row-major, interleaved 8-bit sRGB */
  rgb: Uint8Array;
}

export interface LoadImageOptions {
  /** refuse images with more pixels than this (checked from the header, before decoding) */
  maxPixels?: number;
  /** refuse files larger than this */
  maxBytes?: number;
  /** short side of a rasterised SVG (default 896, the largest PaliGemma input, so any model scales down) */
  svgSize?: number;
}

export const DEFAULT_MAX_PIXELS = 50_000_000;
export const DEFAULT_MAX_BYTES = 200 * 1024 * 1024;

export const DEFAULT_SVG_SIZE = 896;
/** Formats we decode (sharp can also render PDF, which is no picture to describe). */
const SUPPORTED_FORMATS = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif', 'svg']);
const WHITE = { r: 255, g: 255, b: 255 };

export async function loadImage(input: string | Buffer | Uint8Array, opts: LoadImageOptions = {}): Promise<RgbImage> {
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  if (typeof input !== 'string' && !(input instanceof Uint8Array)) {
    throw new EngineError('invalid-params', 'an image must be given as a file path or as bytes');
  }
  const name = typeof input === 'string' ? input : 'image data';
  const data = typeof input === 'string' ? await readImageFile(input, maxBytes) : checkBuffer(input, maxBytes);

  let meta: Metadata;
  try {
    // Reads the header only; no pixel is decoded here.
    meta = await sharp(data, { limitInputPixels: false }).metadata();
  } catch (e) {
    // libvips calls a PNG that declares 0 x 0 pixels a corrupt header; say what is wrong with it.
    const png = pngHeaderSize(data);
    if (png && (png.width === 0 || png.height === 0)) throw noPixels(name, png.width, png.height);
    throw decodeError(e, name);
  }
  if (!meta.format || !SUPPORTED_FORMATS.has(meta.format)) {
    throw new EngineError('unsupported-image', `${name}: ${meta.format ?? 'unknown'} images are not supported (use JPEG, PNG, WebP, GIF, TIFF, HEIF/AVIF or SVG)`);
  }
  // An SVG's size is what it renders at (72 dpi); it is rendered larger, at `svgSize` on its short side.
  const svgScale = meta.format === 'svg' ? (opts.svgSize ?? DEFAULT_SVG_SIZE) / Math.max(1, Math.min(meta.width ?? 1, meta.height ?? 1)) : 1;
  const width = Math.round((meta.width ?? 0) * svgScale);
  const height = Math.round((meta.pageHeight ?? meta.height ?? 0) * svgScale);
  if (width <= 0 || height <= 0) throw noPixels(name, width, height);
  if (width * height > maxPixels) {
    throw new EngineError('too-many-pixels', `${name}: ${width}x${height} is ${formatPixels(width * height)}, more than the limit of ${formatPixels(maxPixels)}`);
  }

  try {
    const base = sharp(data, {
      // 'error' refuses truncated or corrupt data instead of padding it with grey, but still
      // accepts benign warnings (extraneous bytes before a marker) as PIL does.
      failOn: 'error',
      limitInputPixels: maxPixels,
      autoOrient: true,
      page: 0,
      pages: 1,
      ...(meta.format === 'svg' ? { density: Math.min(100_000, 72 * svgScale) } : {}),
    });
    if (meta.space === 'cmyk') {
      const { data: cmyk, info } = await base.pipelineColourspace('cmyk').toColourspace('cmyk').raw().toBuffer({ resolveWithObject: true });
      return { width: info.width, height: info.height, rgb: cmykToRgb(cmyk, info.width * info.height, info.channels) };
    }
    const opaque = meta.hasAlpha || meta.format === 'svg' ? base.flatten({ background: WHITE }) : base;
    const { data: px, info } = await opaque.removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, rgb: toRgb(px, info.width * info.height, info.channels) };
  } catch (e) {
    if (e instanceof EngineError) throw e;
    throw decodeError(e, name);
  }
}

async function readImageFile(file: string, maxBytes: number): Promise<Buffer> {
  let st;
  try {
    st = await fs.stat(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new EngineError('not-found', `${file}: no such file`, { cause: e });
    throw new EngineError('not-found', `${file}: cannot be read (${code ?? String(e)})`, { cause: e });
  }
  if (st.isDirectory()) throw new EngineError('not-a-file', `${file} is a directory, not an image file`);
  if (!st.isFile()) throw new EngineError('not-a-file', `${file} is not a regular file`);
  if (st.size === 0) throw new EngineError('empty-file', `${file} is empty (0 bytes)`);
  if (st.size > maxBytes) throw new EngineError('file-too-large', `${file} is ${formatBytes(st.size)}, more than the limit of ${formatBytes(maxBytes)}`);
  try {
    return await fs.readFile(file);
  } catch (e) {
    throw new EngineError('not-found', `${file}: cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { cause: e });
  }
}

function checkBuffer(data: Buffer | Uint8Array, maxBytes: number): Buffer {
  if (data.length === 0) throw new EngineError('empty-file', 'the image data is empty (0 bytes)');
  if (data.length > maxBytes) throw new EngineError('file-too-large', `the image data is ${formatBytes(data.length)}, more than the limit of ${formatBytes(maxBytes)}`);
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length);
}

function decodeError(e: unknown, name: string): EngineError {
  const msg = errorMessage(e);
  if (/unsupported image format|bad seek|not a known file format/i.test(msg)) {
    return new EngineError('unsupported-image', `${name} is not an image in a supported format`, { cause: e });
  }
  if (/pixel limit/i.test(msg)) return new EngineError('too-many-pixels', `${name}: ${msg}`, { cause: e });
  return new EngineError('corrupt-image', `${name} is damaged or truncated: ${firstLine(msg)}`, { cause: e });
}

/** PIL's CMYK -> RGB (Convert.c cmyk2rgb): no colour management, R = (255 - K) - C * (255 - K) / 255. */
function cmykToRgb(cmyk: Buffer, pixels: number, channels: number): Uint8Array {
  const rgb = new Uint8Array(pixels * 3);
  for (let p = 0; p < pixels; p++) {
    const s = p * channels;
    const nk = 255 - cmyk[s + 3];
    for (let c = 0; c < 3; c++) {
      const t = cmyk[s + c] * nk + 128;
      const v = nk - ((t + (t >> 8)) >> 8);
      rgb[p * 3 + c] = v < 0 ? 0 : v;
    }
  }
  return rgb;
}

function toRgb(px: Buffer, pixels: number, channels: number): Uint8Array {
  if (channels === 3) return new Uint8Array(px.buffer, px.byteOffset, px.length);
  const rgb = new Uint8Array(pixels * 3);
  for (let p = 0; p < pixels; p++) {
    for (let c = 0; c < 3; c++) rgb[p * 3 + c] = px[p * channels + (channels >= 3 ? c : 0)];
  }
  return rgb;
}

function noPixels(name: string, width: number, height: number): EngineError {
  return new EngineError('corrupt-image', `${name} is ${width} x ${height} pixels: an image with no pixels cannot be described`);
}

/** Width and height from a PNG's IHDR chunk, or undefined when `data` is not a PNG. */
function pngHeaderSize(data: Uint8Array): { width: number; height: number } | undefined {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (data.length < 24 || sig.some((b, i) => data[i] !== b) || Buffer.from(data.subarray(12, 16)).toString('latin1') !== 'IHDR') return undefined;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

function formatPixels(n: number): string {
  return n >= 100_000 ? `${(n / 1e6).toFixed(1)} megapixels` : `${n} pixels`;
}

function firstLine(s: string): string {
  return s.split('\n')[0].trim();
}
