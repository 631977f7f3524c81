// Keeps one model warm: loaded on first use (or loadModel), unloaded after keepAliveMs without
// work, reloaded on demand. Every use of the model goes through the scheduler, so a load, an
// unload and a generation never overlap. Switching models loads the new one beside the warm one and
// swaps only once it has loaded: a folder that fails to load leaves the old model serving.
import { EngineError } from '../engine/errors.js';
import type { ExecutionProviderSetting, ModelStatus, ProgressNotification } from '../protocol.js';
import type { Backend, LoadedModel } from './backend.js';
import { isCancellation } from './errors.js';
import type { Logger } from './log.js';
import { Scheduler } from './scheduler.js';

export interface ModelManagerOptions {
  backend: Backend;
  /** The model used until a client calls loadModel (serve --model). */
  modelPath?: string;
  executionProvider: ExecutionProviderSetting;
  keepAliveMs: number;
  queueCapacity: number;
  /** Most requests per batched model call (default 8 on a GPU, 1 - no batching - on the CPU). */
  maxBatch?: number;
  log: Logger;
  onChange?: (status: ModelStatus) => void;
  onProgress?: (p: ProgressNotification) => void;
}

export interface ActiveModel {
  model: LoadedModel;
  id: string;
  path: string;
}

export class ModelManager {
  readonly scheduler: Scheduler;
  private path: string | undefined;
  private executionProvider: ExecutionProviderSetting;
  private active: ActiveModel | undefined;
  private state: ModelStatus['state'] = 'none';
  private lastError: string | undefined;
  /** A load that failed while the warm model stayed (cleared by the next successful load). */
  private failedLoad: { path: string; error: string } | undefined;
  private keepAliveTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: ModelManagerOptions) {
    this.scheduler = new Scheduler(o.queueCapacity);
    this.path = o.modelPath;
    this.executionProvider = o.executionProvider;
    this.scheduler.onIdle(() => this.armKeepAlive());
  }

  status(): ModelStatus {
    // A model whose engine worker stopped is not ready, though nothing reloads it before a request.
    if (this.state === 'ready' && this.active?.model.lost) {
      return { state: 'error', path: this.active.path, error: 'the engine worker stopped unexpectedly; the model loads again with the next request' };
    }
    const s: ModelStatus = { state: this.state };
    const path = this.active?.path ?? this.path;
    if (path) s.path = path;
    if (this.active) {
      const i = this.active.model.info;
      Object.assign(s, {
        id: this.active.id,
        name: i.name,
        architecture: i.architecture,
        imageSize: i.imageSize,
        dtype: i.dtype,
        executionProvider: i.executionProvider,
      });
      s.maxBatch = this.maxBatch(this.active.model);
      if (i.decodeLoop) s.decodeLoop = i.decodeLoop;
      if (i.providerNotes?.length) s.providerNotes = i.providerNotes;
      if (i.warnings.length) s.warnings = i.warnings;
    }
    if (this.state === 'error' && this.lastError) s.error = this.lastError;
    if (this.failedLoad) s.failedLoad = this.failedLoad;
    return s;
  }

  /** Batching pays off on a GPU; on the CPU a batch is about as slow as its rows one by one. */
  maxBatch(model: LoadedModel): number {
    if (!model.generateBatch) return 1;
    return this.o.maxBatch ?? (model.info.executionProvider === 'cpu' ? 1 : 8);
  }

  /** The configured model's identity, without loading it (cache lookups before queueing). */
  async identity(): Promise<{ id: string; name: string }> {
    if (this.active && this.active.path === this.path) return { id: this.active.id, name: this.active.model.info.name };
    return this.o.backend.identify(this.requirePath());
  }

  /** Runs `fn` with the model loaded, in turn with every other use of the model. */
  use<T>(fn: (active: ActiveModel, signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.scheduler.submit(async (sig) => {
      this.disarmKeepAlive();
      const active = await this.ensureLoaded(sig);
      return fn(active, sig);
    }, signal);
  }

  /** Switches to another model folder (and loads it now, so errors show up here). */
  load(path: string, executionProvider?: ExecutionProviderSetting, signal?: AbortSignal): Promise<ModelStatus> {
    return this.scheduler.submit(async (sig) => {
      this.disarmKeepAlive();
      const previous = { path: this.path, executionProvider: this.executionProvider };
      this.path = path;
      if (executionProvider) this.executionProvider = executionProvider;
      try {
        await this.ensureLoaded(sig);
      } catch (e) {
        // A bad loadModel must not strand everyone: later requests use (and reload) the old model.
        this.path = previous.path;
        this.executionProvider = previous.executionProvider;
        throw e;
      }
      return this.status();
    }, signal);
  }

  unload(signal?: AbortSignal, why = 'unloadModel'): Promise<ModelStatus> {
    return this.scheduler.submit(async () => {
      this.disarmKeepAlive();
      await this.release(why);
      return this.status();
    }, signal);
  }

  async dispose(): Promise<void> {
    this.disarmKeepAlive();
    this.scheduler.close();
    // Sessions are released only after the aborted generation has stopped using them.
    await this.scheduler.drained();
    this.disarmKeepAlive();
    await this.release('shutdown');
  }

  private requirePath(): string {
    if (!this.path) {
      throw new EngineError('model-missing', 'no model is configured: start the daemon with --model <dir>, call paligemma/loadModel, or convert one with `paligemma convert`');
    }
    return this.path;
  }

  private async ensureLoaded(signal: AbortSignal): Promise<ActiveModel> {
    const path = this.requirePath();
    const ep = this.executionProvider;
    // A lost model (its engine worker crashed) is released below and loaded again.
    if (this.active && this.active.path === path && this.activeEp === ep && !this.active.model.lost) return this.active;
    // A lost model (its worker stopped) cannot serve anyway: let it go first.
    if (this.active?.model.lost) await this.release('its engine worker stopped');
    const previous = this.active;
    const started = Date.now();
    let model: LoadedModel;
    let id: string;
    try {
      // A folder that is not a model fails here, before anything is loaded.
      id = (await this.o.backend.identify(path)).id;
      if (!previous) this.setState('loading');
      this.o.onProgress?.({ kind: 'loadModel', message: `loading ${path}`, fraction: 0 });
      model = await this.o.backend.load(path, { executionProvider: ep, onProgress: this.o.onProgress });
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      this.o.log.error('model load failed', { path, error, kept: previous?.path });
      this.o.onProgress?.({ kind: 'loadModel', message: `failed: ${error}`, done: true });
      if (previous && !isCancellation(e)) {
        // The warm model keeps serving; status says so, and why the other one did not load.
        this.failedLoad = { path, error };
        this.setState('ready');
      } else if (!previous) {
        this.lastError = error;
        this.setState(isCancellation(e) ? 'none' : 'error');
      }
      throw e;
    }
    if (signal.aborted) {
      // Kept loaded anyway: the next request wants the same model.
      this.o.log.debug('model load finished after its request was cancelled');
    }
    this.active = { model, id, path };
    if (previous) await this.disposeModel(previous, 'switched to another model');
    this.activeEp = ep;
    this.lastError = undefined;
    this.failedLoad = undefined;
    this.o.log.info('model loaded', { path, name: model.info.name, ep: model.info.executionProvider, ms: Date.now() - started });
    this.o.onProgress?.({ kind: 'loadModel', message: `loaded ${model.info.name}`, fraction: 1, done: true });
    this.setState('ready');
    return this.active;
  }

  private activeEp: ExecutionProviderSetting | undefined;

  private async release(why: string): Promise<void> {
    const a = this.active;
    if (!a) return;
    this.active = undefined;
    this.activeEp = undefined;
    await this.disposeModel(a, why);
    this.setState('none');
  }

  private async disposeModel(a: ActiveModel, why: string): Promise<void> {
    try {
      await a.model.dispose();
    } catch (e) {
      this.o.log.warn('model dispose failed', { error: e instanceof Error ? e.message : String(e) });
    }
    this.o.log.info('model unloaded', { path: a.path, why });
  }

  private setState(state: ModelStatus['state']): void {
    this.state = state;
    this.o.onChange?.(this.status());
  }

  private armKeepAlive(): void {
    this.disarmKeepAlive();
    if (!this.active || !Number.isFinite(this.o.keepAliveMs)) return;
    this.keepAliveTimer = setTimeout(() => {
      this.keepAliveTimer = undefined;
      if (!this.scheduler.idle || !this.active) return;
      // Through the scheduler, so a request arriving now waits for the unload and then reloads.
      this.unload(undefined, `idle for ${this.o.keepAliveMs} ms`).catch((e) => this.o.log.warn('keep-alive unload failed', { error: String(e) }));
    }, this.o.keepAliveMs);
    this.keepAliveTimer.unref();
  }

  private disarmKeepAlive(): void {
    if (this.keepAliveTimer) clearTimeout(this.keepAliveTimer);
    this.keepAliveTimer = undefined;
  }
}
