// The engine's public API (DESIGN.md): load a converted model, generate text for an image and a
// prompt, dispose. Used by the server, the CLI and the benchmarks; knows no transport.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { freemem } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { EngineError, isEngineError } from './errors.js';
import type { TokenConstraint } from './generate/constraint.js';
import { decode, throwIfAborted, type StepRecord, type Strategy } from './generate/decode.js';
import { preprocess, type RgbImage } from './image/index.js';
import { loadManifest, type Manifest } from './model/manifest.js';
import { keepsOutputsOnDevice, type ExecutionProvider, type ExecutionProviderRequest } from './model/providers.js';
import { DecoderSequence, ModelSessions, type DecodeLoop } from './model/runtime.js';
import { onnxCommunityVariants, readOnnxCommunityFolder } from './onnx-community/folder.js';
import { OnnxCommunitySessions } from './onnx-community/sessions.js';
import { encodePrompt, loadTokenizer, TextStream, type TextTokenizer } from './text/index.js';

export { EngineError, isEngineError } from './errors.js';
export type { EngineErrorCode } from './errors.js';
export { loadImage, preprocess, DEFAULT_MAX_PIXELS, DEFAULT_MAX_BYTES } from './image/index.js';
export type { RgbImage, LoadImageOptions } from './image/index.js';
export type { Manifest } from './model/manifest.js';
export type { ExecutionProvider, ExecutionProviderRequest } from './model/providers.js';
export { DECODE_LOOPS, type DecodeLoop } from './model/runtime.js';
export { parseExecutionProvider } from './model/providers.js';
export type { StepRecord, Strategy } from './generate/decode.js';
export { segmentConstraint } from './generate/constraint.js';
export type { TokenConstraint, TokenRange } from './generate/constraint.js';
export { buildPrompt, oneLine, parseDetections, parseSegments, cleanText } from './text/index.js';
export type { PromptTask, Detection, Segment } from './text/index.js';

export interface LoadOptions {
  executionProvider?: ExecutionProviderRequest;
  /** CPU threads per session (default: onnxruntime's choice). */
  threads?: number;
  /** Where greedy decoding loops (runtime.ts DecodeLoop); default 'auto'. Our converted models only. */
  decodeLoop?: DecodeLoop;
  /** onnx-community folders: which ONNX variant (fp32, fp16, q4, q4f16, ...); default the smallest good one. */
  variant?: string;
}

// Our converted graphs, or an onnx-community / transformers.js export (helper F's loader).
type Sessions = ModelSessions | OnnxCommunitySessions;

function sequence(s: Sessions, features: ort.Tensor, textIds: readonly (readonly number[])[]) {
  return s instanceof OnnxCommunitySessions ? s.sequence(features, textIds) : new DecoderSequence(s, features, textIds);
}

/** Runs `use` on a new sequence and frees its KV cache afterwards (GPU buffers with WebGPU). */
async function withSequence<T>(
  s: Sessions,
  features: ort.Tensor,
  textIds: readonly (readonly number[])[],
  use: (seq: ReturnType<typeof sequence>) => Promise<T>,
): Promise<T> {
  const seq = sequence(s, features, textIds);
  try {
    return await use(seq);
  } finally {
    (seq as { dispose?: () => void }).dispose?.();
  }
}

export interface DecodingParams {
  maxNewTokens?: number;
  minNewTokens?: number;
  strategy?: Strategy;
  numBeams?: number;
  lengthPenalty?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  signal?: AbortSignal;
  /** Grammar-constrained decoding, e.g. `segmentConstraint(model.manifest.tokens)`; applies to every row. */
  allowedTokens?: TokenConstraint;
}

export interface GenerateOptions extends DecodingParams {
  image: RgbImage;
  /** The task prefix, e.g. 'caption en' or 'detect cat ; dog'. */
  prompt: string;
  /** Streaming: each generated token with the decoded text so far. */
  onToken?: (id: number, textSoFar: string) => void;
  /** Record each step's top-3 ids and (processed) logits. */
  recordSteps?: boolean;
  /** Teacher forcing for parity checks: feed these ids instead of the chosen ones. */
  forceTokens?: readonly number[];
}

export interface GenerateResult {
  /** The full prompt ids as the reference processor builds them (image tokens included). */
  inputIds: number[];
  generatedIds: number[];
  /** Decoded without special tokens. */
  text: string;
  /** Decoded with special tokens (what the output parsers read). */
  raw: string;
  steps?: StepRecord[];
}

export interface BatchItem {
  image: RgbImage;
  prompt: string;
}

export const DEFAULT_MAX_NEW_TOKENS = 32;

export class PaliGemma {
  /** Image features per decoded image: the same image with another prompt skips the vision encoder. */
  private readonly features = new WeakMap<RgbImage, ort.Tensor>();
  private disposed = false;

  private constructor(
    readonly dir: string,
    readonly manifest: Manifest,
    readonly tokenizer: TextTokenizer,
    private readonly sessions: Sessions,
    /** Why 'auto' chose what it chose (empty for an explicit provider). */
    readonly providerNotes: string[],
  ) {}

  /** The execution provider actually in use. */
  get executionProvider(): ExecutionProvider {
    return this.sessions.executionProvider;
  }

  /** Milliseconds spent inside onnxruntime since load (benchmarks). */
  get sessionRunMs(): number {
    return this.sessions.stats.ms;
  }

  /** onnxruntime runs since load, vision and decoder (benchmarks: runs per request). */
  get sessionRuns(): number {
    return this.sessions.stats.runs;
  }

  /** Where greedy decoding loops: 'graph' when requests run their whole loop in one decoder call. */
  get decodeLoop(): 'host' | 'graph' {
    return this.sessions instanceof ModelSessions && this.sessions.greedyInGraph ? 'graph' : 'host';
  }

  /** Known deviations from the reference (model status `warnings`), e.g. causal prompt attention. */
  get warnings(): string[] {
    if (this.sessions instanceof OnnxCommunitySessions) return [...this.sessions.warnings];
    return this.executionProvider === 'webgpu' && hasFp16Matmuls(this.manifest) ? [WEBGPU_FP16_WARNING] : [];
  }

  static async load(dir: string, opts: LoadOptions = {}): Promise<PaliGemma> {
    if (!existsSync(join(dir, 'manifest.json')) && onnxCommunityVariants(dir)) return PaliGemma.loadOnnxCommunity(dir, opts);
    const manifest = await loadManifest(dir);
    const tokenizer = await loadTokenizer(join(dir, manifest.files.tokenizer));
    const request = opts.executionProvider ?? 'auto';
    const notes: string[] = [];
    const sessions =
      request === 'auto'
        ? await chooseProvider(dir, manifest, opts.threads, notes, opts.decodeLoop)
        : await ModelSessions.create(dir, manifest, request, opts.threads, opts.decodeLoop);
    return new PaliGemma(dir, manifest, tokenizer, sessions, notes);
  }

  private static async loadOnnxCommunity(dir: string, opts: LoadOptions): Promise<PaliGemma> {
    const folder = readOnnxCommunityFolder(dir, opts.variant);
    const tokenizer = await loadTokenizer(join(dir, folder.manifest.files.tokenizer));
    const request = opts.executionProvider ?? 'auto';
    const notes: string[] = [];
    // 'auto': CUDA when it loads, else CPU (the speed probe of chooseProvider times our own graphs).
    for (const ep of request === 'auto' ? (['cuda', 'cpu'] as const) : [request]) {
      try {
        const sessions = await OnnxCommunitySessions.create(folder, ep, opts.threads);
        return new PaliGemma(dir, folder.manifest, tokenizer, sessions, notes);
      } catch (e) {
        if (request !== 'auto' || !isEngineError(e, 'provider-unavailable')) throw e;
        notes.push(`${ep}: ${(e as Error).message}`);
      }
    }
    throw new EngineError('provider-unavailable', `no execution provider could load ${dir}`);
  }

  /** `<image>` x N, `<bos>`, prompt, `\n`, as transformers' PaliGemmaProcessor lays it out. */
  promptIds(prompt: string): { inputIds: number[]; textIds: number[] } {
    const { tokens, image, text } = this.manifest;
    // The prompt must leave room for at least one generated token.
    const inputIds = encodePrompt(this.tokenizer, tokens, prompt, image.numImageTokens, { maxTokens: text.maxPositions - 1 });
    return { inputIds, textIds: inputIds.slice(image.numImageTokens) };
  }

  async generate(opts: GenerateOptions): Promise<GenerateResult> {
    this.checkOpen();
    if (opts.strategy === 'beam' && (opts.numBeams ?? 4) > 1 && this.sessions instanceof ModelSessions && keepsOutputsOnDevice(this.executionProvider)) {
      // Beams reorder the KV cache on the host; onnxruntime-node 1.29 aborts the process when asked
      // to download WebGPU buffers, so refuse before any work instead.
      throw new EngineError('invalid-params', `beam search is not available with the ${this.executionProvider} execution provider (its KV cache stays in GPU memory); use greedy or sampling, or --ep cpu / cuda`);
    }
    const { inputIds, textIds } = this.promptIds(opts.prompt);
    const maxNewTokens = this.maxNewTokens(opts, inputIds.length);
    throwIfAborted(opts.signal);
    const features = await this.imageFeatures([opts.image]);
    const stream = opts.onToken ? new TextStream(this.tokenizer) : undefined;
    let soFar = '';
    const out = await withSequence(this.sessions, features, [textIds], (seq) =>
      decode(seq, {
        ...decodingOptions(opts, maxNewTokens, this.manifest),
        recordSteps: opts.recordSteps,
        forceTokens: opts.forceTokens,
        onToken: stream
          ? (id) => {
              soFar += stream.push(id);
              opts.onToken!(id, soFar);
            }
          : undefined,
      }),
    );
    return { ...this.result(inputIds, out.tokens[0]), steps: out.steps };
  }

  /** The prefill's last-position logits for an image and prompt (parity checks, scoring). */
  async lastLogits(image: RgbImage, prompt: string): Promise<Float32Array> {
    this.checkOpen();
    const { textIds } = this.promptIds(prompt);
    const features = await this.imageFeatures([image]);
    return withSequence(this.sessions, features, [textIds], (seq) => seq.prefill());
  }

  /**
   * Several prompts in one pass (greedy or sampling): one vision run for all images and one
   * decoder run per step for all rows. Each result equals what `generate` gives alone, up to
   * float rounding in the batched matrix products.
   */
  async generateBatch(items: readonly BatchItem[], params: DecodingParams = {}): Promise<GenerateResult[]> {
    this.checkOpen();
    if (items.length === 0) return [];
    if (params.strategy === 'beam') {
      throw new EngineError('invalid-params', 'beam search runs one prompt at a time; use generate()');
    }
    const prompts = items.map((it) => this.promptIds(it.prompt));
    const longest = Math.max(...prompts.map((p) => p.inputIds.length));
    const maxNewTokens = this.maxNewTokens(params, longest);
    throwIfAborted(params.signal);
    const features = await this.imageFeatures(items.map((it) => it.image));
    const out = await withSequence(this.sessions, features, prompts.map((p) => p.textIds), (seq) =>
      decode(seq, { ...decodingOptions(params, maxNewTokens, this.manifest), padTokenId: this.manifest.tokens.pad }),
    );
    return prompts.map((p, i) => this.result(p.inputIds, out.tokens[i]));
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.sessions.release();
  }

  private checkOpen(): void {
    if (this.disposed) throw new EngineError('invalid-params', 'this model was disposed');
  }

  private maxNewTokens(params: DecodingParams, promptLength: number): number {
    const want = params.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS;
    const room = this.manifest.text.maxPositions - promptLength;
    if (Number.isInteger(want) && want > room) {
      throw new EngineError(
        'prompt-too-long',
        `the prompt takes ${promptLength} of the model's ${this.manifest.text.maxPositions} positions, leaving room for ${room} new tokens, not ${want}`,
      );
    }
    return want;
  }

  private result(inputIds: number[], generatedIds: number[]): GenerateResult {
    return {
      inputIds,
      generatedIds,
      text: this.tokenizer.decode(generatedIds, { skipSpecialTokens: true }),
      raw: this.tokenizer.decode(generatedIds, { skipSpecialTokens: false }),
    };
  }

  /** image_features [B, N, hidden] for the images, from the cache where possible. */
  private async imageFeatures(images: readonly RgbImage[]): Promise<ort.Tensor> {
    const missing = [...new Set(images.filter((im) => !this.features.has(im)))];
    if (missing.length > 0) {
      const { image } = this.manifest;
      const plane = 3 * image.size * image.size;
      const pixels = new Float32Array(missing.length * plane);
      missing.forEach((im, i) => preprocess(im, image, pixels.subarray(i * plane, (i + 1) * plane)));
      const encoded = await this.sessions.encodeImages(pixels, missing.length);
      const [, n, hidden] = encoded.dims;
      const data = encoded.data as Float32Array;
      missing.forEach((im, i) => {
        const one = data.slice(i * n * hidden, (i + 1) * n * hidden);
        this.features.set(im, tensor(one, [1, n, hidden]));
      });
    }
    if (images.length === 1) return this.features.get(images[0])!;
    const first = this.features.get(images[0])!;
    const [, n, hidden] = first.dims;
    const all = new Float32Array(images.length * n * hidden);
    images.forEach((im, i) => all.set(this.features.get(im)!.data as Float32Array, i * n * hidden));
    return tensor(all, [images.length, n, hidden]);
  }
}

// Measured on the WebGPU EP (lavapipe): an fp16 MatMul with K = 4304 is off by up to 1.4 against the
// exact product (0.03 on the CPU EP): its shaders accumulate in fp16. MatMulNBits with fp16
// activations is off by 0.055 at K = 16384 (0.002 on the CPU EP).
const WEBGPU_FP16_WARNING =
  'this model has fp16 matmuls, which the WebGPU execution provider accumulates in fp16: outputs of full-size models degrade. For WebGPU convert with --dtype int4 (fp32 vision tower and activations, the defaults) or fp32';

/**
 * fp16 matmuls anywhere: an fp16 decoder, int4 layers computing in fp16, or an fp16 vision tower
 * (int4 conversions before 2026-11-23 have one).
 */
function hasFp16Matmuls(m: Manifest): boolean {
  const vision = m.converter?.weights?.vision ?? (m.dtype === 'fp32' ? 'fp32' : 'fp16');
  const int4 = m.converter?.int4 as { activations?: string } | undefined;
  return m.dtype === 'fp16' || vision === 'fp16' || int4?.activations === 'fp16';
}

function tensor(data: Float32Array, dims: number[]): ort.Tensor {
  return new ort.Tensor('float32', data, dims);
}

function decodingOptions(p: DecodingParams, maxNewTokens: number, manifest: Manifest) {
  return {
    maxNewTokens,
    minNewTokens: p.minNewTokens,
    strategy: p.strategy,
    numBeams: p.numBeams,
    lengthPenalty: p.lengthPenalty,
    temperature: p.temperature,
    topK: p.topK,
    topP: p.topP,
    seed: p.seed,
    signal: p.signal,
    allowedTokens: p.allowedTokens,
    eosTokenId: manifest.tokens.eos,
  };
}

/**
 * 'auto': CUDA if it loads and runs a probe (vision, prefill, a step); else WebGPU if it loads and runs a short prefill faster than the CPU;
 * else the CPU. `notes` says what was tried.
 */
async function chooseProvider(
  dir: string,
  manifest: Manifest,
  threads: number | undefined,
  notes: string[],
  decodeLoop?: DecodeLoop,
): Promise<ModelSessions> {
  const create = (ep: ExecutionProvider) => ModelSessions.create(dir, manifest, ep, threads, decodeLoop);
  const attempt = async (ep: ExecutionProvider): Promise<ModelSessions | undefined> => {
    try {
      return await create(ep);
    } catch (e) {
      if (!isEngineError(e, 'provider-unavailable')) throw e;
      notes.push(`${ep} unavailable: ${e.message.split(' — ')[0]}`);
      return undefined;
    }
  };
  const cuda = await attempt('cuda');
  if (cuda) {
    // A provider can load a graph and still fail to run one of its ops: one probe run first.
    try {
      await probeMs(cuda);
      return cuda;
    } catch (e) {
      notes.push(`cuda failed its probe run: ${(e as Error).message.split('\n')[0]}`);
      await cuda.release();
    }
  }
  const webgpu = await attempt('webgpu');
  if (!webgpu) return create('cpu');
  let gpuMs: number;
  try {
    gpuMs = await probeMs(webgpu);
  } catch (e) {
    notes.push(`webgpu failed its probe run: ${(e as Error).message}`);
    await webgpu.release();
    return create('cpu');
  }
  // Both providers' sessions at once need the weights twice in memory; when that would not fit
  // comfortably, measure one after the other and load the winner again.
  const together = 2 * modelBytes(dir, manifest) < 0.7 * freemem();
  if (!together) await webgpu.release();
  const cpu = await create('cpu');
  const cpuMs = await probeMs(cpu);
  notes.push(`webgpu probe ${gpuMs.toFixed(1)} ms vs cpu ${cpuMs.toFixed(1)} ms`);
  if (cpuMs <= gpuMs) {
    if (together) await webgpu.release();
    return cpu;
  }
  await cpu.release();
  return together ? webgpu : create('webgpu');
}

/** Bytes of the graphs and their external data files. */
function modelBytes(dir: string, manifest: Manifest): number {
  let total = 0;
  for (const file of readdirSync(dir)) {
    if ([manifest.files.vision, manifest.files.decoder].some((g) => file.startsWith(g))) total += statSync(join(dir, file)).size;
  }
  return total;
}

/** Time of a vision run plus a short prefill and one decode step (the second of two tries). */
async function probeMs(sessions: ModelSessions): Promise<number> {
  const { image, tokens } = sessions.manifest;
  const once = async (): Promise<number> => {
    const t0 = performance.now();
    const features = await sessions.encodeImages(new Float32Array(3 * image.size * image.size), 1);
    await withSequence(sessions, features, [[tokens.bos, tokens.newline]], async (seq) => {
      await seq.prefill();
      await seq.next([tokens.bos]);
    });
    // decoder-loop.onnx: one greedy step inside the graph too.
    if (sessions.greedyInGraph) await withSequence(sessions, features, [[tokens.bos, tokens.newline]], (seq) => seq.greedy!(2, 2));
    return performance.now() - t0;
  };
  await once();
  return once();
}
