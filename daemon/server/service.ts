// The daemon's methods, independent of any transport: validate params, answer from the cache when
// possible, otherwise admit the request against the memory budget and, when its turn comes, decode
// the image and run the model (identical requests in flight share one run). connection.ts binds
// these to a JSON-RPC connection.
import type {
  DecodingOptions,
  DetectedObject,
  ExecutionProviderSetting,
  GenerateResult,
  ImageRef,
  ModelStatus,
  ObjectsResult,
  ProgressNotification,
  StatusResult,
  TextResult,
  TokenNotification,
} from '../protocol.js';
import type { Backend, DecodedImage, GenerateOutput, Grammar, ImageLimits, LoadedModel, Task } from './backend.js';
import { EngineError } from '../engine/errors.js';
import { ErrorCodes } from '../protocol.js';
import { cancelled, RpcFailure } from './errors.js';
import { ImageHasher, type ImageBytes } from './imageSource.js';
import { DEFAULT_MEMORY_BUDGET_BYTES, MemoryBudget } from './memoryBudget.js';
import { SharedRuns } from './sharedRuns.js';
import type { Logger } from './log.js';
import { Lru } from './lru.js';
import { ModelManager } from './modelManager.js';
import * as P from './params.js';
import { Batcher, type BatchEntry, batchKey } from './batcher.js';
import { cacheKey, ResultCache } from './resultCache.js';
import { DAEMON_VERSION } from '../client/version.js';

export interface ServiceOptions {
  backend: Backend;
  log: Logger;
  modelPath?: string;
  executionProvider?: ExecutionProviderSetting;
  keepAliveMs?: number;
  queueCapacity?: number;
  cacheEntries?: number;
  cacheDir?: string;
  imageCacheEntries?: number;
  limits?: Partial<ImageLimits>;
  transport: StatusResult['transport'];
  socketPath?: string;
  idleExitMs?: number;
  /** Most requests per batched model call (default 8 on a GPU, 1 - no batching - on the CPU). */
  maxBatch?: number;
  /** Bytes that the images of admitted requests may hold at once (files and decoded pixels); Busy past it. */
  memoryBudgetBytes?: number;
}

export interface RequestContext {
  signal: AbortSignal;
  /** Sends a token notification to the requesting client only. */
  sendToken?: (n: TokenNotification) => void;
}

const IMAGE_CACHE_BYTES = 256 * 1024 * 1024;
const imageBytes = (img: DecodedImage) => img.width * img.height * 3;

export const DEFAULT_LIMITS: ImageLimits = { maxPixels: 50_000_000, maxBytes: 50 * 1024 * 1024 };

type TextPayload = { text: string };
type ObjectsPayload = { objects: DetectedObject[] };
type GeneratePayload = Pick<GenerateResult, 'text' | 'raw' | 'inputIds' | 'generatedIds'>;

interface TaskSpec<R> {
  task: Task | 'generate';
  image: ImageRef;
  prompt: string;
  decoding: DecodingOptions;
  grammar?: Grammar;
  streamId?: string;
  cacheOnly?: boolean;
  finish: (out: GenerateOutput, image: DecodedImage, model: LoadedModel) => R | Promise<R>;
}

export class PaliGemmaService {
  readonly models: ModelManager;
  private readonly cache: ResultCache<object>;
  private readonly images: Lru<DecodedImage>;
  private readonly batcher = new Batcher();
  readonly shared = new SharedRuns();
  readonly budget: MemoryBudget;
  private readonly hasher: ImageHasher;
  private readonly limits: ImageLimits;
  private readonly started = Date.now();
  private readonly listeners = {
    modelChanged: new Set<(s: ModelStatus) => void>(),
    progress: new Set<(p: ProgressNotification) => void>(),
  };
  clients = 0;

  constructor(private readonly o: ServiceOptions) {
    this.limits = { ...DEFAULT_LIMITS, ...o.limits };
    this.hasher = new ImageHasher(this.limits.maxBytes);
    this.budget = new MemoryBudget(o.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET_BYTES);
    this.cache = new ResultCache({ maxEntries: o.cacheEntries ?? 2048, dir: o.cacheDir });
    // Bounded by count and by decoded bytes (a 50-megapixel image is 150 MB of RGB).
    this.images = new Lru<DecodedImage>(o.imageCacheEntries ?? 16, IMAGE_CACHE_BYTES, imageBytes);
    this.models = new ModelManager({
      backend: o.backend,
      modelPath: o.modelPath,
      executionProvider: o.executionProvider ?? 'auto',
      keepAliveMs: o.keepAliveMs ?? 5 * 60_000,
      queueCapacity: o.queueCapacity ?? 512,
      maxBatch: o.maxBatch,
      log: o.log,
      onChange: (s) => this.listeners.modelChanged.forEach((l) => l(s)),
      onProgress: (p) => this.listeners.progress.forEach((l) => l(p)),
    });
  }

  on(event: 'modelChanged', l: (s: ModelStatus) => void): () => void;
  on(event: 'progress', l: (p: ProgressNotification) => void): () => void;
  on(event: 'modelChanged' | 'progress', l: (x: never) => void): () => void {
    const set = this.listeners[event] as Set<unknown>;
    set.add(l);
    return () => set.delete(l);
  }

  caption(params: unknown, ctx: RequestContext): Promise<TextResult> {
    const p = P.caption(params);
    const prompt = this.o.backend.prompt('caption', { language: p.language, detail: p.detail });
    return this.runTask({ task: 'caption', image: p.image, prompt, decoding: p.decoding, streamId: p.streamId, cacheOnly: p.cacheOnly, finish: this.textOf }, ctx);
  }

  ocr(params: unknown, ctx: RequestContext): Promise<TextResult> {
    const p = P.ocr(params);
    const prompt = this.o.backend.prompt('ocr', {});
    return this.runTask({ task: 'ocr', image: p.image, prompt, decoding: p.decoding, streamId: p.streamId, cacheOnly: p.cacheOnly, finish: this.textOf }, ctx);
  }

  answer(params: unknown, ctx: RequestContext): Promise<TextResult> {
    const p = P.answer(params);
    const prompt = this.o.backend.prompt('answer', { question: p.question, language: p.language });
    return this.runTask({ task: 'answer', image: p.image, prompt, decoding: p.decoding, streamId: p.streamId, cacheOnly: p.cacheOnly, finish: this.textOf }, ctx);
  }

  detect(params: unknown, ctx: RequestContext): Promise<ObjectsResult> {
    const p = P.detect(params);
    const prompt = this.o.backend.prompt('detect', { objects: p.objects });
    return this.runTask(
      {
        task: 'detect',
        image: p.image,
        prompt,
        decoding: p.decoding,
        streamId: p.streamId,
        cacheOnly: p.cacheOnly,
        finish: (out, img) => ({ objects: this.o.backend.parseObjects('detect', out.raw, img.width, img.height) }),
      },
      ctx,
    );
  }

  segment(params: unknown, ctx: RequestContext): Promise<ObjectsResult> {
    const p = P.segment(params);
    const prompt = this.o.backend.prompt('segment', { object: p.object });
    // Masks when the model has a mask decoder (vae.onnx), boxes and labels otherwise.
    return this.runTask(
      {
        task: 'segment',
        image: p.image,
        prompt,
        decoding: p.decoding,
        grammar: p.constrained ? 'segment' : undefined,
        streamId: p.streamId,
        cacheOnly: p.cacheOnly,
        finish: async (out, img, model) => ({
          objects: model.segment ? await model.segment(out.raw, img.width, img.height) : this.o.backend.parseObjects('segment', out.raw, img.width, img.height),
        }),
      },
      ctx,
    );
  }

  generate(params: unknown, ctx: RequestContext): Promise<GenerateResult> {
    const p = P.generate(params);
    return this.runTask(
      {
        task: 'generate',
        image: p.image,
        prompt: p.prompt,
        decoding: p.decoding,
        streamId: p.streamId,
        finish: (out): GeneratePayload => ({ text: out.text, raw: out.raw, inputIds: out.inputIds, generatedIds: out.generatedIds }),
      },
      ctx,
    );
  }

  loadModel(params: unknown, ctx: RequestContext): Promise<ModelStatus> {
    const p = P.loadModel(params);
    this.o.log.info('loadModel', { path: p.path, ep: p.executionProvider });
    return this.models.load(p.path, p.executionProvider, ctx.signal);
  }

  unloadModel(params: unknown, ctx: RequestContext): Promise<ModelStatus> {
    P.none(params, 'unloadModel');
    return this.models.unload(ctx.signal);
  }

  status(params: unknown): StatusResult {
    P.none(params, 'status');
    const mem = process.memoryUsage();
    const s: StatusResult = {
      version: DAEMON_VERSION,
      pid: process.pid,
      uptimeMs: Date.now() - this.started,
      model: this.models.status(),
      queue: { running: this.models.scheduler.running, pending: this.models.scheduler.pending, capacity: this.models.scheduler.capacity },
      memory: { rssBytes: mem.rss, heapUsedBytes: mem.heapUsed },
      cache: { entries: this.cache.entries, hits: this.cache.hits, misses: this.cache.misses, imageEntries: this.images.size },
      clients: this.clients,
      transport: this.o.transport,
      keepAliveMs: this.o.keepAliveMs ?? 5 * 60_000,
    };
    if (this.o.socketPath) s.socketPath = this.o.socketPath;
    if (this.o.idleExitMs !== undefined) s.idleExitMs = this.o.idleExitMs;
    return s;
  }

  async dispose(): Promise<void> {
    await this.models.dispose();
    this.images.clear();
    this.cache.clearMemory();
  }

  private async runTask<R extends object>(spec: TaskSpec<R>, ctx: RequestContext): Promise<R & { model: string; ms: number; cached: boolean }> {
    const t0 = performance.now();
    const content = await this.hasher.open(spec.image);
    const identity = await this.models.identity();
    const keyOf = (sha: string, modelId = identity.id) =>
      cacheKey({ imageSha256: sha, task: spec.task, prompt: spec.prompt, modelId, decoding: spec.decoding, grammar: spec.grammar });
    const lookup = async (sha: string) => {
      const hit = (await this.cache.get(keyOf(sha))) as R | undefined;
      if (!hit) return undefined;
      const ms = Math.round(performance.now() - t0);
      this.o.log.debug('cache hit', { task: spec.task, image: content.label, ms });
      return { ...hit, model: identity.name, ms, cached: true };
    };
    const hit = await lookup(content.sha256);
    if (hit) return hit;
    if (spec.cacheOnly) throw new RpcFailure(ErrorCodes.NotCached, `no cached ${spec.task} result for ${content.label} yet`, 'not-cached');
    if (ctx.signal.aborted) throw cancelled();
    const src = await content.read();
    if (src.sha256 !== content.sha256) {
      // The file changed since it was last hashed: its new content may be cached too.
      const fresh = await lookup(src.sha256);
      if (fresh) return fresh;
    }
    const key = keyOf(src.sha256);
    // Keyed by the model that actually ran (it may have been switched while this waited).
    const keyFor = (modelId: string) => (modelId === identity.id ? key : keyOf(src.sha256, modelId));
    const compute = (signal: AbortSignal) => this.compute({ spec, src, keyFor, signal, ctx, t0 });
    // A streamed request sends its tokens to its own client, so it does not share.
    const { payload, name } = spec.streamId === undefined ? await this.shared.join(key, compute, ctx.signal) : await compute(ctx.signal);
    return { ...payload, model: name, ms: Math.round(performance.now() - t0), cached: false };
  }

  /** Admits the request against the memory budget, then decodes and runs it when its turn comes. */
  private async compute<R extends object>(run: {
    spec: TaskSpec<R>;
    src: ImageBytes;
    /** The cache key of the result for the model that ran it. */
    keyFor: (modelId: string) => string;
    signal: AbortSignal;
    ctx: RequestContext;
    t0: number;
  }): Promise<{ payload: R; name: string }> {
    const { spec, src, keyFor, signal: requestSignal, ctx, t0 } = run;
    const release = this.budget.admit(src.bytes.length + (await this.decodedSize(src)), src.label);
    try {
      let decoded: Promise<DecodedImage> | undefined;
      const decode = () => (decoded ??= this.decode(src.sha256, src.bytes, src.label));
      const bkey = batchKey(spec.decoding, spec.streamId !== undefined, spec.grammar);
      const entry: BatchEntry | undefined =
        bkey === undefined ? undefined : { key: bkey, image: decode, prompt: spec.prompt, decoding: spec.decoding, grammar: spec.grammar, signal: requestSignal };
      const unregister = entry && this.batcher.add(entry);
      return await this.models
        .use(async (active, signal) => {
          let generated = 0;
          let image: DecodedImage | undefined;
          const out = entry
            ? await this.batcher.generate(entry, active.model, this.models.maxBatch(active.model), signal)
            : await active.model.generate({
                image: (image = await decode()),
                prompt: spec.prompt,
                decoding: spec.decoding,
                grammar: spec.grammar,
                signal,
                onToken: (tokenId, text) => {
                  generated++;
                  if (spec.streamId !== undefined) ctx.sendToken?.({ streamId: spec.streamId, text, tokenId });
                },
              });
          const result = await spec.finish(out, image ?? (await decode()), active.model);
          await this.cache.set(keyFor(active.id), result);
          this.o.log.debug('generated', { task: spec.task, image: src.label, tokens: generated, batch: entry?.batchSize ?? 1, ms: Math.round(performance.now() - t0) });
          return { payload: result, name: active.model.info.name };
        }, requestSignal)
        .finally(unregister);
    } finally {
      release();
    }
  }

  /** The decoded size of an image from its header (0 when unreadable: decoding reports why). */
  private async decodedSize(src: ImageBytes): Promise<number> {
    if (this.images.get(src.sha256)) return 0;
    const size = await this.o.backend.measureImage?.(src.bytes).catch(() => undefined);
    if (!size) return 0;
    const pixels = size.width * size.height;
    // Over the pixel limit it is refused when decoded, without being decoded.
    return pixels > this.limits.maxPixels ? 0 : pixels * 3;
  }

  private readonly textOf = (out: GenerateOutput): TextPayload => ({ text: this.o.backend.displayText(out.text) });

  private async decode(sha: string, bytes: Buffer, label: string): Promise<DecodedImage> {
    const cached = this.images.get(sha);
    if (cached) return cached;
    const image = await this.o.backend.decodeImage(bytes, this.limits).catch((e: unknown) => {
      // The engine decodes a buffer and calls it "image data"; name the file instead.
      if (e instanceof EngineError) throw new EngineError(e.code, e.message.replace(/^(the )?image data/, label), { cause: e });
      throw e;
    });
    this.images.set(sha, image);
    return image;
  }
}

export type { ObjectsPayload };
