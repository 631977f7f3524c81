// The engine in a worker thread. onnxruntime-node runs sessions synchronously on the calling thread
// (InferenceSession.run is a blocking native call, and so is session creation), so with the engine
// in the daemon's main thread every client waited out every prefill - status, cancellation, cached
// answers, new connections. Here the main thread keeps JSON-RPC, the queue and the caches; the
// worker (engineWorker.ts) runs engineBackend()'s models.
//
// Images are decoded on this side (sharp is asynchronous) into shared memory and get an id, so that
// posting one shares its pixels, and the worker maps the id back to the same object each time: the
// engine caches image features per image object (caption + ocr + detect of one file encode it once).
import { Worker } from 'node:worker_threads';
import type { RgbImage } from '../engine/image/index.js';
import type { DetectedObject, ProgressNotification } from '../protocol.js';
import type { Backend, DecodedImage, GenerateOutput, GenerateRequest, LoadedModel, ModelInfo, RunStats } from './backend.js';
import { engineBackend } from './engineBackend.js';
import type { Logger } from './log.js';
import { fromErrorMessage, type ImageMessage, type LoadReply, type WorkerData, type WorkerReply, type WorkerRequest } from './workerMessages.js';

export interface WorkerBackendOptions {
  /** Test hook: a module exporting `backend(): Backend` whose `load` the worker uses instead of engineBackend()'s. */
  backendModule?: string;
  /** Decoded images the worker keeps by id (with the features the engine cached for them). */
  imageEntries?: number;
  log?: Logger;
}

/** Next to this module: out/daemon/server/engineWorker.js (tsc), or dist/engineWorker.mjs beside dist/daemon.mjs (.ci/bundle.mjs). */
const WORKER_URL = new URL(import.meta.url.endsWith('.mjs') ? './engineWorker.mjs' : './engineWorker.js', import.meta.url);

export function workerBackend(o: WorkerBackendOptions = {}): Backend {
  const local = engineBackend();
  const data: WorkerData = { backendModule: o.backendModule, imageEntries: o.imageEntries ?? 32 };
  let current: EngineWorker | undefined;
  const imageIds = new WeakMap<DecodedImage, number>();
  let nextImageId = 1;

  // An image's id is given when it first crosses to the worker.
  const imageMessage = (image: DecodedImage): ImageMessage => {
    let id = imageIds.get(image);
    if (id === undefined) imageIds.set(image, (id = nextImageId++));
    const { width, height, rgb } = image as RgbImage;
    return { id, width, height, rgb };
  };

  return {
    identify: local.identify,
    prompt: local.prompt,
    parseObjects: local.parseObjects,
    displayText: local.displayText,
    measureImage: local.measureImage,

    async decodeImage(bytes, limits) {
      const decoded = (await local.decodeImage(bytes, limits)) as RgbImage;
      // One copy into shared memory: every later post of this image to the worker shares it.
      const rgb = new Uint8Array(new SharedArrayBuffer(decoded.rgb.byteLength));
      rgb.set(decoded.rgb);
      return { width: decoded.width, height: decoded.height, rgb } satisfies RgbImage;
    },

    async load(path, { executionProvider, onProgress }) {
      // A worker that stopped (crashed, or ended with its last model) is replaced by a fresh one.
      if (!current || current.stopped) current = new EngineWorker(WORKER_URL, data, o.log);
      const worker = current;
      worker.hold();
      try {
        const r = await worker.call<LoadReply>({ op: 'load', path, executionProvider }, { onProgress });
        return new WorkerModel(worker, r, imageMessage);
      } catch (e) {
        await worker.release();
        throw e;
      }
    },
  };
}

interface Pending {
  resolve(value: unknown): void;
  reject(e: Error): void;
  onProgress?: (p: ProgressNotification) => void;
  onToken?: (tokenId: number, text: string) => void;
  detach(): void;
}

/** A request before it gets its id (Omit over each member of the union). */
type Call = WorkerRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

/** One worker thread and the calls in flight to it. */
class EngineWorker {
  /** Why the worker can no longer be used; set once it stops, for whatever reason. */
  stopped: Error | undefined;
  private readonly worker: Worker;
  private readonly calls = new Map<number, Pending>();
  private nextId = 1;
  /** Loaded models plus loads in progress: the worker ends when this drops to 0. */
  private holds = 0;

  constructor(
    url: URL,
    data: WorkerData,
    private readonly log?: Logger,
  ) {
    this.worker = new Worker(url, { workerData: data });
    // Referenced only while calls are in flight: an idle worker never keeps the process alive.
    this.worker.unref();
    this.worker.on('message', (m: WorkerReply) => this.onMessage(m));
    this.worker.on('error', (e) => this.fail(`the engine worker crashed: ${e.message}`));
    this.worker.on('exit', (code) => this.fail(`the engine worker exited unexpectedly (exit code ${code})`));
  }

  call<T>(req: Call, hooks: { onProgress?: Pending['onProgress']; onToken?: Pending['onToken']; signal?: AbortSignal } = {}): Promise<T> {
    if (this.stopped) return Promise.reject(this.stopped);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const { signal } = hooks;
      const cancel = () => this.post({ op: 'cancel', id });
      signal?.addEventListener('abort', cancel, { once: true });
      this.calls.set(id, {
        resolve: resolve as (v: unknown) => void,
        reject,
        onProgress: hooks.onProgress,
        onToken: hooks.onToken,
        detach: () => signal?.removeEventListener('abort', cancel),
      });
      if (this.calls.size === 1) this.worker.ref();
      try {
        this.post({ ...req, id } as WorkerRequest);
      } catch (e) {
        // Not cloneable: this call fails, the worker is fine.
        this.settle(id);
        reject(e as Error);
        return;
      }
      // Messages arrive in order: the worker sees the request, then its cancellation.
      if (signal?.aborted) cancel();
    });
  }

  hold(): void {
    this.holds++;
  }

  /** Drops a hold; the last one ends the worker (its memory goes with it). */
  async release(): Promise<void> {
    if (--this.holds > 0 || this.stopped) return;
    this.stopped = new Error('the engine worker was stopped');
    await this.worker.terminate();
  }

  private post(m: WorkerRequest): void {
    if (!this.stopped) this.worker.postMessage(m);
  }

  private onMessage(m: WorkerReply): void {
    const call = this.calls.get(m.id);
    if (!call) return;
    switch (m.kind) {
      case 'progress':
        call.onProgress?.(m.progress);
        return;
      case 'token':
        call.onToken?.(m.tokenId, m.text);
        return;
      case 'done':
        this.settle(m.id);
        call.resolve(m.value);
        return;
      case 'failed':
        this.settle(m.id);
        call.reject(fromErrorMessage(m.error));
        return;
    }
  }

  private settle(id: number): void {
    this.calls.get(id)?.detach();
    this.calls.delete(id);
    if (this.calls.size === 0) this.worker.unref();
  }

  /** The worker is gone: every call in flight fails now, and so does every later one. */
  private fail(why: string): void {
    if (this.stopped) return;
    this.stopped = new Error(`${why}; the model will be loaded again on the next request`);
    this.log?.error('engine worker stopped', { error: why, inFlight: this.calls.size });
    const calls = [...this.calls.values()];
    this.calls.clear();
    for (const c of calls) {
      c.detach();
      c.reject(this.stopped);
    }
  }
}

class WorkerModel implements LoadedModel {
  readonly info: ModelInfo;
  readonly segment?: (raw: string, width: number, height: number) => Promise<DetectedObject[]>;
  readonly generateBatch?: LoadedModel['generateBatch'];
  private readonly model: number;
  private disposed = false;

  constructor(
    private readonly worker: EngineWorker,
    loaded: LoadReply,
    private readonly image: (img: DecodedImage) => ImageMessage,
  ) {
    const model = (this.model = loaded.model);
    this.info = loaded.info;
    if (loaded.segment) this.segment = (raw, width, height) => worker.call({ op: 'segment', model, raw, width, height });
    if (loaded.batch) {
      this.generateBatch = (items, decoding, signal, grammar) =>
        worker.call<GenerateOutput[]>(
          { op: 'generateBatch', model, items: items.map((it) => ({ image: image(it.image), prompt: it.prompt, maxNewTokens: it.maxNewTokens })), decoding, grammar },
          { signal },
        );
    }
  }

  get lost(): boolean {
    return this.worker.stopped !== undefined && !this.disposed;
  }

  generate(req: GenerateRequest): Promise<GenerateOutput> {
    const { prompt, decoding, grammar, onToken, signal } = req;
    return this.worker.call({ op: 'generate', model: this.model, image: this.image(req.image), prompt, decoding, grammar, stream: onToken !== undefined }, { onToken, signal });
  }

  runStats(): Promise<RunStats> {
    return this.worker.call({ op: 'runStats', model: this.model });
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    try {
      if (!this.worker.stopped) await this.worker.call({ op: 'dispose', model: this.model });
    } finally {
      await this.worker.release();
    }
  }
}
