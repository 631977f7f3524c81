// One model, one job at a time: a FIFO with a bounded number of waiting jobs (Busy beyond it).
// A job cancelled while waiting is dropped without running; a running job sees its AbortSignal.
import { busy, cancelled, shuttingDown, type RpcFailure } from './errors.js';

interface Entry {
  run: (signal: AbortSignal) => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  controller: AbortController;
  detach: () => void;
}

export class Scheduler {
  private readonly waiting: Entry[] = [];
  private current: Entry | undefined;
  private idleListeners: Array<() => void> = [];
  /** Set once the daemon stops: every job, waiting, running or new, fails with it. */
  private closedWith: RpcFailure | undefined;

  constructor(readonly capacity: number) {}

  get pending(): number {
    return this.waiting.length;
  }

  get running(): number {
    return this.current ? 1 : 0;
  }

  get idle(): boolean {
    return !this.current && this.waiting.length === 0;
  }

  /** Called each time the last job finishes and nothing waits. */
  onIdle(listener: () => void): void {
    this.idleListeners.push(listener);
  }

  submit<T>(run: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (signal?.aborted) return Promise.reject(cancelled());
    if (this.waiting.length >= this.capacity) {
      return Promise.reject(busy(`the daemon is busy: ${this.waiting.length} requests are waiting (capacity ${this.capacity}); try again later`));
    }
    return new Promise<T>((resolve, reject) => {
      const controller = new AbortController();
      const onAbort = () => this.cancel(entry);
      const entry: Entry = {
        run,
        resolve: resolve as (v: unknown) => void,
        reject,
        controller,
        detach: () => signal?.removeEventListener('abort', onAbort),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
      this.pump();
    });
  }

  /** Daemon shutdown: rejects every waiting job, aborts the running one, refuses new ones. */
  close(reason: RpcFailure = shuttingDown()): void {
    this.closedWith = reason;
    for (const e of this.waiting.splice(0)) {
      e.detach();
      e.reject(reason);
    }
    this.current?.controller.abort();
  }

  /** Resolves once no job is running (after close(): once the aborted one has stopped). */
  async drained(): Promise<void> {
    while (this.current) await new Promise<void>((r) => this.onIdleOnce(r));
  }

  private onIdleOnce(l: () => void): void {
    const once = () => {
      this.idleListeners = this.idleListeners.filter((x) => x !== once);
      l();
    };
    this.idleListeners.push(once);
  }

  private cancel(entry: Entry): void {
    const i = this.waiting.indexOf(entry);
    if (i >= 0) {
      this.waiting.splice(i, 1);
      entry.detach();
      entry.reject(cancelled('request cancelled before it started'));
    } else if (this.current === entry) {
      entry.controller.abort();
    }
  }

  private pump(): void {
    if (this.current) return;
    const entry = this.waiting.shift();
    if (!entry) {
      for (const l of this.idleListeners) l();
      return;
    }
    this.current = entry;
    const { signal } = entry.controller;
    entry
      .run(signal)
      .then(
        (v) => (signal.aborted ? entry.reject(this.closedWith ?? cancelled()) : entry.resolve(v)),
        (e) => entry.reject(signal.aborted ? (this.closedWith ?? cancelled()) : e),
      )
      .finally(() => {
        entry.detach();
        this.current = undefined;
        this.pump();
      });
  }
}
