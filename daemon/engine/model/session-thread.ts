// A CPU session that loads and runs on a thread of its own. onnxruntime-node builds a session
// synchronously on the calling thread, and on the CPU most of that time is single-threaded work
// (prepacking weights, constant folding): two graphs opened one after the other cost the sum of
// their loads, two opened at once on two threads about the longer one (vision tower beside the
// decoder: bench/results/2026-12-03-cpu-2core-quiet-peer.md). A session belongs to the thread that
// made it, so the session stays there and its runs cross as messages: tensors are copied in (the
// caller keeps its buffers) and moved out (the outputs' buffers are transferred, not copied, and
// the inputs' copies go back with them, see session-thread-worker.ts).
import { Worker } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { EngineError } from '../errors.js';

/** What the engine uses of a session: ort.InferenceSession has it, and so has a SessionThread. */
export interface GraphSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata: readonly ort.InferenceSession.ValueMetadata[];
  readonly outputMetadata: readonly ort.InferenceSession.ValueMetadata[];
  run(feeds: ort.InferenceSession.FeedsType, fetches?: ort.InferenceSession.FetchesType): Promise<ort.InferenceSession.ReturnType>;
  release(): Promise<void>;
}

/** A tensor as it crosses between threads. */
export interface TensorMessage {
  type: ort.Tensor.Type;
  data: ort.Tensor.DataType;
  dims: readonly number[];
}

/** Messages to the session's thread (its workerData is a SessionThreadData). */
export type ToSessionThread = { kind: 'run'; id: number; feeds: Record<string, TensorMessage>; fetches?: readonly string[] } | { kind: 'release' };

/** Messages from it. */
export type FromSessionThread =
  | {
      kind: 'ready';
      inputNames: string[];
      outputNames: string[];
      inputMetadata: ort.InferenceSession.ValueMetadata[];
      outputMetadata: ort.InferenceSession.ValueMetadata[];
    }
  | { kind: 'failed'; code?: string; message: string }
  | { kind: 'result'; id: number; outputs: Record<string, TensorMessage> }
  | { kind: 'error'; id: number; message: string }
  | { kind: 'released' };

export interface SessionThreadData {
  path: string;
  threads?: number;
}

/** Beside this module: out/daemon/engine/model/session-thread-worker.js (tsc), or dist/session-thread-worker.mjs beside the bundles (.ci/bundle.mjs). */
const WORKER_URL = new URL(import.meta.url.endsWith('.mjs') ? './session-thread-worker.mjs' : './session-thread-worker.js', import.meta.url);

export function tensorMessage(t: ort.Tensor): TensorMessage {
  return { type: t.type, data: t.data, dims: t.dims };
}

export function tensorFrom(m: TensorMessage): ort.Tensor {
  return new ort.Tensor(m.type, m.data as never, m.dims);
}

/** Opens `path` for the CPU on a new thread; rejects as createSession does when it cannot load. */
export function openSessionThread(path: string, threads?: number): Promise<GraphSession> {
  return SessionThread.open(path, threads);
}

class SessionThread implements GraphSession {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: ort.InferenceSession.ReturnType) => void; reject: (e: Error) => void }>();
  private released: Promise<void> | undefined;
  private stopped: Error | undefined;

  private constructor(
    private readonly worker: Worker,
    private readonly path: string,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
    readonly inputMetadata: readonly ort.InferenceSession.ValueMetadata[],
    readonly outputMetadata: readonly ort.InferenceSession.ValueMetadata[],
  ) {
    worker.on('message', (m: FromSessionThread) => {
      if (m.kind !== 'result' && m.kind !== 'error') return;
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      this.idleUnlessBusy();
      if (m.kind === 'result') p.resolve(Object.fromEntries(Object.entries(m.outputs).map(([k, v]) => [k, tensorFrom(v)])));
      else p.reject(new Error(m.message));
    });
    const stop = (e: Error) => {
      this.stopped ??= e;
      for (const p of this.pending.values()) p.reject(this.stopped);
      this.pending.clear();
    };
    worker.on('error', (e) => stop(new Error(`the thread running ${path} failed: ${e.message}`)));
    worker.on('exit', (code) => stop(new Error(`the thread running ${path} stopped (exit code ${code})`)));
  }

  static open(path: string, threads?: number): Promise<GraphSession> {
    const data: SessionThreadData = { path, threads };
    const worker = new Worker(WORKER_URL, { workerData: data });
    return new Promise((resolve, reject) => {
      const fail = (e: Error) => {
        void worker.terminate();
        reject(e);
      };
      worker.once('error', (e) => fail(new EngineError('model-invalid', `onnxruntime could not load ${path}: ${e.message}`, { cause: e })));
      worker.once('exit', (code) => fail(new EngineError('model-invalid', `onnxruntime could not load ${path}: its thread stopped (exit code ${code})`)));
      worker.once('message', (m: FromSessionThread) => {
        worker.removeAllListeners('error');
        worker.removeAllListeners('exit');
        if (m.kind === 'failed') {
          fail(new EngineError(m.code === 'provider-unavailable' ? 'provider-unavailable' : 'model-invalid', m.message));
          return;
        }
        if (m.kind !== 'ready') {
          fail(new EngineError('model-invalid', `onnxruntime could not load ${path}: unexpected '${m.kind}' from its thread`));
          return;
        }
        const s = new SessionThread(worker, path, m.inputNames, m.outputNames, m.inputMetadata, m.outputMetadata);
        s.idleUnlessBusy();
        resolve(s);
      });
    });
  }

  /** An idle thread does not keep the process alive (an in-thread session does not either). */
  private idleUnlessBusy(): void {
    if (this.pending.size === 0) this.worker.unref();
    else this.worker.ref();
  }

  run(feeds: ort.InferenceSession.FeedsType, fetches?: ort.InferenceSession.FetchesType): Promise<ort.InferenceSession.ReturnType> {
    if (this.released) return Promise.reject(new Error(`${this.path}: the session was released`));
    if (this.stopped) return Promise.reject(this.stopped);
    if (fetches !== undefined && !Array.isArray(fetches)) return Promise.reject(new Error('a session thread takes fetches as a list of output names'));
    const id = this.nextId++;
    const message: ToSessionThread = {
      kind: 'run',
      id,
      feeds: Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, tensorMessage(v as ort.Tensor)])),
      fetches: fetches as readonly string[] | undefined,
    };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.idleUnlessBusy();
      this.worker.postMessage(message);
    });
  }

  release(): Promise<void> {
    this.released ??= (async () => {
      if (!this.stopped) {
        this.worker.ref();
        const done = new Promise<void>((resolve) => {
          this.worker.on('message', (m: FromSessionThread) => m.kind === 'released' && resolve());
          this.worker.once('exit', () => resolve());
        });
        this.worker.postMessage({ kind: 'release' } satisfies ToSessionThread);
        await done;
      }
      await this.worker.terminate();
    })();
    return this.released;
  }
}
