// Writes large initializers into a `<graph>.onnx.data` sidecar as they are produced, so that the
// protobuf stays small and no tensor is held in memory longer than it takes to write it.
import { closeSync, openSync, writeSync } from 'node:fs';
import { basename } from 'node:path';

export interface ExternalLocation {
  location: string;
  offset: number;
  length: number;
}

// onnxruntime memory-maps external data when an offset is aligned to the page/allocation
// granularity; big tensors get 4096-byte offsets, small ones 64 (enough for SIMD loads).
const PAGE_ALIGN = 4096;
const SMALL_ALIGN = 64;
const PAGE_ALIGN_FROM = 1 << 16;

export class ExternalDataWriter {
  readonly location: string;
  private fd: number | null;
  private size = 0;
  private static readonly zeros = new Uint8Array(PAGE_ALIGN);

  constructor(
    readonly path: string,
    private readonly writeFn: typeof writeSync = writeSync,
  ) {
    this.location = basename(path);
    this.fd = openSync(path, 'w');
  }

  get bytesWritten(): number {
    return this.size;
  }

  /** Starts a tensor of `length` bytes at an aligned offset; chunks must add up to `length`. */
  begin(length: number): { write(chunk: ArrayBufferView): void; end(): ExternalLocation } {
    const align = length >= PAGE_ALIGN_FROM ? PAGE_ALIGN : SMALL_ALIGN;
    const pad = (align - (this.size % align)) % align;
    if (pad) this.writeRaw(ExternalDataWriter.zeros.subarray(0, pad));
    const offset = this.size;
    let written = 0;
    return {
      write: (chunk) => {
        written += chunk.byteLength;
        if (written > length) throw new Error(`external tensor overflow: ${written} > ${length} bytes`);
        this.writeRaw(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      },
      end: () => {
        if (written !== length) throw new Error(`external tensor incomplete: ${written} of ${length} bytes`);
        return { location: this.location, offset, length };
      },
    };
  }

  write(data: ArrayBufferView): ExternalLocation {
    const t = this.begin(data.byteLength);
    t.write(data);
    return t.end();
  }

  private writeRaw(bytes: Uint8Array): void {
    if (this.fd === null) throw new Error('external data file already closed');
    let done = 0;
    while (done < bytes.length) {
      done += this.writeFn(this.fd, bytes, done, bytes.length - done, this.size + done);
    }
    this.size += bytes.length;
  }

  close(): void {
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
    }
  }
}
