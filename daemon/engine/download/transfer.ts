// One file from the Hub into `<final>`, through `<final>.part`: resumed from the bytes already
// there, hashed as it arrives, renamed into place only once its size and hash are right.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DownloadError } from './errors.js';
import type { RepoFile } from './layout.js';
import { errorMessage } from '../../common/errors.js';

/** A body stream starting at byte `start` of the file (the server may restart at 0). */
export interface OpenedRange {
  start: number;
  body: ReadableStream<Uint8Array>;
}

export type OpenRange = (offset: number, signal: AbortSignal) => Promise<OpenedRange>;

export interface TransferOptions {
  file: RepoFile;
  finalPath: string;
  open: OpenRange;
  /** Called with each chunk's length (and with the resumed length once, at the start). */
  onBytes?: (delta: number, fileBytes: number) => void;
  signal?: AbortSignal;
  /** Abort when no byte arrives for this long. */
  stallTimeoutMs?: number;
}

export const PART_SUFFIX = '.part';

/** The hash the Hub lists for the file: sha256 for LFS/Xet files, git's blob sha1 otherwise. */
function expectedHash(file: RepoFile): { algorithm: 'sha256' | 'sha1'; hex: string; start(h: Hash): void } | null {
  if (file.sha256) return { algorithm: 'sha256', hex: file.sha256.toLowerCase(), start: () => {} };
  if (file.oid && /^[0-9a-f]{40}$/i.test(file.oid)) {
    return { algorithm: 'sha1', hex: file.oid.toLowerCase(), start: (h) => h.update(`blob ${file.size}\0`) };
  }
  return null;
}

async function sizeOf(path: string): Promise<number | null> {
  const s = await stat(path).catch(() => null);
  return s && s.isFile() ? s.size : null;
}

/** Bytes of `path` already fed to `hash` (re-read on resume: the hash state is not kept on disk). */
async function hashExisting(path: string, hash: Hash, signal?: AbortSignal): Promise<void> {
  for await (const chunk of createReadStream(path, { signal })) hash.update(chunk as Buffer);
}

export async function transferFile(o: TransferOptions): Promise<void> {
  const { file, finalPath } = o;
  const part = finalPath + PART_SUFFIX;
  await mkdir(dirname(finalPath), { recursive: true });

  let offset = (await sizeOf(part)) ?? 0;
  if (offset > file.size) {
    await rm(part, { force: true });
    offset = 0;
  }
  const check = expectedHash(file);
  let hash: Hash | null = null;
  const restartHash = () => {
    if (!check) return;
    hash = createHash(check.algorithm);
    check.start(hash);
  };
  restartHash();
  if (offset > 0 && hash) await hashExisting(part, hash, o.signal);
  o.onBytes?.(offset, offset);

  if (offset < file.size || file.size === 0) {
    const local = new AbortController();
    const abortFromOuter = () => local.abort(o.signal?.reason);
    o.signal?.addEventListener('abort', abortFromOuter, { once: true });
    let stalled = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      if (!o.stallTimeoutMs) return;
      clearTimeout(timer);
      timer = setTimeout(() => {
        stalled = true;
        local.abort(new Error('stalled'));
      }, o.stallTimeoutMs);
    };
    const fh = await open(part, offset > 0 ? 'a' : 'w');
    try {
      arm();
      const opened = await o.open(offset, local.signal);
      if (opened.start !== offset) {
        if (opened.start !== 0) {
          await opened.body.cancel();
          throw new DownloadError('network', `${file.path}: the server answered a resume at ${offset} with bytes from ${opened.start}`);
        }
        // The server ignored the range: start over.
        await fh.truncate(0);
        o.onBytes?.(-offset, 0);
        offset = 0;
        restartHash();
      }
      const reader = opened.body.getReader();
      let position = offset;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        arm();
        if (position + value.byteLength > file.size) {
          await reader.cancel();
          await fh.close().catch(() => {});
          await rm(part, { force: true });
          throw new DownloadError('integrity', `${file.path}: the server sent more than the ${file.size} bytes the Hub lists`);
        }
        await fh.write(value, 0, value.byteLength, null);
        (hash as Hash | null)?.update(value);
        position += value.byteLength;
        o.onBytes?.(value.byteLength, position);
      }
      offset = position;
    } catch (e) {
      if (e instanceof DownloadError) throw e;
      if (o.signal?.aborted) throw new DownloadError('cancelled', `download of ${file.path} cancelled`, { cause: e });
      if (stalled) {
        throw new DownloadError('network', `${file.path}: no data for ${o.stallTimeoutMs} ms (kept ${offset} bytes for a resume)`, { cause: e });
      }
      throw asNetworkError(file.path, e);
    } finally {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', abortFromOuter);
      await fh.close().catch(() => {});
    }
  }

  if (offset < file.size) {
    throw new DownloadError('network', `${file.path}: connection closed after ${offset} of ${file.size} bytes (kept for a resume)`);
  }
  if (check && hash) {
    const got = (hash as Hash).digest('hex');
    if (got !== check.hex) {
      await rm(part, { force: true });
      throw new DownloadError('integrity', `${file.path}: ${check.algorithm} mismatch (expected ${check.hex}, got ${got}); the corrupt download was deleted, try again`);
    }
  }
  await rename(part, finalPath);
}

export function asNetworkError(what: string, e: unknown): DownloadError {
  if (e instanceof DownloadError) return e;
  const cause = (e as { cause?: { code?: string; message?: string } })?.cause;
  const detail = [errorMessage(e), cause?.code ?? cause?.message].filter(Boolean).join(': ');
  return new DownloadError('network', `${what}: network error (${detail}); run the download again to resume`, { cause: e });
}
