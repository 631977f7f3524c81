// The docs core reads each image a diagnostic is about (to tell a damaged or unsupported file from a
// good one). Diagnostics are computed again after every pause in typing, so the bytes of unchanged
// files (same size and modification time) are kept, up to a budget, instead of read again.
import { readFile, stat } from 'node:fs/promises';
import { nodeFileAccess, type FileStat, type ImageFileAccess } from '../alttext/imageFiles.js';

export const CACHE_BUDGET_BYTES = 64 * 1024 * 1024;

export function cachedFileAccess(budget = CACHE_BUDGET_BYTES): ImageFileAccess & { reads: number } {
  const stamps = new Map<string, string>();
  // Insertion order is use order (entries are re-inserted when used): the first is the oldest.
  const bytes = new Map<string, { stamp: string; data: Uint8Array }>();
  let held = 0;
  const access = {
    reads: 0,
    async stat(path: string): Promise<FileStat | undefined> {
      stamps.delete(path);
      const st = await nodeFileAccess.stat(path);
      if (st?.type === 'file') {
        const mtime = await stat(path).then(
          (s) => s.mtimeMs,
          () => undefined,
        );
        if (mtime !== undefined) stamps.set(path, `${st.size}:${mtime}`);
      }
      return st;
    },
    async readFile(path: string): Promise<Uint8Array> {
      const stamp = stamps.get(path);
      const hit = bytes.get(path);
      if (hit) {
        bytes.delete(path);
        if (stamp !== undefined && hit.stamp === stamp) {
          bytes.set(path, hit);
          return hit.data;
        }
        held -= hit.data.length;
      }
      const data = await readFile(path);
      access.reads++;
      if (stamp !== undefined && data.length <= budget) {
        bytes.set(path, { stamp, data });
        held += data.length;
        for (const [key, old] of bytes) {
          if (held <= budget) break;
          bytes.delete(key);
          held -= old.data.length;
        }
      }
      return data;
    },
  };
  return access;
}
