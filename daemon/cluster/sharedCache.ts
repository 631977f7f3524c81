// The shared result cache: a JetStream KV bucket keyed by the job's dedupe id, entries expiring
// after the bucket's TTL. The second person to ask about the same screenshot gets the stored answer
// without a model run. A broker hiccup never fails a request: the cache is then just missed.
import type { KV } from 'nats';
import type { Logger } from '../server/log.js';

export class SharedCache {
  hits = 0;
  misses = 0;

  constructor(
    private readonly kv: KV,
    private readonly log: Logger,
  ) {}

  async get(id: string): Promise<object | undefined> {
    try {
      const e = await this.kv.get(id);
      if (e && e.operation === 'PUT' && e.length > 0) {
        this.hits++;
        return e.json<object>();
      }
    } catch (err) {
      this.log.warn('shared cache read failed', { error: (err as Error).message });
    }
    this.misses++;
    return undefined;
  }

  async set(id: string, result: object): Promise<void> {
    const { ms: _ms, cached: _cached, ...stored } = result as { ms?: number; cached?: boolean };
    try {
      await this.kv.put(id, JSON.stringify(stored));
    } catch (err) {
      this.log.warn('shared cache write failed', { error: (err as Error).message });
    }
  }
}
