// Many images through the daemon: keep enough requests in flight for its batches (its status says
// `maxBatch`) and no more (the queue is FIFO: more would only wait ahead of other clients), and
// hand the results over in input order. Shared by the CLI and the extension's batch alt text.

/**
 * Requests to keep in flight for a model that batches up to `maxBatch`: one batch running and the
 * next one waiting, so that the next batch is full when the model frees up (with only `maxBatch`
 * in flight, the first of the refill would find the model idle and run alone). One at a time where
 * there is no batching (the CPU): a request waits behind at most one other client's.
 */
export function inFlightFor(maxBatch: number | undefined): number {
  return maxBatch && maxBatch > 1 ? 2 * maxBatch : 1;
}

export type Settled<R> = { ok: true; value: R } | { ok: false; error: unknown };

/**
 * Runs `work` over `items` with at most `limit()` calls started and not yet handed over, and gives
 * each outcome to `done` in input order. `limit` is read before each start, so it can change on the
 * way (the batch size is known once the model has loaded). `done` returning false stops starting
 * new work; what is already in flight is awaited and dropped.
 */
export async function inOrder<T, R>(
  items: readonly T[],
  limit: () => number,
  work: (item: T, index: number) => Promise<R>,
  done: (outcome: Settled<R>, item: T, index: number) => boolean | void,
): Promise<void> {
  const started = new Map<number, Promise<Settled<R>>>();
  let next = 0;
  let stopped = false;
  for (let i = 0; i < items.length && !stopped; i++) {
    while (next < items.length && started.size < Math.max(1, limit())) {
      const k = next++;
      started.set(
        k,
        work(items[k], k).then(
          (value) => ({ ok: true as const, value }),
          (error: unknown) => ({ ok: false as const, error }),
        ),
      );
    }
    const outcome = await started.get(i)!;
    started.delete(i);
    if (done(outcome, items[i], i) === false) stopped = true;
  }
  await Promise.all(started.values());
}
