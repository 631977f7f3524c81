// `convert(opts)`: a Hugging Face PaliGemma checkpoint (or a `--random` preset) -> the model
// folder of DESIGN.md. Everything is written into a temporary folder next to the output and
// renamed into place at the end, so a failure never leaves a half-written model behind.
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, createReadStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EngineError, isEngineError } from '../errors.js';
import { type ActivationDtype, type ConverterRecord, type FileChecksum, type Manifest, type WeightDtype } from '../model/manifest.js';
import { GraphBuilder } from '../onnx/builder.js';
import { ExternalDataWriter } from '../onnx/external-data.js';
import { Blocks, type Precision } from './blocks.js';
import { normalizeConfig, type ModelConfig } from './config.js';
import { buildDecoderGraph, buildDecoderLoopGraph, type KvDtype } from './decoder-graph.js';
import { buildSearchGraph, SEARCH_FILES } from './search-graph.js';
import { PRESETS, REAL_TOKEN_IDS } from './presets.js';
import { SafetensorsCheckpoint } from './safetensors.js';
import { readImageSettings, readJsonFile, readTokenIds, tokenizerVocab, type ImageSettings, type TokenIds } from './source-files.js';
import { buildVisionGraph } from './vision-graph.js';
import { siblingTokenizerConfig, writeTransformersJsExport } from './transformers-js-export.js';
import { CheckpointWeights, RandomWeights, expectedShapes, type WeightSource } from './weights.js';
import { errorMessage } from '../../common/errors.js';
import { readTransformersJsFolder } from '../transformers-js/folder.js';

export type ConvertDtype = WeightDtype;
export type VisionDtype = ConverterRecord['weights']['vision'];
export type { ActivationDtype, Manifest } from '../model/manifest.js';
export { VISION_DTYPES, WEIGHT_DTYPES } from '../model/manifest.js';
/** MatMulNBits accuracy levels: 0 the EP's default, 1 fp32, 2 fp16, 3 bf16, 4 int8 activations. */
export const ACCURACY_LEVELS = [0, 1, 2, 3, 4] as const;

export interface ConvertProgress {
  stage: 'read' | 'vision' | 'decoder' | 'hash' | 'done';
  /** 0..1 over the whole conversion (rough: by layers). */
  fraction: number;
  message: string;
}

export interface ConvertOptions {
  /** Hugging Face checkpoint folder (config.json, safetensors, tokenizer, processor config). */
  input?: string;
  /** Instead of `input`: a preset name from PRESETS, written with seeded random weights. */
  random?: string;
  output: string;
  dtype?: ConvertDtype;
  /**
   * Weights and matmuls of the vision tower (default: fp16 for `dtype` fp16, else fp32).
   * fp16 is slow on x86 CPUs and inexact on the WebGPU EP (fp16 accumulation).
   */
  visionDtype?: VisionDtype;
  /** int4 only: `accuracy_level` of every MatMulNBits node (default 0). */
  accuracyLevel?: number;
  /**
   * int4 only: what the decoder's MatMulNBits layers compute in, and the KV cache's dtype
   * (default fp32). fp16 is onnxruntime's CUDA recipe: half-precision GEMMs (tensor cores) for the
   * prefill and half the KV cache traffic; the lm_head stays fp32 (one row per step).
   */
  activations?: ActivationDtype;
  /**
   * Layers in standard ONNX ops only (norms, RoPE, GELU and attention as primitive ops)
   * instead of onnxruntime's fused contrib ops: for runtimes without those ops, and comparisons.
   */
  standardOps?: boolean;
  /** Keep only the first N decoder layers (and vision layers with `visionLayers`). */
  layers?: number;
  visionLayers?: number;
  seed?: number;
  /** tokenizer.json used for `random` (default: the repository's tiny test tokenizer). */
  tokenizer?: string;
  /** Replace an existing output folder. */
  overwrite?: boolean;
  /**
   * 'transformers.js': the onnx-community export layout (config.json, preprocessor_config.json,
   * onnx/{vision_encoder,embed_tokens,decoder_model_merged}<suffix>.onnx; no manifest.json), which
   * transformers.js and our engine both load; its prompt attends causally (transformers-js-export.ts).
   */
  layout?: 'paligemma' | 'transformers.js';
  onProgress?: (p: ConvertProgress) => void;
  /** For tests: the write function of the external data files (to simulate a full disk). */
  writeSync?: typeof import('node:fs').writeSync;
}

const PRECISION: Record<ConvertDtype, { vision: Precision; decoder: Precision; kv: KvDtype }> = {
  fp32: { vision: { weights: 'fp32', matmul: 'float32' }, decoder: { weights: 'fp32', matmul: 'float32' }, kv: 'float32' },
  fp16: { vision: { weights: 'fp16', matmul: 'float16' }, decoder: { weights: 'fp16', matmul: 'float16' }, kv: 'float16' },
  // int4: MatMulNBits takes float32 activations on every EP. The vision tower is fp32: fp16
  // matmuls are slow on x86 CPUs (3.5x slower first token) and the WebGPU EP accumulates fp16
  // matmuls in fp16 (max error 1.4 at SigLIP's K = 4304, against 0.03 on the CPU), while on
  // CUDA (TF32) the fp32 tower of PaliGemma 3B costs about 0.3 ms more memory traffic.
  int4: { vision: { weights: 'fp32', matmul: 'float32' }, decoder: { weights: 'int4', matmul: 'float32' }, kv: 'float32' },
  // int8, for CPUs: per-channel int8 layers run as onnxruntime's int8 GEMMs (VNNI, AMX), 6-8x the
  // int4 kernels' speed at prefill sizes on a 2-core AMX machine (bench/matmul-kernels.mjs), at
  // twice int4's weight bytes per decode step; the vision tower int8 as well.
  int8: { vision: { weights: 'int8', matmul: 'float32' }, decoder: { weights: 'int8', matmul: 'float32' }, kv: 'float32' },
};

/** Whether a dtype has MatMulNBits layers, whose accuracy level the converter takes (int4; int8's table). */
export function takesAccuracyLevel(dtype: ConvertDtype): boolean {
  return dtype === 'int4' || dtype === 'int8';
}

/** The accuracy level when none is given: int8's MatMulNBits (the 8-bit lm_head) computes in int8, it is a CPU format. */
export function defaultAccuracyLevel(dtype: ConvertDtype): number {
  return dtype === 'int8' ? 4 : 0;
}

/** The vision tower's format when `visionDtype` is not given. */
export function defaultVisionDtype(dtype: ConvertDtype): VisionDtype {
  const w = PRECISION[dtype].vision.weights;
  return w === 'fp16' || w === 'int8' ? w : 'fp32';
}

const VISION_PRECISION: Record<VisionDtype, Precision> = {
  fp32: PRECISION.fp32.vision,
  fp16: PRECISION.fp16.vision,
  int8: { weights: 'int8', matmul: 'float32' },
};

function defaultTokenizerTemplate(): string {
  // out/daemon/engine/convert -> repository root
  const here = dirname(fileURLToPath(import.meta.url));
  for (const up of ['../../../..', '../../..']) {
    const p = resolve(here, up, 'test/fixtures/tiny-paligemma-224/tokenizer.json');
    if (existsSync(p)) return p;
  }
  throw new EngineError('convert-failed', '--random needs a tokenizer.json template (pass --tokenizer)');
}

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 22 })) h.update(chunk as Buffer);
  return `sha256:${h.digest('hex')}`;
}

/**
 * The tokenizer for a random model: the tiny template with its <locNNNN>, <segNNN> and <image>
 * tokens moved to the real model's ids, so that ids, vocab size and output parsing behave like
 * the real model's (other tokens keep the template's ids: texts are meaningless anyway).
 */
export function relocatedTokenizer(template: Record<string, unknown>, vocabSize: number): Record<string, unknown> {
  const t = structuredClone(template);
  for (const tok of (t.added_tokens as { id: number; content: string }[]) ?? []) {
    const loc = /^<loc(\d{4})>$/.exec(tok.content);
    const seg = /^<seg(\d{3})>$/.exec(tok.content);
    if (loc) tok.id = REAL_TOKEN_IDS.loc0 + Number(loc[1]);
    else if (seg) tok.id = REAL_TOKEN_IDS.seg0 + Number(seg[1]);
    else if (tok.content === '<image>') tok.id = REAL_TOKEN_IDS.image;
    if (tok.id >= vocabSize) throw new EngineError('convert-failed', `tokenizer id ${tok.id} beyond vocab ${vocabSize}`);
  }
  return t;
}

interface Source {
  name: string;
  /** The tokenizer.json to copy verbatim, or null to write `tokenizer`. */
  tokenizerFile: string | null;
  cfg: ModelConfig;
  weights: WeightSource;
  image: ImageSettings;
  tokenizer: Record<string, unknown>;
  tokens: TokenIds;
  manifestSource: NonNullable<Manifest['source']>;
  hashFiles: string[];
  /** config.json as the source states it, and the tokenizer/generation configs beside it (the export layout copies them). */
  rawConfig: Record<string, unknown>;
  tokenizerConfig?: string;
  generationConfig?: string;
}

function openSource(opts: ConvertOptions, textLayers: (cfg: ModelConfig) => number, visionLayers: (cfg: ModelConfig) => number): Source {
  if (opts.random !== undefined) {
    const preset = PRESETS[opts.random];
    if (!preset) throw new EngineError('invalid-params', `unknown preset ${opts.random} (one of ${Object.keys(PRESETS).join(', ')})`);
    const cfg = normalizeConfig(structuredClone(preset));
    const tokPath = opts.tokenizer ?? defaultTokenizerTemplate();
    const tokenizer = relocatedTokenizer(readJsonFile(tokPath), cfg.text.vocabSize);
    const vocab = tokenizerVocab(tokenizer);
    const need = (s: string) => {
      const id = vocab.get(s);
      if (id === undefined) throw new EngineError('convert-failed', `${tokPath}: no ${JSON.stringify(s)} token`);
      return id;
    };
    const seed = opts.seed ?? 0;
    return {
      name: `${opts.random}-random`,
      tokenizerFile: null,
      cfg,
      weights: new RandomWeights(expectedShapes(cfg, { textLayers: textLayers(cfg), visionLayers: visionLayers(cfg) }), seed),
      image: { size: cfg.vision.imageSize, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], rescale: 1 / 255 },
      tokenizer,
      tokens: { bos: need('<bos>'), eos: need('<eos>'), pad: need('<pad>'), image: need('<image>'), newline: need('\n'), loc0: need('<loc0000>'), seg0: need('<seg000>') },
      manifestSource: { kind: 'random', preset: opts.random, seed, tokenizer: `template ${basename(tokPath)}; <loc>, <seg>, <image> moved to the real ids`, files: {} },
      hashFiles: [],
      rawConfig: structuredClone(preset),
      tokenizerConfig: siblingTokenizerConfig(tokPath),
    };
  }
  const dir = opts.input;
  if (!dir) throw new EngineError('invalid-params', 'convert needs an input checkpoint folder or a --random preset');
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new EngineError('model-missing', `${dir}: no such checkpoint folder`);
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath)) throw new EngineError('model-missing', `${dir}: no config.json`);
  const rawConfig = readJsonFile(configPath);
  const cfg = normalizeConfig(structuredClone(rawConfig));
  const tokPath = join(dir, 'tokenizer.json');
  if (!existsSync(tokPath)) throw new EngineError('model-missing', `${dir}: no tokenizer.json`);
  const tokenizer = readJsonFile(tokPath);
  const { settings: image, file: processorFile } = readImageSettings(dir);
  if (image.size !== cfg.vision.imageSize) {
    throw new EngineError('model-invalid', `${dir}: processor image size ${image.size} but vision_config.image_size ${cfg.vision.imageSize}`);
  }
  if (image.seqLength !== undefined && image.seqLength !== cfg.numImageTokens) {
    throw new EngineError('model-invalid', `${dir}: processor image_seq_length ${image.seqLength} but the vision tower makes ${cfg.numImageTokens} tokens`);
  }
  const tokens = readTokenIds(dir, tokenizer, cfg.imageTokenIndex);
  const ckpt = SafetensorsCheckpoint.open(dir);
  let weights: WeightSource;
  try {
    weights = new CheckpointWeights(ckpt, expectedShapes(cfg, { textLayers: textLayers(cfg), visionLayers: visionLayers(cfg) }));
  } catch (e) {
    ckpt.close();
    throw e;
  }
  const hashFiles = ['config.json', 'tokenizer.json', processorFile, ...ckpt.files.map((f) => basename(f))];
  if (existsSync(join(dir, 'model.safetensors.index.json'))) hashFiles.push('model.safetensors.index.json');
  if (existsSync(join(dir, 'tokenizer_config.json'))) hashFiles.push('tokenizer_config.json');
  return {
    name: basename(resolve(dir)),
    tokenizerFile: tokPath,
    cfg,
    weights,
    image,
    tokenizer,
    tokens,
    manifestSource: { kind: 'huggingface', path: resolve(dir), files: {} },
    hashFiles: hashFiles.map((f) => join(dir, f)),
    rawConfig,
    tokenizerConfig: join(dir, 'tokenizer_config.json'),
    generationConfig: join(dir, 'generation_config.json'),
  };
}

function checkLayers(n: number | undefined, max: number, what: string): number {
  if (n === undefined) return max;
  if (!Number.isInteger(n) || n < 1 || n > max) throw new EngineError('invalid-params', `${what} must be an integer from 1 to ${max}`);
  return n;
}

export async function convert(opts: ConvertOptions): Promise<Manifest> {
  const dtype = opts.dtype ?? 'fp32';
  if (!(dtype in PRECISION)) throw new EngineError('invalid-params', `dtype ${dtype} is not one of ${Object.keys(PRECISION).join(', ')}`);
  if (opts.visionDtype !== undefined && !(opts.visionDtype in VISION_PRECISION)) {
    throw new EngineError('invalid-params', `vision dtype ${opts.visionDtype} is not one of ${Object.keys(VISION_PRECISION).join(', ')}`);
  }
  const accuracyLevel = opts.accuracyLevel ?? defaultAccuracyLevel(dtype);
  if (!(ACCURACY_LEVELS as readonly number[]).includes(accuracyLevel)) {
    throw new EngineError('invalid-params', `accuracy level ${opts.accuracyLevel} is not one of ${ACCURACY_LEVELS.join(', ')}`);
  }
  if (accuracyLevel !== 0 && !takesAccuracyLevel(dtype)) throw new EngineError('invalid-params', 'an accuracy level applies only to dtypes int4 and int8');
  if (dtype === 'int8' && opts.layout === 'transformers.js') {
    throw new EngineError('invalid-params', 'the transformers.js layout is written in fp32, fp16 or int4 (its q4 recipe), not int8');
  }
  const activations = opts.activations ?? 'fp32';
  if (activations !== 'fp32' && activations !== 'fp16') throw new EngineError('invalid-params', `activations ${opts.activations} is not one of fp32, fp16`);
  if (activations !== 'fp32' && dtype !== 'int4') throw new EngineError('invalid-params', 'activations apply only to dtype int4 (fp16 already computes in fp16)');
  const out = resolve(opts.output);
  if (existsSync(out) && !opts.overwrite) throw new EngineError('convert-failed', `${out} already exists (use overwrite / --force to replace it)`);
  const progress = (stage: ConvertProgress['stage'], fraction: number, message: string) => opts.onProgress?.({ stage, fraction, message });

  progress('read', 0, 'reading checkpoint');
  const src = openSource(
    opts,
    (cfg) => checkLayers(opts.layers, cfg.text.numLayers, 'layers'),
    (cfg) => checkLayers(opts.visionLayers, cfg.vision.numLayers, 'vision layers'),
  );
  const { cfg } = src;
  const textLayers = checkLayers(opts.layers, cfg.text.numLayers, 'layers');
  const visionLayers = checkLayers(opts.visionLayers, cfg.vision.numLayers, 'vision layers');
  if (cfg.projectionDim !== cfg.text.hiddenSize) {
    src.weights.close();
    throw new EngineError('model-invalid', `projection_dim ${cfg.projectionDim} differs from the text hidden size ${cfg.text.hiddenSize}`);
  }

  const tmp = join(dirname(out), `.${basename(out)}.converting-${process.pid}-${randomBytes(4).toString('hex')}`);
  const writers: ExternalDataWriter[] = [];
  try {
    mkdirSync(tmp, { recursive: true });
    const half = activations === 'fp16';
    const prec = {
      kv: half ? ('float16' as const) : PRECISION[dtype].kv,
      vision: { ...(opts.visionDtype ? VISION_PRECISION[opts.visionDtype] : PRECISION[dtype].vision), fusedOps: !opts.standardOps },
      decoder: { ...PRECISION[dtype].decoder, ...(half ? { matmul: 'float16' as const } : {}), accuracyLevel, fusedOps: !opts.standardOps },
    };
    const total = visionLayers + textLayers;
    if (opts.layout === 'transformers.js') {
      writeTransformersJsExport(
        { ...src, tokenizer: src.tokenizerFile ?? src.tokenizer },
        {
          dir: tmp,
          dtype,
          textLayers,
          visionLayers,
          precision: prec,
          writers,
          writeSync: opts.writeSync,
          onLayer: (what, i) => progress(what, ((what === 'vision' ? 0 : visionLayers) + i + 1) / total, `${what} layer ${i + 1}/${what === 'vision' ? visionLayers : textLayers}`),
        },
      );
      moveIntoPlace(tmp, out);
      progress('done', 1, `wrote ${out}`);
      return readTransformersJsFolder(out).manifest;
    }
    const graph = (name: string, build: (b: Blocks) => void, p: Precision): GraphBuilder => {
      const data = new ExternalDataWriter(join(tmp, `${name}.onnx.data`), opts.writeSync);
      writers.push(data);
      const g = new GraphBuilder({ name, externalData: data, externalThreshold: 1024, opset: 17 });
      build(new Blocks(g, src.weights, p));
      data.close();
      g.save(join(tmp, `${name}.onnx`));
      return g;
    };
    graph('vision', (b) => buildVisionGraph(b, cfg, visionLayers, (i) => progress('vision', (i + 1) / total, `vision layer ${i + 1}/${visionLayers}`)), prec.vision);
    const decoder = graph(
      'decoder',
      (b) => buildDecoderGraph(b, cfg, textLayers, prec.kv, (i) => progress('decoder', (visionLayers + i + 1) / total, `decoder layer ${i + 1}/${textLayers}`)),
      prec.decoder,
    );
    // The same layers with greedy decoding in the graph, over decoder.onnx's weights (no second
    // copy); the Concat variant too, for A/B benchmarks (a file of nodes only).
    for (const [file, cache] of [
      ['decoder-loop', 'buffer'],
      ['decoder-loop-concat', 'concat'],
    ] as const) {
      const loop = new GraphBuilder({ name: 'decoder-loop', opset: 17 });
      loop.adoptInitializers(decoder);
      buildDecoderLoopGraph(new Blocks(loop, src.weights, prec.decoder), cfg, textLayers, prec.kv, src.tokens.eos, cache);
      loop.save(join(tmp, `${file}.onnx`));
    }
    // And inside onnxruntime's GreedySearch / BeamSearch ops, over the same weights.
    for (const kind of ['greedy', 'beam'] as const) {
      const search = new GraphBuilder({ name: `decoder-${kind}-search`, opset: 17 });
      search.adoptInitializers(decoder);
      buildSearchGraph(new Blocks(search, src.weights, prec.decoder), cfg, textLayers, prec.kv, src.tokens, kind);
      search.save(join(tmp, SEARCH_FILES[kind]));
    }
    if (src.tokenizerFile) copyFileSync(src.tokenizerFile, join(tmp, 'tokenizer.json'));
    else writeFileSync(join(tmp, 'tokenizer.json'), JSON.stringify(src.tokenizer));

    progress('hash', 1, 'hashing source files');
    const files: Record<string, string> = {};
    for (const f of src.hashFiles) files[basename(f)] = await sha256(f);
    const layerTypes = cfg.text.layerTypes.slice(0, textLayers);
    const checksums = await folderChecksums(tmp);
    const manifest: Manifest = {
      format: 'paligemma-onnx',
      formatVersion: 1,
      name: src.name,
      architecture: cfg.architecture,
      dtype,
      kvDtype: prec.kv,
      image: {
        size: cfg.vision.imageSize,
        patchSize: cfg.vision.patchSize,
        numImageTokens: cfg.numImageTokens,
        mean: triple(src.image.mean),
        std: triple(src.image.std),
        rescale: src.image.rescale,
      },
      text: {
        hiddenSize: cfg.text.hiddenSize,
        numLayers: textLayers,
        numHeads: cfg.text.numHeads,
        numKvHeads: cfg.text.numKvHeads,
        headDim: cfg.text.headDim,
        vocabSize: cfg.text.vocabSize,
        layerTypes,
        slidingWindow: layerTypes.includes('sliding') ? cfg.text.slidingWindow : null,
        maxPositions: cfg.text.maxPositions,
        finalLogitSoftcap: cfg.text.finalSoftcap,
      },
      tokens: src.tokens,
      files: {
        vision: 'vision.onnx',
        decoder: 'decoder.onnx',
        decoderLoop: 'decoder-loop.onnx',
        decoderLoopConcat: 'decoder-loop-concat.onnx',
        decoderSearch: SEARCH_FILES.greedy,
        decoderBeamSearch: SEARCH_FILES.beam,
        tokenizer: 'tokenizer.json',
      },
      checksums,
      source: { ...src.manifestSource, files },
      converter: {
        weights: { vision: opts.visionDtype ?? defaultVisionDtype(dtype), decoder: dtype },
        graphOps: opts.standardOps ? 'standard' : 'fused',
        ...(dtype === 'int4' ? { int4: { blockSize: 32, zeroPoints: true, accuracyLevel, activations } } : {}),
        ...(dtype === 'int8' ? { int8: { tableBlockSize: 32, accuracyLevel } } : {}),
      },
    };
    writeFileSync(join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    moveIntoPlace(tmp, out);
    progress('done', 1, `wrote ${out}`);
    return manifest;
  } catch (e) {
    for (const w of writers) {
      try {
        w.close();
      } catch {
        /* already failing */
      }
    }
    rmSync(tmp, { recursive: true, force: true });
    if (isEngineError(e)) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC') throw new EngineError('convert-failed', `out of disk space while writing ${out}; nothing was written`, { cause: e });
    throw new EngineError('convert-failed', `conversion failed: ${errorMessage(e)}`, { cause: e });
  } finally {
    src.weights.close();
  }
}

/** Replacing: the old folder moves aside first and is deleted only once the new one is in place. */
function moveIntoPlace(tmp: string, out: string): void {
  const old = existsSync(out) ? `${tmp}.old` : null;
  if (old) renameSync(out, old);
  renameSync(tmp, out);
  if (old) rmSync(old, { recursive: true, force: true });
}

/**
 * Advice for running a converted model on the CPU EP (null when there is none): fp16 matmuls (an
 * fp16 vision tower, int4 layers computing in fp16) are slow on x86 CPUs (see DESIGN.md, converter).
 */
export function cpuHint(manifest: Pick<Manifest, 'dtype'> & Partial<Pick<Manifest, 'converter'>>): string | null {
  const tips: string[] = [];
  if (manifest.converter?.weights.vision === 'fp16') tips.push('--vision-dtype fp32');
  if (manifest.dtype === 'int4' && (manifest.converter?.int4?.accuracyLevel ?? 0) === 0) tips.push('--accuracy-level 4');
  if (manifest.converter?.int4?.activations === 'fp16') tips.push('--activations fp32');
  if (tips.length === 0) return null;
  return `for the CPU execution provider, convert with ${tips.join(' ')} (faster on x86 CPUs, see bench/results/2026-11-22-cpu.md); keep the defaults for GPUs`;
}

export { PRESETS } from './presets.js';
export { normalizeConfig } from './config.js';
function triple(v: number[]): [number, number, number] {
  if (v.length !== 3) throw new EngineError('model-invalid', `expected 3 per-channel values, got ${v.length}`);
  return [v[0], v[1], v[2]];
}

/** Size, time and hash of each file written so far (the graphs, their weights, the tokenizer). */
async function folderChecksums(dir: string): Promise<Record<string, FileChecksum>> {
  const out: Record<string, FileChecksum> = {};
  for (const name of readdirSync(dir).sort()) {
    const st = statSync(join(dir, name));
    if (st.isFile()) out[name] = { bytes: st.size, mtimeMs: st.mtimeMs, sha256: await sha256(join(dir, name)) };
  }
  return out;
}
