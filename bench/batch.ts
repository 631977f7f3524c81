// `node out/bench/batch.js [--random paligemma-3b-224] [--layers 2] [--batches 1,4,8] [--runs 3]
// [--new-tokens 16] [--accuracy-level 4] [--decode-loop host] [--out bench/results/<name>]`:
// images per second of `generateBatch` at each batch size against the same images run one at a
// time with `generate`, in the same process and run, medians of --runs. Two workloads: every row
// makes exactly --new-tokens tokens ('equal'), and row i of B makes about (i + 1) / B of them
// ('mixed': rows finish at different steps and leave the batch; also timed with the finished rows
// fed pads instead, 'padded', as where the cache is in device memory). Fresh images every time (the
// engine caches image features per image). Writes <out>.jsonl and <out>.md when --out is given.
import { writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { randomModel } from '../daemon/cli/bench.js';
import { median, testImage } from '../daemon/cli/benchCommon.js';
import { ACCURACY_LEVELS } from '../daemon/engine/convert/index.js';
import { DECODE_LOOPS, PaliGemma, type BatchItem, type DecodeLoop } from '../daemon/engine/index.js';
import { ModelSessions } from '../daemon/engine/model/runtime.js';

const { values } = parseArgs({
  options: {
    random: { type: 'string', default: 'paligemma-3b-224' },
    layers: { type: 'string', default: '2' },
    'vision-layers': { type: 'string' },
    batches: { type: 'string', default: '1,4,8' },
    runs: { type: 'string', default: '3' },
    'new-tokens': { type: 'string', default: '16' },
    'accuracy-level': { type: 'string', default: '4' },
    'decode-loop': { type: 'string', default: 'host' },
    threads: { type: 'string' },
    out: { type: 'string' },
  },
});
const positive = (v: string, name: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer (got ${v})`);
  return n;
};
const batches = values.batches.split(',').map((b) => positive(b, 'batches'));
const runs = positive(values.runs, 'runs');
const newTokens = positive(values['new-tokens'], 'new-tokens');
const accuracyLevel = Number(values['accuracy-level']) as (typeof ACCURACY_LEVELS)[number];
if (!ACCURACY_LEVELS.includes(accuracyLevel)) throw new Error(`--accuracy-level must be one of ${ACCURACY_LEVELS.join(', ')}`);
const decodeLoop = values['decode-loop'] as DecodeLoop;
if (!DECODE_LOOPS.includes(decodeLoop)) throw new Error(`--decode-loop must be one of ${DECODE_LOOPS.join(', ')}`);

const dir = await randomModel(values.random, {
  dtype: 'int4',
  accuracyLevel,
  layers: positive(values.layers, 'layers'),
  visionLayers: values['vision-layers'] === undefined ? undefined : positive(values['vision-layers'], 'vision-layers'),
});
const model = await PaliGemma.load(dir, { executionProvider: 'cpu', decodeLoop, threads: values.threads === undefined ? undefined : positive(values.threads, 'threads') });
const startLoad = loadavg()
  .map((x) => x.toFixed(2))
  .join(' ');

type Workload = 'equal' | 'mixed';
/** B fresh images (seeded by `seed`), each with its token limit for the workload. */
function items(b: number, seed: number, workload: Workload): BatchItem[] {
  return Array.from({ length: b }, (_, i) => ({
    image: testImage(seed * 100 + i),
    prompt: 'caption en',
    maxNewTokens: workload === 'equal' ? newTokens : Math.max(1, Math.round((newTokens * (i + 1)) / b)),
  }));
}
/**
 * Both sides decode alike: eos is suppressed up to the shortest limit of the rows (a batch shares
 * minNewTokens), which makes every 'equal' row exactly --new-tokens long; a row then equals itself
 * alone, so both sides make the same tokens (counted, and checked).
 */
const minNew = (rows: BatchItem[]) => Math.min(...rows.map((r) => r.maxNewTokens!));

async function oneByOne(rows: BatchItem[]): Promise<{ ms: number; tokens: number }> {
  const t0 = performance.now();
  let tokens = 0;
  for (const it of rows) tokens += (await model.generate({ ...it, minNewTokens: minNew(rows) })).generatedIds.length;
  return { ms: performance.now() - t0, tokens };
}

async function batched(rows: BatchItem[]): Promise<{ ms: number; tokens: number }> {
  const t0 = performance.now();
  const out = await model.generateBatch(rows, { minNewTokens: minNew(rows) });
  return { ms: performance.now() - t0, tokens: out.reduce((n, r) => n + r.generatedIds.length, 0) };
}

// For 'padded': a sequence drops finished rows only where the cache can be gathered on the host
// (ModelSessions.reordersOnHost); saying no for one call gives the same batch without dropping.
let padFinished = false;
const hostCache = Object.getOwnPropertyDescriptor(ModelSessions.prototype, 'reordersOnHost')!.get!;
Object.defineProperty(ModelSessions.prototype, 'reordersOnHost', {
  get(this: ModelSessions) {
    return !padFinished && (hostCache.call(this) as boolean);
  },
});

async function padded(rows: BatchItem[]): Promise<{ ms: number; tokens: number }> {
  padFinished = true;
  try {
    return await batched(rows);
  } finally {
    padFinished = false;
  }
}

/** The median of a[r] / b[r], to 2 decimals. */
const pairedRatio = (a: number[], b: number[]) => Math.round(median(a.map((x, r) => x / b[r])) * 100) / 100;

interface Row {
  workload: Workload;
  batch: number;
  tokens: number;
  one_by_one_ms: number;
  batched_ms: number;
  one_by_one_images_per_second: number;
  batched_images_per_second: number;
  /** Median over the runs of one-by-one ms / batched ms of the same run (pairs cancel slow drifts in the machine's load). */
  speedup: number;
  /** 'mixed': the batch with finished rows fed pads, and the median of its ms / batched ms per run. */
  padded_ms?: number;
  dropping_gain?: number;
  /** Every run's milliseconds, in run order. */
  runs_ms: { one_by_one: number[]; batched: number[]; padded?: number[] };
}

// Warm-up: the first runs allocate arenas and pick kernels for each batch shape.
await oneByOne(items(1, 9000, 'equal'));
for (const b of batches) await batched(items(b, 9001 + b, 'equal'));

const rows: Row[] = [];
let seed = 1;
for (const workload of ['equal', 'mixed'] as Workload[]) {
  for (const b of batches) {
    if (workload === 'mixed' && b === 1) continue;
    const seq: number[] = [];
    const bat: number[] = [];
    const pad: number[] = [];
    const tokens = new Set<number>();
    for (let r = 0; r < runs; r++) {
      // The same images on both sides; the order alternates so that a busy neighbour's load falls
      // on both alike.
      const runSeed = seed++;
      const sides = [oneByOne, batched, ...(workload === 'mixed' ? [padded] : [])];
      if (r % 2 === 1) sides.reverse();
      for (const side of sides) {
        // New image objects for each side (same pixels): the vision encoder runs on both.
        const { ms, tokens: n } = await side(items(b, runSeed, workload));
        (side === oneByOne ? seq : side === batched ? bat : pad).push(ms);
        tokens.add(n);
      }
    }
    if (tokens.size !== 1) throw new Error(`batch ${b} (${workload}): the two sides made different numbers of tokens (${[...tokens]})`);
    const s = median(seq);
    const m = median(bat);
    const row: Row = {
      workload,
      batch: b,
      tokens: [...tokens][0],
      one_by_one_ms: Math.round(s),
      batched_ms: Math.round(m),
      one_by_one_images_per_second: Math.round((b * 1e6) / s) / 1000,
      batched_images_per_second: Math.round((b * 1e6) / m) / 1000,
      speedup: pairedRatio(seq, bat),
      runs_ms: { one_by_one: seq.map(Math.round), batched: bat.map(Math.round) },
    };
    if (pad.length > 0) {
      row.padded_ms = Math.round(median(pad));
      row.dropping_gain = pairedRatio(pad, bat);
      row.runs_ms.padded = pad.map(Math.round);
    }
    rows.push(row);
    process.stderr.write(`${JSON.stringify(row)}\n`);
  }
}
await model.dispose();

const machine = `${process.platform} ${process.arch}, ${cpus().length} cores (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GB, Node ${process.version}`;
const setup = {
  preset: values.random,
  layers: Number(values.layers),
  vision_layers: values['vision-layers'] === undefined ? 'all' : Number(values['vision-layers']),
  dtype: 'int4',
  accuracy_level: accuracyLevel,
  execution_provider: 'cpu',
  decode_loop: model.decodeLoop,
  new_tokens: newTokens,
  runs,
  machine,
  load_average_start: startLoad,
  load_average_end: loadavg()
    .map((x) => x.toFixed(2))
    .join(' '),
};
const jsonl = rows.map((r) => JSON.stringify({ ...setup, ...r })).join('\n') + '\n';
process.stdout.write(jsonl);
if (values.out) {
  writeFileSync(`${values.out}.jsonl`, jsonl);
  const table = [
    '| workload | batch | tokens | one by one ms | batched ms | one by one images/s | batched images/s | speedup | padded ms | dropping finished rows |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.workload} | ${r.batch} | ${r.tokens} | ${r.one_by_one_ms} | ${r.batched_ms} | ${r.one_by_one_images_per_second} | ${r.batched_images_per_second} | ${r.speedup}x | ${r.padded_ms ?? ''} | ${r.dropping_gain ? `${r.dropping_gain}x` : ''} |`,
    ),
  ].join('\n');
  writeFileSync(
    `${values.out}.md`,
    `# Batched generation against one at a time, CPU\n\n` +
      `Machine: ${machine}. Shared with other sessions' builds and tests (load average ${setup.load_average_start} at the start, ${setup.load_average_end} at the end), so times are pessimistic; the ratios, measured alternately in the same run, are what count.\n\n` +
      `Model: \`--random ${setup.preset} --layers ${setup.layers}\` (vision layers: ${setup.vision_layers}), int4, accuracy level ${accuracyLevel}, CPU EP, ${setup.decode_loop} decode loop; ` +
      `\`node out/bench/batch.js\` (bench/batch.ts), medians of ${runs} runs after a warm-up; speedups are the median of each run's ratio (both sides of a ratio ran back to back). 'equal': every row makes ${newTokens} tokens; 'mixed': row i of B makes round(${newTokens} (i + 1) / B), so rows finish at different steps and leave the batch; 'padded ms' is the same batch with the finished rows fed pads instead (as with WebGPU), 'dropping finished rows' its time over the batched time.\n\n` +
      `${table}\n`,
  );
}
