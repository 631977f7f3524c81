// `paligemma bench`: load time, time to first token, decode speed, throughput at a batch size and
// peak memory of one converted model (or of a `--random` preset converted into a cache folder).
// Every request generates exactly --new-tokens tokens (eos is suppressed), so runs compare.
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ACCURACY_LEVELS,
  convert,
  cpuHint,
  defaultAccuracyLevel,
  defaultVisionDtype,
  PRESETS,
  takesAccuracyLevel,
  VISION_DTYPES,
  WEIGHT_DTYPES,
  type ActivationDtype,
  type ConvertDtype,
  type ConvertOptions,
  type VisionDtype,
} from '../engine/convert/index.js';
import { DECODE_LOOPS, isEngineError, PaliGemma } from '../engine/index.js';
import { type Manifest, readManifestSync } from '../engine/model/manifest.js';
import { EXECUTION_PROVIDERS } from '../engine/model/providers.js';
import { choiceOption, integerOption, runCommand, UsageError } from './args.js';
import { median, testImage } from './benchCommon.js';
import { runPeerBench } from './benchPeer.js';
import { TRANSFORMERS_JS_DTYPE } from '../engine/convert/transformers-js-export.js';
import { transformersJsVariants } from '../engine/transformers-js/folder.js';
import type { Command } from './main.js';

const USAGE = `usage: paligemma bench (--model <converted-dir> | --random <preset>) [options]

options:
  --random <preset>      convert a full-size configuration with random weights (cached in
                         $PALIGEMMA_BENCH_CACHE or the temp folder): ${Object.keys(PRESETS).join(', ')}
  --layers N             with --random: keep the first N decoder layers
  --vision-layers N      with --random: keep the first N vision layers
  --dtype fp32|fp16|int4|int8  with --random (default int4)
  --vision-dtype fp32|fp16|int8  with --random: vision tower format (default: fp16 for
                         --dtype fp16, else fp32)
  --accuracy-level 0-4   with --random and --dtype int4: MatMulNBits accuracy_level (default 0)
  --activations fp32|fp16 with --random and --dtype int4: what the int4 layers compute in, and
                         the KV cache (default fp32; fp16 for CUDA)
  --standard-ops         with --random: layers in standard ONNX ops (not fused contrib ops)
  --ep cpu|cuda|webgpu|auto  (default auto)
  --threads N            CPU threads per session
  --decode-loop auto|host|graph|graph-concat|search  where greedy decoding loops: one decoder
                         run per token on the host, or one run per request with the loop inside
                         the graph (decoder-loop.onnx; graph-concat: its variant that grows the
                         cache by Concat, decoder-loop-concat.onnx) or inside onnxruntime's
                         GreedySearch op (search: decoder-search.onnx); auto: graph with CUDA,
                         else host. In graph and search modes the first token is timed by
                         separate one-token requests
  --new-tokens N         tokens per request, eos ignored (default 32)
  --batch B              also measure B requests decoded together (default 1: skip)
  --runs R               timed repetitions after one warm-up; medians are reported (default 3)
  --json                 print one JSON object as the last line
  --peer transformers.js with --ep cpu: run ours and transformers.js (a devDependency) on the same
                         transformers.js export layout (--random converts one), each side in
                         --processes fresh processes (default 3), alternating; prints
                         {"ours": {...}, "peer": {...}, ...} with medians, ratios, decode bytes per
                         token and a copy-bandwidth probe
  --processes P          with --peer: fresh processes per side
  --ours-layout paligemma|transformers.js  with --peer and --random: the layout our side runs
                         (default transformers.js: the peer's files)
  --ours-accuracy-level 0-4  with --peer and --random: our side's MatMulNBits accuracy_level
                         (default: --accuracy-level's; 4 is what download --dtype int4-cpu installs)
  --ours-vision-dtype fp32|fp16|int8  with --peer and --random: our side's vision tower (default:
                         --vision-dtype's; int8 is what download --dtype int4-cpu-v8 installs)
  --ours-model <dir>     with --peer: the folder our side runs instead of the peer's
`;

/** The converter's options that `--random` takes (and names its cache folder after). */
export type RandomModelOptions = Pick<ConvertOptions, 'visionDtype' | 'accuracyLevel' | 'activations' | 'standardOps' | 'layers' | 'visionLayers' | 'layout'> & {
  dtype: ConvertDtype;
};

/** The cache folder of one conversion: every option that changes the graphs is in its name. */
export function randomModelFolder(preset: string, o: RandomModelOptions): string {
  const vision = o.visionDtype ?? defaultVisionDtype(o.dtype);
  const acc = takesAccuracyLevel(o.dtype) ? `-acc${o.accuracyLevel ?? defaultAccuracyLevel(o.dtype)}${o.activations === 'fp16' ? '-act16' : ''}` : '';
  return `${preset}-${o.dtype}-L${o.layers ?? 'all'}-V${o.visionLayers ?? 'all'}-vis${vision}${acc}${o.standardOps ? '-std' : ''}${o.layout === 'transformers.js' ? '-tjs' : ''}`;
}

export async function randomModel(preset: string, o: RandomModelOptions): Promise<string> {
  if (!(preset in PRESETS)) throw new UsageError(`unknown preset '${preset}' (one of ${Object.keys(PRESETS).join(', ')})`);
  const root = process.env.PALIGEMMA_BENCH_CACHE ?? join(tmpdir(), 'paligemma-bench');
  const dir = join(root, randomModelFolder(preset, o));
  // Conversions cached by older versions (no decoder-loop-concat.onnx beside a decoder-loop.onnx
  // that is still the Concat loop, no graphOps record) are made again.
  const wantOps = o.standardOps ? 'standard' : 'fused';
  const cached =
    o.layout === 'transformers.js'
      ? (transformersJsVariants(dir)?.includes(TRANSFORMERS_JS_DTYPE[o.dtype]) ?? false)
      : existsSync(join(dir, 'manifest.json')) &&
        existsSync(join(dir, 'decoder-loop-concat.onnx')) &&
        existsSync(join(dir, 'decoder-search.onnx')) &&
        cachedGraphOps(dir) === wantOps;
  if (!cached) {
    process.stderr.write(`converting ${preset} (${o.dtype}) into ${dir} ...\n`);
    await convert({ random: preset, output: dir, ...o, overwrite: true });
  }
  return dir;
}

/** The graph ops a cached conversion was made with; undefined for one that cannot be read (converted again). */
function cachedGraphOps(dir: string): string | undefined {
  try {
    return readManifestSync(dir).converter?.graphOps;
  } catch {
    return undefined;
  }
}

/** The ORT_* environment variables set for this run, or undefined when there are none. */
export function ortEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> | undefined {
  const set = Object.entries(env).filter((e): e is [string, string] => e[0].startsWith('ORT_') && e[1] !== undefined);
  return set.length > 0 ? Object.fromEntries(set.sort(([a], [b]) => a.localeCompare(b))) : undefined;
}

const OPTIONS = {
  model: { type: 'string' },
  random: { type: 'string' },
  layers: { type: 'string' },
  'vision-layers': { type: 'string' },
  dtype: { type: 'string', default: 'int4' },
  'vision-dtype': { type: 'string' },
  'accuracy-level': { type: 'string' },
  activations: { type: 'string' },
  'standard-ops': { type: 'boolean', default: false },
  ep: { type: 'string', default: 'auto' },
  threads: { type: 'string' },
  'decode-loop': { type: 'string', default: 'auto' },
  'new-tokens': { type: 'string' },
  batch: { type: 'string' },
  runs: { type: 'string' },
  json: { type: 'boolean', default: false },
  peer: { type: 'string' },
  processes: { type: 'string' },
  'ours-layout': { type: 'string' },
  'ours-accuracy-level': { type: 'string' },
  'ours-vision-dtype': { type: 'string' },
  'ours-model': { type: 'string' },
} as const;

export const command: Command = {
  summary: 'measure load time, first-token latency, decode speed and throughput',
  run: (argv) =>
    runCommand({ name: 'bench', usage: USAGE, options: OPTIONS }, argv, async (values) => {
      if (!values.model === !values.random) throw new UsageError('give exactly one of --model and --random', true);
      const dtype = choiceOption<ConvertDtype>(values.dtype, 'dtype', WEIGHT_DTYPES)!;
      const visionDtype = choiceOption<VisionDtype>(values['vision-dtype'], 'vision-dtype', VISION_DTYPES);
      const decodeLoop = choiceOption(values['decode-loop'], 'decode-loop', DECODE_LOOPS)!;
      const accuracyLevel = choiceOption(values['accuracy-level'], 'accuracy-level', ACCURACY_LEVELS);
      if (accuracyLevel !== undefined && !takesAccuracyLevel(dtype)) throw new UsageError('--accuracy-level applies only to --dtype int4 and int8');
      const activations = choiceOption<ActivationDtype>(values.activations, 'activations', ['fp32', 'fp16']);
      if (activations !== undefined && dtype !== 'int4') throw new UsageError('--activations applies only to --dtype int4');
      if (values.model && (visionDtype !== undefined || accuracyLevel !== undefined || activations !== undefined || values['standard-ops'])) {
        throw new UsageError('--vision-dtype, --accuracy-level, --activations and --standard-ops apply to --random (convert the --model folder with them instead)');
      }
      const opts = {
        visionDtype,
        accuracyLevel,
        activations,
        standardOps: values['standard-ops'],
        layers: integerOption(values.layers, 'layers', 1),
        visionLayers: integerOption(values['vision-layers'], 'vision-layers', 1),
        threads: integerOption(values.threads, 'threads', 1),
        newTokens: integerOption(values['new-tokens'], 'new-tokens', 1, 32),
        batch: integerOption(values.batch, 'batch', 1, 1),
        runs: integerOption(values.runs, 'runs', 1, 3),
        ep: choiceOption(values.ep, 'ep', EXECUTION_PROVIDERS)!,
        decodeLoop,
      };
      const oursLayout = choiceOption<NonNullable<ConvertOptions['layout']>>(values['ours-layout'], 'ours-layout', ['paligemma', 'transformers.js']);
      const oursAccuracyLevel = choiceOption(values['ours-accuracy-level'], 'ours-accuracy-level', ACCURACY_LEVELS);
      const oursVisionDtype = choiceOption<VisionDtype>(values['ours-vision-dtype'], 'ours-vision-dtype', VISION_DTYPES);
      const oursModel = values['ours-model'];
      const oursConverted = oursLayout !== undefined || oursAccuracyLevel !== undefined || oursVisionDtype !== undefined;
      if (values.peer === undefined && (oursConverted || oursModel !== undefined)) {
        throw new UsageError('--ours-layout, --ours-accuracy-level, --ours-vision-dtype and --ours-model apply only to --peer');
      }
      if (oursConverted && (values.model || oursModel)) {
        throw new UsageError('--ours-layout, --ours-accuracy-level and --ours-vision-dtype apply to --random (with --model, give our side its folder with --ours-model)');
      }
      if (oursAccuracyLevel !== undefined && dtype !== 'int4') throw new UsageError('--ours-accuracy-level applies only to --dtype int4');
      if (values.peer !== undefined) {
        return await runPeerBench({
          ours: { layout: oursLayout, accuracyLevel: oursAccuracyLevel, visionDtype: oursVisionDtype, model: oursModel },
          peer: values.peer,
          model: values.model,
          random: values.random,
          convert: { dtype, visionDtype, accuracyLevel, activations, standardOps: opts.standardOps, layers: opts.layers, visionLayers: opts.visionLayers },
          ep: opts.ep,
          threads: opts.threads,
          newTokens: opts.newTokens,
          runs: opts.runs,
          processes: integerOption(values.processes, 'processes', 1, 3),
          json: values.json,
          randomModel,
        });
      }
      if (values.processes !== undefined) throw new UsageError('--processes applies only to --peer');

      let model: PaliGemma | undefined;
      try {
        const dir =
          values.model ??
          (await randomModel(values.random!, {
            dtype,
            visionDtype: opts.visionDtype,
            accuracyLevel: opts.accuracyLevel,
            activations: opts.activations,
            standardOps: opts.standardOps,
            layers: opts.layers,
            visionLayers: opts.visionLayers,
          }));
        const t0 = performance.now();
        model = await PaliGemma.load(dir, { executionProvider: opts.ep, threads: opts.threads, decodeLoop: opts.decodeLoop });
        const loadMs = performance.now() - t0;
        const n = opts.newTokens;
        const decoding = { prompt: 'caption en', maxNewTokens: n, minNewTokens: n };

        // One request on a fresh image each time (the engine caches image features per image).
        const inGraph = model.decodeLoop !== 'host';
        const request = async (seed: number) => {
          const m = model!;
          const image = testImage(seed);
          // With the loop in the graph no token comes out before the end: a one-token request (the
          // prefill and its argmax, on another fresh image) stands for the first token.
          let first: { ms: number; sessionMs: number } | undefined;
          if (inGraph) {
            const s0 = m.sessionRunMs;
            const t = performance.now();
            await m.generate({ ...decoding, image: testImage(seed + 10_000), maxNewTokens: 1, minNewTokens: 1 });
            first = { ms: performance.now() - t, sessionMs: m.sessionRunMs - s0 };
          }
          const ortStart = m.sessionRunMs;
          const runsStart = m.sessionRuns;
          let ortAtFirst = 0;
          let firstAt = 0;
          const start = performance.now();
          await m.generate({
            ...decoding,
            image,
            onToken: (_, __) => {
              if (firstAt === 0) {
                firstAt = performance.now();
                ortAtFirst = m.sessionRunMs;
              }
            },
          });
          const end = performance.now();
          const requestMs = end - start;
          const sessionMs = m.sessionRunMs - ortStart;
          const firstTokenMs = first ? first.ms : firstAt - start;
          const prefillSessionRunMs = first ? first.sessionMs : ortAtFirst - ortStart;
          return {
            firstTokenMs,
            decodeMsPerToken: n > 1 ? (requestMs - firstTokenMs) / (n - 1) : 0,
            sessionRunMsPerToken: n > 1 ? (sessionMs - prefillSessionRunMs) / (n - 1) : 0,
            prefillSessionRunMs,
            requestMs,
            sessionRuns: m.sessionRuns - runsStart,
          };
        };

        await request(0); // warm-up: first runs allocate arenas and pick kernels
        // Since this process started: startup, imports, load and one request (what a one-shot CLI run costs).
        const coldMs = performance.now();
        const runs: Awaited<ReturnType<typeof request>>[] = [];
        for (let r = 1; r <= opts.runs; r++) runs.push(await request(r));

        let batch: { ms: number; imagesPerSecond: number } | undefined;
        if (opts.batch > 1) {
          const items = (seed: number) => Array.from({ length: opts.batch }, (_, i) => ({ image: testImage(seed * 100 + i), prompt: decoding.prompt }));
          await model.generateBatch(items(1000), decoding);
          const times: number[] = [];
          for (let r = 1; r <= opts.runs; r++) {
            const s = performance.now();
            await model.generateBatch(items(1000 + r), decoding);
            times.push(performance.now() - s);
          }
          const ms = median(times);
          batch = { ms, imagesPerSecond: (opts.batch * 1000) / ms };
        }

        // The converter's record (absent in onnx-community folders): the loaded manifest drops it.
        const converted = existsSync(join(dir, 'manifest.json')) ? readManifestSync(dir) : undefined;
        const converter: Partial<Manifest>['converter'] = converted?.converter;
        const pick = (k: keyof (typeof runs)[number]) => Math.round(median(runs.map((r) => r[k])) * 100) / 100;
        const result = {
          model: model.manifest.name,
          warnings: model.warnings,
          architecture: model.manifest.architecture,
          dtype: model.manifest.dtype,
          vision_weights: converter?.weights.vision,
          accuracy_level: converter?.int4?.accuracyLevel,
          activations: converter?.int4 ? (converter.int4.activations ?? 'fp32') : undefined,
          kv_dtype: model.manifest.kvDtype,
          graph_ops: converter?.graphOps ?? 'standard',
          image_size: model.manifest.image.size,
          decoder_layers: model.manifest.text.numLayers,
          execution_provider: model.executionProvider,
          decode_loop: model.decodeLoop === 'graph' && opts.decodeLoop === 'graph-concat' ? 'graph-concat' : model.decodeLoop,
          new_tokens: n,
          runs: opts.runs,
          load_ms: Math.round(loadMs),
          cold_ms: Math.round(coldMs),
          first_token_ms: pick('firstTokenMs'),
          prefill_session_run_ms: pick('prefillSessionRunMs'),
          decode_ms_per_token: pick('decodeMsPerToken'),
          session_run_ms_per_token: pick('sessionRunMsPerToken'),
          request_ms: pick('requestMs'),
          session_runs_per_request: pick('sessionRuns'),
          images_per_second_batch1: Math.round((1000 / median(runs.map((r) => r.requestMs))) * 1000) / 1000,
          batch: opts.batch,
          batch_request_ms: batch ? Math.round(batch.ms) : undefined,
          images_per_second: batch ? Math.round(batch.imagesPerSecond * 1000) / 1000 : undefined,
          peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
          provider_notes: model.providerNotes,
          // onnxruntime reads some switches from the environment (e.g. ORT_FPA_INTB_GEMM=1, CUDA's
          // CUTLASS int4 GEMM for fp16 activations): rows made with them must say so.
          ort_env: ortEnv(),
        };
        const hint = model.executionProvider === 'cpu' && converted ? cpuHint(converted) : null;
        if (hint) process.stderr.write(`hint: ${hint}\n`);
        if (values.json) {
          process.stdout.write(`${JSON.stringify(result)}\n`);
        } else {
          for (const [k, v] of Object.entries(result)) {
            if (v !== undefined && !(Array.isArray(v) && v.length === 0)) process.stdout.write(`${k.padEnd(26)} ${Array.isArray(v) ? v.join('; ') : v}\n`);
          }
        }
        return 0;
      } catch (e) {
        if (isEngineError(e)) {
          process.stderr.write(`paligemma bench: ${e.message}\n`);
          return 1;
        }
        throw e;
      } finally {
        await model?.dispose();
      }
    }),
};
