// Reads safetensors checkpoints (one file, or shards listed in model.safetensors.index.json)
// tensor by tensor with positioned reads: a file is never loaded whole.
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { EngineError } from '../errors.js';

export type SafetensorsDType = 'F32' | 'F16' | 'BF16';

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  file: string;
  /** Absolute byte offset of the data in `file`. */
  offset: number;
  length: number;
}

const ELEMENT_BYTES: Record<SafetensorsDType, number> = { F32: 4, F16: 2, BF16: 2 };
const MAX_HEADER = 100 * 1024 * 1024;

function corrupt(file: string, why: string): EngineError {
  return new EngineError('model-invalid', `${file}: not a valid safetensors file (${why})`);
}

function readExactly(fd: number, length: number, position: number, file: string): Buffer {
  // A fresh ArrayBuffer (not the Buffer pool) so that typed-array views are aligned.
  const buf = Buffer.from(new ArrayBuffer(length));
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) throw corrupt(file, `unexpected end of file at byte ${position + done}`);
    done += n;
  }
  return buf;
}

/** Parses and validates one file's header. */
export function readSafetensorsHeader(file: string): TensorInfo[] {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size < 8) throw corrupt(file, 'shorter than its 8-byte header length');
    const n = readExactly(fd, 8, 0, file).readBigUInt64LE(0);
    if (n === 0n || n > BigInt(Math.min(MAX_HEADER, size - 8))) throw corrupt(file, `header length ${n} does not fit the file`);
    const headerLen = Number(n);
    let header: unknown;
    try {
      header = JSON.parse(readExactly(fd, headerLen, 8, file).toString('utf8'));
    } catch {
      throw corrupt(file, 'header is not JSON');
    }
    if (!header || typeof header !== 'object' || Array.isArray(header)) throw corrupt(file, 'header is not an object');
    const dataStart = 8 + headerLen;
    const dataSize = size - dataStart;
    const out: TensorInfo[] = [];
    for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') continue;
      const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (!e || typeof e !== 'object') throw corrupt(file, `entry ${name} is not an object`);
      const { dtype, shape, data_offsets: offsets } = e;
      if (typeof dtype !== 'string') throw corrupt(file, `entry ${name} has no dtype`);
      if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) throw corrupt(file, `entry ${name} has a bad shape`);
      if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0)) {
        throw corrupt(file, `entry ${name} has bad data_offsets`);
      }
      const [begin, end] = offsets as number[];
      if (end < begin || end > dataSize) throw corrupt(file, `entry ${name} points outside the file`);
      if (!(dtype in ELEMENT_BYTES)) {
        throw new EngineError('model-invalid', `${file}: tensor ${name} has dtype ${dtype}; only F32, F16 and BF16 are supported`);
      }
      const count = (shape as number[]).reduce((a, b) => a * b, 1);
      if (count * ELEMENT_BYTES[dtype as SafetensorsDType] !== end - begin) {
        throw corrupt(file, `entry ${name}: ${end - begin} bytes for shape [${shape}] ${dtype}`);
      }
      out.push({ name, dtype: dtype as SafetensorsDType, shape: shape as number[], file, offset: dataStart + begin, length: end - begin });
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

/** The safetensors files of a checkpoint folder: the index's shards, or model.safetensors. */
export function checkpointFiles(dir: string): string[] {
  const index = join(dir, 'model.safetensors.index.json');
  if (existsSync(index)) {
    let parsed: { weight_map?: Record<string, string> };
    try {
      parsed = JSON.parse(readFileSync(index, 'utf8'));
    } catch {
      throw new EngineError('model-invalid', `${index}: not valid JSON`);
    }
    if (!parsed.weight_map || typeof parsed.weight_map !== 'object') {
      throw new EngineError('model-invalid', `${index}: no weight_map`);
    }
    const files = [...new Set(Object.values(parsed.weight_map))].sort();
    for (const f of files) {
      if (typeof f !== 'string' || f.includes('/') || f.includes('\\')) throw new EngineError('model-invalid', `${index}: bad shard name ${JSON.stringify(f)}`);
      if (!existsSync(join(dir, f))) throw new EngineError('model-missing', `${dir}: shard ${f} listed in the index is missing`);
    }
    return files.map((f) => join(dir, f));
  }
  const single = join(dir, 'model.safetensors');
  if (!existsSync(single)) throw new EngineError('model-missing', `${dir}: no model.safetensors or model.safetensors.index.json`);
  return [single];
}

// bf16 is the top half of an fp32; fp16 needs a real conversion.
const halfTable = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    t[h] = exp === 0 ? sign * mant * 2 ** -24 : exp === 0x1f ? (mant ? NaN : sign * Infinity) : sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return t;
})();

// Little-endian host assumed (x86-64, arm64), as onnxruntime's external data also is.
function decode(dtype: SafetensorsDType, bytes: Buffer): Float32Array {
  if (dtype === 'F32') return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  const n = bytes.length / 2;
  const src = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  const out = new Float32Array(n);
  if (dtype === 'BF16') {
    const u = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) u[i] = src[i] << 16;
  } else {
    for (let i = 0; i < n; i++) out[i] = halfTable[src[i]];
  }
  return out;
}

/** All tensors of a checkpoint, by name, readable as fp32 whole or by rows. */
export class SafetensorsCheckpoint {
  readonly tensors = new Map<string, TensorInfo>();
  private readonly fds = new Map<string, number>();

  constructor(readonly files: string[]) {
    for (const f of files) {
      for (const t of readSafetensorsHeader(f)) {
        if (this.tensors.has(t.name)) throw new EngineError('model-invalid', `tensor ${t.name} appears in two files`);
        this.tensors.set(t.name, t);
      }
    }
  }

  static open(dir: string): SafetensorsCheckpoint {
    return new SafetensorsCheckpoint(checkpointFiles(dir));
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new EngineError('model-invalid', `checkpoint has no tensor ${name}`);
    return t;
  }

  /** Rows [start, start+count) of the tensor seen as [shape[0], rest], as fp32. */
  readRows(name: string, start: number, count: number): Float32Array {
    const t = this.info(name);
    const rowElems = t.shape.slice(1).reduce((a, b) => a * b, 1);
    const eb = ELEMENT_BYTES[t.dtype];
    const rows = t.shape.length === 0 ? 1 : t.shape[0];
    if (start < 0 || start + count > rows) throw new Error(`rows ${start}+${count} out of range for ${name}`);
    let fd = this.fds.get(t.file);
    if (fd === undefined) {
      fd = openSync(t.file, 'r');
      this.fds.set(t.file, fd);
    }
    const bytes = readExactly(fd, count * rowElems * eb, t.offset + start * rowElems * eb, t.file);
    return decode(t.dtype, bytes);
  }

  read(name: string): Float32Array {
    const t = this.info(name);
    return this.readRows(name, 0, t.shape.length === 0 ? 1 : t.shape[0]);
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}
