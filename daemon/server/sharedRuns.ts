// One computation per key for requests that would compute the same thing at the same time (50
// identical captions run the model once). Every waiter gets the result; a waiter that is cancelled
// leaves alone, and the computation is cancelled only when its last waiter has gone.
import { cancelled } from './errors.js';

interface Run<T> {
  promise: Promise<T>;
  controller: AbortController;
  waiters: number;
}

export class SharedRuns {
  private readonly runs = new Map<string, Run<unknown>>();

  /** How many distinct computations are in flight. */
  get size(): number {
    return this.runs.size;
  }

  /** How many requests wait on the computations in flight. */
  get waiters(): number {
    let n = 0;
    for (const r of this.runs.values()) n += r.waiters;
    return n;
  }

  /** Joins the computation in flight for `key`, or starts `start` for it. */
  join<T>(key: string, start: (signal: AbortSignal) => Promise<T>, signal: AbortSignal): Promise<T> {
    if (signal.aborted) return Promise.reject(cancelled());
    let run = this.runs.get(key) as Run<T> | undefined;
    if (!run) {
      const controller = new AbortController();
      const created: Run<T> = { controller, waiters: 0, promise: Promise.resolve().then(() => start(controller.signal)) };
      created.promise
        .finally(() => {
          if (this.runs.get(key) === created) this.runs.delete(key);
        })
        .catch(() => {});
      this.runs.set(key, created as Run<unknown>);
      run = created;
    }
    const r = run;
    r.waiters++;
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const leave = () => {
        if (done) return;
        if (r.waiters === 1) {
          // The last waiter: stop the computation, and answer when it has stopped (as an unshared
          // request would); a later request starts afresh.
          if (this.runs.get(key) === r) this.runs.delete(key);
          r.controller.abort();
          return;
        }
        done = true;
        r.waiters--;
        reject(cancelled());
      };
      signal.addEventListener('abort', leave, { once: true });
      r.promise.then(
        (v) => {
          signal.removeEventListener('abort', leave);
          if (done) return;
          done = true;
          r.waiters--;
          resolve(v);
        },
        (e: unknown) => {
          signal.removeEventListener('abort', leave);
          if (done) return;
          done = true;
          r.waiters--;
          reject(e);
        },
      );
    });
  }
}
