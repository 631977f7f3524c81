// Reads NumPy .npz archives (a zip of .npy files), as big_vision ships its mask VAE (vae-oid.npz).
// Only little-endian, C-ordered numeric arrays are accepted: that is what np.savez writes on
// every platform we run on, and anything else would need a transpose we would rather refuse.
import { unzipSync } from 'fflate';
import { errorMessage } from '../../common/errors.js';

export type NpyDtype = 'float16' | 'float32' | 'float64' | 'int8' | 'int16' | 'int32' | 'int64' | 'uint8' | 'uint16' | 'uint32';

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  /** The raw little-endian bytes, `size * itemSize` long. */
  bytes: Uint8Array;
}

const DESCR: Record<string, { dtype: NpyDtype; itemSize: number }> = {
  '<f2': { dtype: 'float16', itemSize: 2 },
  '<f4': { dtype: 'float32', itemSize: 4 },
  '<f8': { dtype: 'float64', itemSize: 8 },
  '|i1': { dtype: 'int8', itemSize: 1 },
  '<i2': { dtype: 'int16', itemSize: 2 },
  '<i4': { dtype: 'int32', itemSize: 4 },
  '<i8': { dtype: 'int64', itemSize: 8 },
  '|u1': { dtype: 'uint8', itemSize: 1 },
  '<u2': { dtype: 'uint16', itemSize: 2 },
  '<u4': { dtype: 'uint32', itemSize: 4 },
};

export class NpyFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NpyFormatError';
  }
}

/** Parses one .npy file (format versions 1, 2 and 3). */
export function parseNpy(buf: Uint8Array, name = 'array'): NpyArray {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
  if (buf.length < 10 || magic.some((b, i) => buf[i] !== b)) {
    throw new NpyFormatError(`${name}: not a .npy file (bad magic)`);
  }
  const major = buf[6];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) throw new NpyFormatError(`${name}: truncated .npy header`);
    headerLen = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw new NpyFormatError(`${name}: unsupported .npy format version ${major}`);
  }
  const dataStart = headerStart + headerLen;
  if (dataStart > buf.length) throw new NpyFormatError(`${name}: truncated .npy header`);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(buf.subarray(headerStart, dataStart));

  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new NpyFormatError(`${name}: malformed .npy header ${JSON.stringify(header.trim())}`);
  }
  // A single byte has no byte order: numpy may write '<u1' or '|u1' for it.
  const known = DESCR[descr] ?? DESCR[descr.replace(/^[<=]/, '|')];
  if (!known) throw new NpyFormatError(`${name}: unsupported dtype '${descr}' (expected little-endian numbers)`);
  if (fortran === 'True') throw new NpyFormatError(`${name}: Fortran-ordered arrays are not supported`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      const n = Number(s.replace(/L$/, ''));
      if (!Number.isSafeInteger(n) || n < 0) throw new NpyFormatError(`${name}: bad shape (${shapeText})`);
      return n;
    });
  const size = shape.reduce((a, b) => a * b, 1);
  const byteLen = size * known.itemSize;
  if (buf.length - dataStart !== byteLen) {
    throw new NpyFormatError(`${name}: expected ${byteLen} data bytes for shape [${shape.join(', ')}] ${known.dtype}, found ${buf.length - dataStart}`);
  }
  return { dtype: known.dtype, shape, bytes: buf.subarray(dataStart) };
}

/** Parses an .npz archive into arrays keyed by name (without the `.npy` suffix). */
export function parseNpz(buf: Uint8Array, name = 'archive'): Map<string, NpyArray> {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(buf);
  } catch (e) {
    throw new NpyFormatError(`${name}: not a readable .npz (zip) archive: ${errorMessage(e)}`);
  }
  const out = new Map<string, NpyArray>();
  for (const [file, data] of Object.entries(files)) {
    if (!file.endsWith('.npy')) continue;
    const key = file.slice(0, -'.npy'.length);
    out.set(key, parseNpy(data, `${name}:${file}`));
  }
  return out;
}

/** The array as float32 values (copied; widened or narrowed from the stored float type). */
export function toFloat32(a: NpyArray, name = 'array'): Float32Array {
  const { bytes } = a;
  // Copy first so the typed-array views are aligned whatever the zip offsets were (a Buffer's
  // slice() is a view, hence the constructor).
  const copy = new Uint8Array(bytes);
  switch (a.dtype) {
    case 'float32':
      return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
    case 'float64':
      return Float32Array.from(new Float64Array(copy.buffer, 0, copy.byteLength / 8));
    case 'float16': {
      const h = new Uint16Array(copy.buffer, 0, copy.byteLength / 2);
      const out = new Float32Array(h.length);
      for (let i = 0; i < h.length; i++) out[i] = halfToFloat(h[i]);
      return out;
    }
    default:
      throw new NpyFormatError(`${name}: expected a float array, found ${a.dtype}`);
  }
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}
