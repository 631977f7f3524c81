// `downloadModel`: a model from the Hugging Face Hub into the models folder.
//
// Models folder layout:
//   <models>/<owner>--<name>[--<variant>]/   installed models; each has download.json (repo, commit, files)
//   <models>/.downloads/                     in-progress downloads, resumed by the next run; safe to delete
//     <owner>--<name>--<commit12>--<variant|checkpoint>/   the files, `<file>.part` while incomplete
//     <same>.lock                            held by the running download (pid inside)
// A download fills its .downloads folder, then renames the whole folder to its final name in one
// step (same filesystem), so the models folder only ever holds complete, verified models. A
// checkpoint (safetensors) is converted from its .downloads folder into a staging folder that is
// renamed the same way.
import { randomBytes } from 'node:crypto';
import { homedir } from 'node:os';
import { mkdir, open, readFile, rename, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DownloadError } from './errors.js';
import { checkRepoId, checkToken, DEFAULT_HUB_URL, fileOpener, listRepoFiles, resolveCommit, type HubAccess } from './hub.js';
import { formatBytes } from '../../common/format.js';
import type { DownloadProgress, DownloadResult, RepoLayout } from '../../protocol.js';
import { planDownload, type DownloadPlan, type RepoFile } from './layout.js';
import { PART_SUFFIX, transferFile } from './transfer.js';
import { errorMessage } from '../../common/errors.js';
import type { ConvertOptions } from '../convert/index.js';

export { DownloadError, type DownloadFailure } from './errors.js';
export { detectLayout, onnxVariants, planDownload, type DownloadPlan, type RepoFile } from './layout.js';

export const DOWNLOADS_DIR = '.downloads';
export const RECORD_FILE = 'download.json';

/**
 * What a downloaded checkpoint is converted to: a converter dtype, or `int4-cpu` = int4 with
 * accuracy level 4 (int8 compute), which decodes about 4x faster on x86 CPUs
 * (bench/results/2026-11-22-cpu.md) and is what `paligemma convert` hints at there; `int4-cpu-v8`
 * = int4-cpu with an int8 vision tower (1.2 GB less memory at 3B-224, its image features slightly
 * off fp32's: bench/results/2026-12-03-cpu-2core-quiet-vision-int8.md); `int8` = the converter's
 * int8 (per-channel int8 layers and vision tower: onnxruntime's int8 GEMMs on CPUs).
 */
export type ConvertDtype = 'fp32' | 'fp16' | 'int4' | 'int4-cpu' | 'int4-cpu-v8' | 'int8';

export type ConvertCheckpoint = (checkpointDir: string, outDir: string, onProgress?: (message: string, fraction?: number) => void) => Promise<void>;

export interface DiskSpace {
  bavail: number | bigint;
  bsize: number | bigint;
}

export interface DownloadOptions {
  repo: string;
  revision?: string;
  variant?: string;
  modelsDir?: string;
  /** Defaults to $HF_TOKEN. */
  token?: string;
  /** Defaults to $HF_ENDPOINT, else https://huggingface.co. */
  hubUrl?: string;
  /** Replace an installed model of the same name. */
  force?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: DownloadProgress) => void;
  /** Automatic resumes after a network failure (default 3). */
  retries?: number;
  retryDelayMs?: number;
  stallTimeoutMs?: number;
  /** How checkpoints become model folders; null: install the checkpoint unconverted. */
  convert?: ConvertCheckpoint | null;
  /** Weight dtype of a converted checkpoint (default fp32, as the converter); part of the install folder's name. */
  dtype?: ConvertDtype;
  /** Tests inject these. */
  fetch?: typeof fetch;
  statfs?: (path: string) => Promise<DiskSpace>;
}

interface DownloadRecord {
  repo: string;
  revision: string;
  commit: string;
  layout: RepoLayout;
  variant?: string;
  files: RepoFile[];
  hubUrl: string;
  downloadedAt: string;
  converted?: boolean;
}

/** $PALIGEMMA_MODELS_DIR, else $XDG_DATA_HOME/paligemma/models (~/.local/share/paligemma/models). */
export function defaultModelsDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PALIGEMMA_MODELS_DIR) return env.PALIGEMMA_MODELS_DIR;
  return join(env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'paligemma', 'models');
}

export function installName(repo: string, variant?: string): string {
  const base = repo.replace('/', '--');
  return variant ? `${base}--${variant}` : base;
}

// Each dtype: what it asks of the converter, and the converted model's size against the checkpoint's
// (bf16): int4 decoder weights with an fp32 vision tower, or an int8 one (a quarter of fp32's bytes);
// int8 is about half a bf16 checkpoint.
const CONVERSIONS: Record<ConvertDtype, { options: Pick<ConvertOptions, 'dtype' | 'accuracyLevel' | 'visionDtype'>; size: number }> = {
  fp32: { options: { dtype: 'fp32' }, size: 2 },
  fp16: { options: { dtype: 'fp16' }, size: 1 },
  int4: { options: { dtype: 'int4' }, size: 0.5 },
  'int4-cpu': { options: { dtype: 'int4', accuracyLevel: 4 }, size: 0.5 },
  'int4-cpu-v8': { options: { dtype: 'int4', accuracyLevel: 4, visionDtype: 'int8' }, size: 0.35 },
  int8: { options: { dtype: 'int8' }, size: 0.55 },
};

// Room left over besides the files themselves (filesystem metadata, the record, the lock).
const DISK_MARGIN = 64 * 1024 * 1024;

export async function downloadModel(o: DownloadOptions): Promise<DownloadResult> {
  checkRepoId(o.repo);
  const token = o.token ?? (process.env.HF_TOKEN || undefined);
  checkToken(token);
  const hub: HubAccess = {
    repo: o.repo,
    hubUrl: (o.hubUrl ?? (process.env.HF_ENDPOINT || DEFAULT_HUB_URL)).replace(/\/+$/, ''),
    accessToken: token,
    fetch: o.fetch ?? fetch,
  };
  if (o.dtype !== undefined && !(o.dtype in CONVERSIONS)) {
    throw new DownloadError('no-variant', `dtype '${o.dtype}' is not one of ${Object.keys(CONVERSIONS).join(', ')}`);
  }
  const revision = o.revision ?? 'main';
  const modelsDir = o.modelsDir ?? defaultModelsDir();
  const report = (p: DownloadProgress) => o.onProgress?.(p);
  const cancelled = () => {
    if (o.signal?.aborted) throw new DownloadError('cancelled', `download of ${o.repo} cancelled`);
  };

  report({ phase: 'resolve', bytes: 0, total: 0, message: `resolving ${o.repo}@${revision}` });
  const commit = await resolveCommit(hub, revision);
  cancelled();
  const files = await listRepoFiles(hub, commit);
  const plan = planDownload(o.repo, files, o.variant);
  const convert = plan.layout === 'checkpoint' ? await resolveConverter(o.convert, o.dtype ?? 'fp32') : null;
  // Converted checkpoints are named by dtype, ONNX exports by variant; raw checkpoints by neither.
  const target = join(modelsDir, installName(o.repo, plan.variant ?? (convert ? (o.dtype ?? 'fp32') : undefined)));
  const base: Omit<DownloadResult, 'path' | 'downloadedBytes' | 'alreadyInstalled' | 'converted'> = {
    repo: o.repo,
    commit,
    layout: plan.layout,
    variant: plan.variant,
    totalBytes: plan.totalBytes,
  };

  const installed = await readRecord(target);
  if (installed && !o.force) {
    if (installed.repo === o.repo && installed.commit === commit && installed.variant === plan.variant) {
      report({ phase: 'done', bytes: plan.totalBytes, total: plan.totalBytes, message: `${o.repo} is already installed at ${target}` });
      return {
        ...base,
        path: target,
        downloadedBytes: 0,
        alreadyInstalled: true,
        converted: installed.converted !== false,
        pending: installed.converted === false ? 'convert' : undefined,
      };
    }
  }
  if (!o.force && (await exists(target))) {
    const what = installed ? `${installed.repo}@${installed.commit.slice(0, 12)}` : 'something else';
    throw new DownloadError('exists', `${target} already holds ${what}; pass --force to replace it`);
  }

  const downloads = join(modelsDir, DOWNLOADS_DIR);
  await mkdir(downloads, { recursive: true });
  const key = `${installName(o.repo)}--${commit.slice(0, 12)}--${plan.variant ?? 'checkpoint'}`;
  const work = join(downloads, key);
  const release = await acquireLock(join(downloads, `${key}.lock`), o.repo);
  try {
    await mkdir(work, { recursive: true });
    const have = await Promise.all(plan.files.map((f) => presentBytes(work, f)));
    const remaining = plan.totalBytes - have.reduce((a, b) => a + b, 0);
    // A conversion writes the same weights again: up to twice the bytes for fp32 from a bf16 checkpoint.
    const convertedBytes = convert ? plan.totalBytes * CONVERSIONS[o.dtype ?? 'fp32'].size : 0;
    await checkDiskSpace(modelsDir, remaining + convertedBytes + DISK_MARGIN, o.statfs);

    const downloadedBytes = await downloadAll(hub, commit, plan, work, o, report);
    cancelled();

    report({ phase: 'install', bytes: plan.totalBytes, total: plan.totalBytes, message: `installing into ${target}` });
    const record: DownloadRecord = {
      repo: o.repo,
      revision,
      commit,
      layout: plan.layout,
      variant: plan.variant,
      files: plan.files,
      hubUrl: hub.hubUrl,
      downloadedAt: new Date().toISOString(),
    };
    let converted = true;
    let pending: string | undefined;
    if (plan.layout === 'checkpoint' && convert) {
      const staging = join(downloads, `${key}.converting-${randomBytes(4).toString('hex')}`);
      try {
        await convert(work, staging, (message, fraction) => report({ phase: 'convert', bytes: plan.totalBytes, total: plan.totalBytes, message, fraction }));
        if (o.convert === undefined) await nameConvertedModel(staging, o.repo, commit);
        await writeRecord(staging, { ...record, converted: true });
        await replaceInto(staging, target, o.force);
      } catch (e) {
        await rm(staging, { recursive: true, force: true });
        if (e instanceof DownloadError) throw e;
        throw new DownloadError('convert', `${o.repo} downloaded to ${work}, but converting it failed: ${errorMessage(e)}`, { cause: e });
      }
      await rm(work, { recursive: true, force: true });
    } else {
      if (plan.layout === 'checkpoint') {
        converted = false;
        pending = 'convert';
      }
      await writeRecord(work, { ...record, converted });
      await replaceInto(work, target, o.force);
    }
    report({ phase: 'done', bytes: plan.totalBytes, total: plan.totalBytes, message: `installed ${o.repo} at ${target}` });
    return { ...base, path: target, downloadedBytes, alreadyInstalled: false, converted, pending };
  } finally {
    await release();
  }
}

async function downloadAll(hub: HubAccess, commit: string, plan: DownloadPlan, work: string, o: DownloadOptions, report: (p: DownloadProgress) => void): Promise<number> {
  let overall = 0;
  let fetched = 0;
  const retries = o.retries ?? 3;
  for (const file of plan.files) {
    const finalPath = join(work, file.path);
    if (file.size === 0) {
      // Nothing to fetch (and a range probe of an empty file is a 416).
      await mkdir(dirname(finalPath), { recursive: true });
      await writeFile(finalPath, '');
    }
    if ((await stat(finalPath).catch(() => null))?.size === file.size) {
      overall += file.size;
      report({ phase: 'download', bytes: overall, total: plan.totalBytes, file: file.path, fileBytes: file.size, fileTotal: file.size });
      continue;
    }
    const startOverall = overall;
    for (let attempt = 0; ; attempt++) {
      let fileBytes = 0;
      let first = true;
      try {
        const openRange = await fileOpener(hub, commit, file);
        await transferFile({
          file,
          finalPath,
          open: openRange,
          signal: o.signal,
          stallTimeoutMs: o.stallTimeoutMs ?? 60_000,
          onBytes: (delta, at) => {
            fileBytes = at;
            // The first call reports what a previous attempt or run left in the .part file.
            if (!first && delta > 0) fetched += delta;
            first = false;
            report({ phase: 'download', bytes: startOverall + at, total: plan.totalBytes, file: file.path, fileBytes: at, fileTotal: file.size });
          },
        });
        break;
      } catch (e) {
        const retryable = e instanceof DownloadError && e.reason === 'network' && attempt < retries && !o.signal?.aborted;
        if (!retryable) throw e;
        report({
          phase: 'download',
          bytes: startOverall + fileBytes,
          total: plan.totalBytes,
          file: file.path,
          fileBytes,
          fileTotal: file.size,
          message: `${errorMessage(e)}; resuming (${attempt + 1}/${retries})`,
        });
        await sleep((o.retryDelayMs ?? 1000) * 2 ** attempt, o.signal);
      }
    }
    overall = startOverall + file.size;
  }
  return fetched;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

async function presentBytes(work: string, f: RepoFile): Promise<number> {
  const p = join(work, f.path);
  const done = await stat(p).catch(() => null);
  if (done?.size === f.size) return f.size;
  const part = await stat(p + PART_SUFFIX).catch(() => null);
  return part && part.size <= f.size ? part.size : 0;
}

export async function checkDiskSpace(dir: string, needed: number, probe: (path: string) => Promise<DiskSpace> = statfs): Promise<void> {
  const s = await probe(dir);
  const free = Number(s.bavail) * Number(s.bsize);
  if (free < needed) {
    throw new DownloadError('disk-space', `not enough disk space in ${dir}: the download needs ${formatBytes(needed)}, ${formatBytes(free)} free`);
  }
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null)) !== null;
}

async function readRecord(dir: string): Promise<DownloadRecord | null> {
  try {
    return JSON.parse(await readFile(join(dir, RECORD_FILE), 'utf8')) as DownloadRecord;
  } catch {
    return null;
  }
}

async function writeRecord(dir: string, record: DownloadRecord): Promise<void> {
  await writeFile(join(dir, RECORD_FILE), JSON.stringify(record, null, 2) + '\n');
}

/** Renames `from` to `to` in one step; with `force`, an existing `to` is moved aside first. */
async function replaceInto(from: string, to: string, force?: boolean): Promise<void> {
  if (force && (await exists(to))) {
    const aside = `${to}.replaced-${randomBytes(4).toString('hex')}`;
    await rename(to, aside);
    try {
      await rename(from, to);
    } catch (e) {
      await rename(aside, to).catch(() => {});
      throw e;
    }
    await rm(aside, { recursive: true, force: true });
    return;
  }
  await rename(from, to);
}

/** An exclusive lock file holding our pid; a lock whose process is gone is taken over. */
async function acquireLock(path: string, repo: string): Promise<() => Promise<void>> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      return () => rm(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(await readFile(path, 'utf8').catch(() => ''));
      if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
        throw new DownloadError('busy', `${repo} is already being downloaded by process ${pid}`);
      }
      await rm(path, { force: true });
    }
  }
  throw new DownloadError('busy', `cannot lock ${path}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// The converter (daemon/engine/convert) is loaded only when a checkpoint needs it: it pulls in
// the graph builders, which a plain ONNX download never uses.
async function resolveConverter(option: ConvertCheckpoint | null | undefined, dtype: ConvertDtype): Promise<ConvertCheckpoint | null> {
  if (option !== undefined) return option;
  const { convert } = await import('../convert/index.js');
  const { options } = CONVERSIONS[dtype];
  return async (input, output, onProgress) => {
    await convert({ input, output, ...options, onProgress: (p) => onProgress?.(p.message, p.fraction) });
  };
}

/** The converter names the model after its input folder (our .downloads key): use the repo id. */
async function nameConvertedModel(dir: string, repo: string, commit: string): Promise<void> {
  const path = join(dir, 'manifest.json');
  const manifest = JSON.parse(await readFile(path, 'utf8')) as { name?: string; source?: Record<string, unknown> };
  manifest.name = repo;
  if (manifest.source) manifest.source.path = `${repo}@${commit}`;
  await writeFile(path, JSON.stringify(manifest, null, 2) + '\n');
}
