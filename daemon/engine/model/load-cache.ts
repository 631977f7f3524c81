// The load cache: onnxruntime's optimised graph with its pre-packed weights, saved beside the model
// at the first CPU load and opened instead of the model afterwards. Loading a graph spends most of
// its time on work whose result never changes for one model on one machine: graph optimisations
// (constant folding, fusions) and pre-packing weights into the kernels' layouts (MatMulNBits
// repacks every int4 matrix). Saved with `session.save_external_prepacked_constant_initializers`,
// the pre-packed weights sit in the cache's external data file, which onnxruntime memory-maps,
// so a later load neither recomputes them nor copies them onto the heap.
//   <graph dir>/.ort-cache/<graph file>.<key>/model.onnx (+ model.onnx.data)
// The key hashes what the saved graph depends on: onnxruntime's version, the execution provider,
// the CPU, and the name, size and time of every ONNX file and weight file beside the graph (a
// graph may read a sibling's weights, as decoder-loop.onnx reads decoder.onnx.data). A changed
// model or onnxruntime gets another key; the entries of older keys are removed when a new one is
// written. A folder that cannot be written loads without a cache.
// Off unless PALIGEMMA_LOAD_CACHE=1 (`serve --load-cache`, the `paligemma.loadCache` setting): on
// the quiet 2-core machine the full 3B-224 int4 model loads in 4.4-4.6 s from it against 7.8-11.3 s
// without (bench/results/2026-12-03-cpu-2core-quiet-vision-int8.md), but the entries take about
// twice the model's disk (the original weights are kept beside the packed ones) and the first load,
// which writes them, takes about twice as long.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { basename, dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';

export const LOAD_CACHE_DIR = '.ort-cache';
const MODEL = 'model.onnx';
const DATA = 'model.onnx.data';

export type LoadCacheUse = 'hit' | 'built' | 'off';

/** Whether CPU loads use the cache: only with PALIGEMMA_LOAD_CACHE=1. */
export function loadCacheEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.PALIGEMMA_LOAD_CACHE === '1';
}

/** The model files a graph may depend on: ONNX graphs and their weight files in its folder. */
function modelFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => /\.onnx(?:$|[._])/.test(f))
    .sort();
}

/** The cache entry of `graph` for these options: its folder (which exists only once complete). */
export function loadCacheEntry(graph: string, options: ort.InferenceSession.SessionOptions): string {
  const dir = dirname(graph);
  const h = createHash('sha256');
  h.update(JSON.stringify([ort.env.versions.node ?? ort.env.versions.common, options.executionProviders, options.graphOptimizationLevel, process.arch, cpus()[0]?.model]));
  for (const f of modelFiles(dir)) {
    const st = statSync(join(dir, f));
    h.update(`\0${f}\0${st.size}\0${st.mtimeMs}`);
  }
  return join(dir, LOAD_CACHE_DIR, `${basename(graph)}.${h.digest('hex').slice(0, 16)}`);
}

/** Whether `graph` has a complete cache entry for these options (its next load is a 'hit'). */
export function hasLoadCacheEntry(graph: string, options: ort.InferenceSession.SessionOptions): boolean {
  return existsSync(join(loadCacheEntry(graph, options), MODEL));
}

/**
 * Opens `graph` through its cache entry: the saved graph when there is one ('hit'), else the graph
 * itself while onnxruntime saves the entry ('built'), or plainly when the folder cannot take one ('off').
 */
export async function createCachedSession(
  graph: string,
  options: ort.InferenceSession.SessionOptions,
  create: (path: string, options: ort.InferenceSession.SessionOptions) => Promise<ort.InferenceSession> = (p, o) => ort.InferenceSession.create(p, o),
): Promise<{ session: ort.InferenceSession; use: LoadCacheUse }> {
  let entry: string;
  try {
    entry = loadCacheEntry(graph, options);
  } catch {
    return { session: await create(graph, options), use: 'off' };
  }
  if (existsSync(join(entry, MODEL))) {
    try {
      // Already optimised: running the optimisers again would only find nothing to do.
      return { session: await create(join(entry, MODEL), { ...options, graphOptimizationLevel: 'disabled' }), use: 'hit' };
    } catch {
      // A damaged entry (a file removed, a disk error): made again below.
      rmSync(entry, { recursive: true, force: true });
    }
  }
  const tmp = `${entry}.tmp-${process.pid}`;
  try {
    mkdirSync(tmp, { recursive: true });
  } catch {
    return { session: await create(graph, options), use: 'off' };
  }
  let session: ort.InferenceSession;
  try {
    session = await create(graph, {
      ...options,
      optimizedModelFilePath: join(tmp, MODEL),
      extra: {
        ...(options.extra ?? {}),
        session: {
          ...((options.extra?.session as Record<string, unknown> | undefined) ?? {}),
          optimized_model_external_initializers_file_name: DATA,
          optimized_model_external_initializers_min_size_in_bytes: '1024',
          save_external_prepacked_constant_initializers: '1',
        },
      },
    });
  } catch {
    // Saving failed (a full disk...): the model itself decides whether it loads.
    rmSync(tmp, { recursive: true, force: true });
    return { session: await create(graph, options), use: 'off' };
  }
  try {
    // Entries of other keys for this graph are stale (the model or onnxruntime changed).
    const prefix = `${basename(graph)}.`;
    for (const old of readdirSync(dirname(entry))) {
      const path = join(dirname(entry), old);
      if (old.startsWith(prefix) && path !== tmp && !old.includes('.tmp-')) rmSync(path, { recursive: true, force: true });
    }
    renameSync(tmp, entry);
  } catch {
    // Another process put the same entry in place first; this one is not needed.
    rmSync(tmp, { recursive: true, force: true });
  }
  return { session, use: 'built' };
}
