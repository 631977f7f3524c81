// The engine's public API (DESIGN.md): load a converted model, generate text for an image and a
// prompt, dispose. Used by the server, the CLI and the benchmarks; knows no transport.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { EngineError } from './errors.js';
import { decode, throwIfAborted, type DecodeOptions, type StepRecord } from './generate/decode.js';
import { preprocess, type RgbImage } from './image/index.js';
import { loadManifest, type Manifest } from './model/manifest.js';
import { chooseProvider, firstAvailable } from './model/provider-choice.js';
import type { ExecutionProvider, ExecutionProviderRequest } from './model/providers.js';
import { ModelSessions, type DecodeLoop } from './model/runtime.js';
import { withSequence, type Sessions } from './model/sessions.js';
import { readTransformersJsFolder, transformersJsVariants } from './transformers-js/folder.js';
import { TransformersJsSessions } from './transformers-js/sessions.js';
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
  /** transformers.js exports: which ONNX variant (fp32, fp16, q4, q4f16, ...); default the smallest good one. */
  variant?: string;
}

/** The decoding choices of a request; generate/decode.ts's DecodeOptions says what each means. */
export type DecodingParams = Partial<
  Pick<DecodeOptions, 'maxNewTokens' | 'minNewTokens' | 'strategy' | 'numBeams' | 'lengthPenalty' | 'temperature' | 'topK' | 'topP' | 'seed' | 'signal' | 'allowedTokens'>
>;

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
  /** This row's own limit (default: the batch's maxNewTokens); a row that reaches it stops costing. */
  maxNewTokens?: number;
}

export interface BatchOptions extends DecodingParams {
  /** Record each row's top-3 ids and (processed) logits per step, as `generate` does. */
  recordSteps?: boolean;
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
  get decodeLoop(): 'host' | 'graph' | 'search' {
    return this.sessions.decodeLoop;
  }

  /** Known deviations from the reference (model status `warnings`), e.g. causal prompt attention. */
  get warnings(): string[] {
    return [...this.sessions.warnings];
  }

  static async load(dir: string, opts: LoadOptions = {}): Promise<PaliGemma> {
    if (!existsSync(join(dir, 'manifest.json')) && transformersJsVariants(dir)) return PaliGemma.loadTransformersJs(dir, opts);
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

  private static async loadTransformersJs(dir: string, opts: LoadOptions): Promise<PaliGemma> {
    const folder = readTransformersJsFolder(dir, opts.variant);
    const tokenizer = await loadTokenizer(join(dir, folder.manifest.files.tokenizer));
    const request = opts.executionProvider ?? 'auto';
    const notes: string[] = [];
    const create = (ep: ExecutionProvider) => TransformersJsSessions.create(folder, ep, opts.threads);
    // 'auto': CUDA when it loads, else CPU.
    const sessions = request === 'auto' ? await firstAvailable(dir, ['cuda', 'cpu'], create, notes) : await create(request);
    return new PaliGemma(dir, folder.manifest, tokenizer, sessions, notes);
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
    if (opts.strategy === 'beam' && (opts.numBeams ?? 4) > 1 && !this.sessions.reordersOnHost) {
      // Beams reorder the KV cache on the host; onnxruntime-node 1.29 aborts the process when asked
      // to download WebGPU buffers, so refuse before any work instead.
      throw new EngineError(
        'invalid-params',
        `beam search is not available with the ${this.executionProvider} execution provider (its KV cache stays in GPU memory); use greedy or sampling, or --ep cpu / cuda`,
      );
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
    return { ...this.result(inputIds, out.tokens[0]), steps: out.steps?.[0] };
  }

  /** The prefill's last-position logits for an image and prompt (parity checks, scoring). */
  async lastLogits(image: RgbImage, prompt: string): Promise<Float32Array> {
    this.checkOpen();
    const { textIds } = this.promptIds(prompt);
    const features = await this.imageFeatures([image]);
    return withSequence(this.sessions, features, [textIds], (seq) => seq.prefill());
  }

  /**
   * Several prompts in one pass (greedy or sampling): one vision run for all images, one batched
   * prefill (prompts of different lengths padded between image and text, masks and positions per
   * row) and one decoder run per step for the rows still going: a row that ends (eos or its own
   * maxNewTokens) is dropped from the batch where the KV cache is on the host. Each result equals
   * what `generate` gives alone, up to float rounding in the batched matrix products (DESIGN.md
   * "Batched generation").
   */
  async generateBatch(items: readonly BatchItem[], params: BatchOptions = {}): Promise<GenerateResult[]> {
    this.checkOpen();
    if (items.length === 0) return [];
    if (params.strategy === 'beam') {
      throw new EngineError('invalid-params', 'beam search runs one prompt at a time; use generate()');
    }
    const prompts = items.map((it) => this.promptIds(it.prompt));
    const limits = items.map((it, i) => this.maxNewTokens({ maxNewTokens: it.maxNewTokens ?? params.maxNewTokens }, prompts[i].inputIds.length));
    throwIfAborted(params.signal);
    const features = await this.imageFeatures(items.map((it) => it.image));
    const out = await withSequence(
      this.sessions,
      features,
      prompts.map((p) => p.textIds),
      (seq) =>
        decode(seq, {
          ...decodingOptions(params, Math.max(...limits), this.manifest),
          rowMaxNewTokens: limits,
          recordSteps: params.recordSteps,
          padTokenId: this.manifest.tokens.pad,
        }),
    );
    return prompts.map((p, i) => ({ ...this.result(p.inputIds, out.tokens[i]), steps: out.steps?.[i] }));
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

function tensor(data: Float32Array, dims: number[]): ort.Tensor {
  return new ort.Tensor('float32', data, dims);
}

function decodingOptions(p: DecodingParams, maxNewTokens: number, manifest: Manifest): DecodeOptions {
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
