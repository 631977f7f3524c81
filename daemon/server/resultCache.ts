// Results keyed by what determines them: image content, task, prompt, model identity and decoding
// options. Bounded in memory; optionally persisted as one small JSON file per key in a folder.
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DecodingOptions } from '../protocol.js';
import { sha256 } from './imageSource.js';
import { Lru } from './lru.js';

export interface CacheKeyParts {
  imageSha256: string;
  task: string;
  prompt: string;
  modelId: string;
  decoding: DecodingOptions;
  /** The output grammar decoding was held to, if any (see backend.ts Grammar). */
  grammar?: string;
}

export function cacheKey(k: CacheKeyParts): string {
  const decodingSorted = Object.fromEntries(Object.entries(k.decoding).sort(([a], [b]) => a.localeCompare(b)));
  const parts: unknown[] = [k.imageSha256, k.task, k.prompt, k.modelId, decodingSorted];
  // Appended only when present, so keys of unconstrained results stay what they were on disk.
  if (k.grammar !== undefined) parts.push(k.grammar);
  return sha256(JSON.stringify(parts));
}

export interface ResultCacheOptions {
  maxEntries: number;
  /** Persist results here too (survives daemon restarts). */
  dir?: string;
  maxDiskEntries?: number;
}

export class ResultCache<V extends object> {
  private readonly memory: Lru<V>;
  private writesSincePrune = 0;
  hits = 0;
  misses = 0;

  constructor(private readonly options: ResultCacheOptions) {
    this.memory = new Lru<V>(options.maxEntries);
  }

  get entries(): number {
    return this.memory.size;
  }

  async get(key: string): Promise<V | undefined> {
    let v = this.memory.get(key);
    if (v === undefined && this.options.dir) {
      v = await readFile(join(this.options.dir, `${key}.json`), 'utf8').then(
        (s) => JSON.parse(s) as V,
        () => undefined,
      );
      if (v !== undefined) this.memory.set(key, v);
    }
    if (v === undefined) this.misses++;
    else this.hits++;
    return v;
  }

  async set(key: string, value: V): Promise<void> {
    this.memory.set(key, value);
    const dir = this.options.dir;
    if (!dir) return;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // Write then rename, so a reader never sees half a file.
    const tmp = join(dir, `${key}.${process.pid}.tmp`);
    await writeFile(tmp, JSON.stringify(value), { mode: 0o600 });
    await rename(tmp, join(dir, `${key}.json`));
    if (++this.writesSincePrune >= 64) {
      this.writesSincePrune = 0;
      await this.prune();
    }
  }

  clearMemory(): void {
    this.memory.clear();
  }

  /** Keeps the disk cache to maxDiskEntries files, dropping the least recently written. */
  async prune(): Promise<void> {
    const dir = this.options.dir;
    const max = this.options.maxDiskEntries ?? 10_000;
    if (!dir) return;
    const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.json'));
    if (names.length <= max) return;
    const withTimes = await Promise.all(
      names.map(async (n) => ({
        n,
        t: await stat(join(dir, n)).then(
          (s) => s.mtimeMs,
          () => 0,
        ),
      })),
    );
    withTimes.sort((a, b) => a.t - b.t);
    for (const { n } of withTimes.slice(0, names.length - max)) await unlink(join(dir, n)).catch(() => {});
  }
}
