// `paligemma bench --peer transformers.js`: ours and transformers.js on the same files (the
// transformers.js export layout, which both load), each side in fresh processes, alternating so
// that a busy machine slows both alike. Ours is this CLI's own `bench --model <export>`; the peer
// is bench/peer/transformers-js.mjs (transformers.js brings onnxruntime-node 1.30, which cannot
// share a process with our pinned 1.29). The same run measures how many bytes one decode step
// reads and how fast this machine copies memory, so decode can be set against its bandwidth floor.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConvertDtype, ConvertOptions } from '../engine/convert/index.js';
import { TRANSFORMERS_JS_DTYPE } from '../engine/convert/transformers-js-export.js';
import { readTransformersJsFolder, transformersJsVariants } from '../engine/transformers-js/folder.js';
import { hasLoadCacheEntry, loadCacheEnabled } from '../engine/model/load-cache.js';
import { readManifestSync } from '../engine/model/manifest.js';
import { sessionOptions } from '../engine/model/providers.js';
import { UsageError } from './args.js';
import { median } from './benchCommon.js';

export const PEERS = ['transformers.js'] as const;

/** The fields both sides report, medians over their processes. */
export const SIDE_FIELDS = ['load_ms', 'first_token_ms', 'ms_per_token', 'request_ms', 'cold_ms', 'peak_rss_mb'] as const;
export type SideRow = Record<(typeof SIDE_FIELDS)[number], number>;

export interface PeerBenchOptions {
  peer: string;
  model?: string;
  random?: string;
  convert: Pick<ConvertOptions, 'visionDtype' | 'accuracyLevel' | 'activations' | 'standardOps' | 'layers' | 'visionLayers'> & { dtype: ConvertDtype };
  /**
   * Our side's own files, where they differ from the peer's: a layout (ours reads its own as well
   * as the export), an accuracy level (`download --dtype int4-cpu` installs level 4) and a vision
   * tower format (int4-cpu-v8's int8), or a folder. Unset, ours runs the peer's files: the runtimes
   * alone are compared.
   */
  ours?: { layout?: Layout; accuracyLevel?: ConvertOptions['accuracyLevel']; visionDtype?: ConvertOptions['visionDtype']; model?: string };
  ep: string;
  threads?: number;
  newTokens: number;
  runs: number;
  processes: number;
  json: boolean;
  /** bench's `--random` cache: converts the preset (into the given layout) unless already there. */
  randomModel: (preset: string, o: PeerBenchOptions['convert'] & { layout: Layout }) => Promise<string>;
}

type Layout = NonNullable<ConvertOptions['layout']>;

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const PEER_SCRIPT = join(ROOT, 'bench/peer/transformers-js.mjs');
const CLI = join(ROOT, 'out/daemon/cli/main.js');

/** Runs one side's process and returns its last stdout line as JSON. */
function runSide(args: string[], what: string): Promise<Record<string, unknown>> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || !last.startsWith('{')) {
        reject(new Error(`${what} exited with ${code}: ${err.trim().split('\n').slice(-5).join('\n')}`));
        return;
      }
      resolvePromise(JSON.parse(last) as Record<string, unknown>);
    });
  });
}

/** Our side's row, in the peer's field names. */
export function oursRow(bench: Record<string, unknown>): SideRow {
  const n = (k: string) => Number(bench[k]);
  return {
    load_ms: n('load_ms'),
    first_token_ms: n('first_token_ms'),
    ms_per_token: n('decode_ms_per_token'),
    request_ms: n('request_ms'),
    cold_ms: n('cold_ms'),
    peak_rss_mb: n('peak_rss_mb'),
  };
}

/** Medians per field over one side's processes. */
export function medianRow(rows: readonly SideRow[]): SideRow {
  return Object.fromEntries(SIDE_FIELDS.map((k) => [k, Math.round(median(rows.map((r) => r[k])) * 100) / 100])) as SideRow;
}

/**
 * How many times faster ours is (peer time / our time; above 1: ours is faster), and our peak
 * memory as a fraction of the peer's.
 */
export function ratios(ours: SideRow, peer: SideRow): Record<string, number> {
  const r = (a: number, b: number) => Math.round((a / b) * 1000) / 1000;
  return {
    load: r(peer.load_ms, ours.load_ms),
    first_token: r(peer.first_token_ms, ours.first_token_ms),
    decode: r(peer.ms_per_token, ours.ms_per_token),
    request: r(peer.request_ms, ours.request_ms),
    cold: r(peer.cold_ms, ours.cold_ms),
    peak_rss_ours_over_peer: r(ours.peak_rss_mb, peer.peak_rss_mb),
  };
}

/**
 * Bytes one decode step reads: every decoder weight (each layer's and the lm_head's, which a
 * one-token step multiplies in full) and, on average over the request, the KV cache.
 */
export function decodeBytesPerToken(dir: string, variant: string, promptTokens: number, newTokens: number): { weights: number; kv: number; total: number } {
  const folder = readTransformersJsFolder(dir, variant);
  const onnxDir = dirname(folder.graphs.decoder_model_merged);
  const base = folder.graphs.decoder_model_merged.slice(onnxDir.length + 1);
  let weights = statSync(folder.graphs.decoder_model_merged).size;
  for (const f of readdirSync(onnxDir)) if (f.startsWith(`${base}_data`)) weights += statSync(join(onnxDir, f)).size;
  const t = folder.manifest.text;
  const kvBytes = folder.manifest.kvDtype === 'float16' ? 2 : 4;
  const kv = Math.round(2 * t.numLayers * t.numKvHeads * t.headDim * kvBytes * (promptTokens + newTokens / 2));
  return { weights, kv, total: weights + kv };
}

/** Memory traffic of a large copy (bytes read + bytes written per second, best of several), one thread. */
export function copyBandwidth(bytes = 256 << 20, repeats = 5): number {
  const a = Buffer.alloc(bytes, 1);
  const b = Buffer.alloc(bytes);
  a.copy(b); // touch both
  let best = Infinity;
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    a.copy(b);
    best = Math.min(best, performance.now() - t);
  }
  return (2 * bytes) / (best / 1000);
}

/** Whether each graph our side loads (CPU, host loop) has its load cache entry for these options already. */
function hasLoadCache(dir: string, variant: string, threads?: number): boolean {
  const own = transformersJsVariants(dir) ? undefined : readManifestSync(dir).files;
  const graphs = own ? [own.vision, own.decoder].map((f) => join(dir, f)) : Object.values(readTransformersJsFolder(dir, variant).graphs);
  return graphs.every((g) => hasLoadCacheEntry(g, sessionOptions('cpu', threads)));
}

export async function runPeerBench(o: PeerBenchOptions): Promise<number> {
  if (!(PEERS as readonly string[]).includes(o.peer)) throw new UsageError(`unknown --peer '${o.peer}' (one of ${PEERS.join(', ')})`);
  if (o.ep !== 'cpu') throw new UsageError('--peer runs on the CPU only: add --ep cpu');
  if (!existsSync(PEER_SCRIPT)) throw new UsageError(`--peer needs the repository checkout (${PEER_SCRIPT} is missing)`);
  const variant = TRANSFORMERS_JS_DTYPE[o.convert.dtype];
  const dir = o.model ? resolve(o.model) : await o.randomModel(o.random!, { ...o.convert, layout: 'transformers.js' });
  const variants = transformersJsVariants(dir);
  if (!variants?.includes(variant)) {
    throw new UsageError(
      `${dir} is not a transformers.js export with the '${variant}' variant (it has ${variants?.join(', ') ?? 'none'}): convert one with --random, or pass its --dtype`,
    );
  }

  const oursLayout = o.ours?.layout ?? 'transformers.js';
  const oursAccuracy = o.ours?.accuracyLevel ?? o.convert.accuracyLevel ?? 0;
  const oursVision = o.ours?.visionDtype ?? o.convert.visionDtype;
  const sameFiles = !o.ours?.model && oursLayout === 'transformers.js' && oursAccuracy === (o.convert.accuracyLevel ?? 0) && oursVision === o.convert.visionDtype;
  const oursDir = o.ours?.model
    ? resolve(o.ours.model)
    : sameFiles
      ? dir
      : await o.randomModel(o.random!, { ...o.convert, accuracyLevel: oursAccuracy, visionDtype: oursVision, layout: oursLayout });

  const oursArgs = [CLI, 'bench', '--model', oursDir, '--ep', 'cpu', '--new-tokens', String(o.newTokens), '--runs', String(o.runs), '--json'];
  if (o.threads) oursArgs.push('--threads', String(o.threads));
  const peerArgs = [PEER_SCRIPT, 'bench', JSON.stringify({ dir, dtype: variant, newTokens: o.newTokens, runs: o.runs, threads: o.threads })];
  const ours: SideRow[] = [];
  const peer: SideRow[] = [];
  let oursInfo: Record<string, unknown> = {};
  let peerInfo: Record<string, unknown> = {};
  // The load cache is made by the first load on this machine, once per model: that process is
  // reported on its own (cache_build), and the timed ones load from the cache as users' loads do.
  let cacheBuild: SideRow | undefined;
  const cache = loadCacheEnabled();
  if (cache && !hasLoadCache(oursDir, variant, o.threads)) {
    process.stderr.write('ours: first load on this machine, making the load cache\n');
    cacheBuild = oursRow(await runSide(oursArgs, 'our side'));
  }
  for (let p = 0; p < o.processes; p++) {
    process.stderr.write(`process ${p + 1}/${o.processes}: ours, then ${o.peer}\n`);
    oursInfo = await runSide(oursArgs, 'our side');
    ours.push(oursRow(oursInfo));
    peerInfo = await runSide(peerArgs, `the ${o.peer} side`);
    peer.push(Object.fromEntries(SIDE_FIELDS.map((k) => [k, Number(peerInfo[k])])) as SideRow);
  }
  const oursMedian = medianRow(ours);
  const peerMedian = medianRow(peer);
  const folder = readTransformersJsFolder(dir, variant);
  const promptTokens = folder.manifest.image.numImageTokens + 4; // <bos> "caption en" "\n": about four text tokens
  const bytes = decodeBytesPerToken(dir, variant, promptTokens, o.newTokens);
  const copy = copyBandwidth();
  // A copy moves each byte twice (read, write); decode mostly reads: its floor is bytes / traffic rate.
  const floorMs = (bytes.total / copy) * 1000;
  const result = {
    model: folder.manifest.name,
    layout: 'transformers.js',
    variant,
    decoder_layers: folder.manifest.text.numLayers,
    new_tokens: o.newTokens,
    runs: o.runs,
    processes: o.processes,
    ours: {
      ...oursMedian,
      onnxruntime: '1.29.0',
      files: sameFiles ? 'the peer’s' : oursDir,
      layout: o.ours?.model ? (transformersJsVariants(oursDir) ? 'transformers.js' : 'paligemma') : oursLayout,
      accuracy_level: o.ours?.model ? oursInfo.accuracy_level : oursAccuracy,
      vision_weights: oursInfo.vision_weights,
      load_cache: cache ? 'on' : 'off',
      cache_build: cacheBuild,
      warnings: oursInfo.warnings,
    },
    peer: { ...peerMedian, runtime: o.peer, onnxruntime: peerInfo.onnxruntime, accuracy_level: o.random ? (o.convert.accuracyLevel ?? 0) : undefined },
    ratios: ratios(oursMedian, peerMedian),
    per_process: { ours, peer },
    decode_bytes_per_token: bytes.total,
    decode_weight_bytes: bytes.weights,
    decode_kv_bytes_per_token: bytes.kv,
    copy_gb_per_s: Math.round((copy / 1e9) * 100) / 100,
    bandwidth_floor_ms_per_token: Math.round(floorMs * 100) / 100,
    ours_decode_over_floor: Math.round((oursMedian.ms_per_token / floorMs) * 100) / 100,
  };
  if (o.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    for (const [k, v] of Object.entries(result)) if (k !== 'per_process') process.stdout.write(`${k.padEnd(30)} ${typeof v === 'object' ? JSON.stringify(v) : v}\n`);
  }
  return 0;
}
