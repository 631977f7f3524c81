// Batching: when a generation reaches the model while others with the same decoding options wait
// behind it, it takes them along into one batched engine call. Each request keeps its own place
// in the scheduler's queue (Busy, cancellation and pending counts are unchanged); a request that
// was taken along finds its answer ready when its turn comes. One that is cancelled before being
// taken is never run; a batch cut short by its leader's cancellation makes the others run alone.
import type { DecodingOptions } from '../protocol.js';
import type { DecodedImage, GenerateOutput, Grammar, LoadedModel } from './backend.js';
import { isCancellation } from './errors.js';

export interface BatchEntry {
  key: string;
  /** The image, decoded when the request's turn (or its batch's) comes, not while it waits. */
  image: () => Promise<DecodedImage>;
  prompt: string;
  decoding: DecodingOptions;
  grammar?: Grammar;
  signal: AbortSignal;
  /** Set when an earlier batch took this request along. */
  result?: Promise<GenerateOutput>;
  /** Rows of the engine call that answered it (1: alone), once it ran. */
  batchSize?: number;
}

/**
 * Only streamless greedy/sampling requests batch (the engine streams and beam-searches one at a
 * time); rows of one batch share decoding options and grammar, all but maxNewTokens: each row
 * stops at its own limit and then leaves the batch.
 */
export function batchKey(decoding: DecodingOptions, streaming: boolean, grammar?: Grammar): string | undefined {
  if (streaming || decoding.strategy === 'beam') return undefined;
  const shared = Object.entries(decoding).filter(([k]) => k !== 'maxNewTokens');
  return JSON.stringify([grammar ?? null, shared.sort(([a], [b]) => a.localeCompare(b))]);
}

export class Batcher {
  private readonly waiting = new Set<BatchEntry>();

  /** Registers a request that may be taken along; call the returned function when it is done. */
  add(entry: BatchEntry): () => void {
    this.waiting.add(entry);
    return () => this.waiting.delete(entry);
  }

  /**
   * Generates for `entry` (its turn on the model has come), taking up to maxBatch - 1 waiting
   * requests with the same key along when the model can batch.
   */
  async generate(entry: BatchEntry, model: LoadedModel, maxBatch: number, signal: AbortSignal): Promise<GenerateOutput> {
    this.waiting.delete(entry);
    if (entry.result) {
      try {
        return await entry.result;
      } catch (e) {
        // The batch stopped because its leader was cancelled, not this request: run alone.
        if (!isCancellation(e) || entry.signal.aborted) throw e;
      }
    }
    const peers: BatchEntry[] = [];
    if (model.generateBatch && maxBatch > 1) {
      for (const other of this.waiting) {
        if (peers.length >= maxBatch - 1) break;
        if (other.key === entry.key && !other.result && !other.signal.aborted) peers.push(other);
      }
    }
    for (const p of peers) this.waiting.delete(p);
    const [image, ...decoded] = await Promise.allSettled([entry.image(), ...peers.map((p) => p.image())]);
    // A peer whose image cannot be decoded gets that error at its turn; the others batch without it.
    const taken: Array<{ peer: BatchEntry; image: DecodedImage }> = [];
    peers.forEach((p, i) => {
      const d = decoded[i];
      if (d.status === 'fulfilled') taken.push({ peer: p, image: d.value });
      else {
        p.result = Promise.reject(d.reason);
        p.result.catch(() => {});
      }
    });
    if (image.status === 'rejected') {
      // The leader cannot run: the peers it took run at their own turns.
      for (const t of taken) this.waiting.add(t.peer);
      throw image.reason;
    }
    if (taken.length === 0) {
      entry.batchSize = 1;
      return model.generate({ image: image.value, prompt: entry.prompt, decoding: entry.decoding, grammar: entry.grammar, signal });
    }
    entry.batchSize = taken.length + 1;
    // Each row's own limit (undefined: the engine's default), none shared.
    const { maxNewTokens: _ownLimit, ...shared } = entry.decoding;
    const outs = model.generateBatch!(
      [
        { image: image.value, prompt: entry.prompt, maxNewTokens: entry.decoding.maxNewTokens },
        ...taken.map((t) => ({ image: t.image, prompt: t.peer.prompt, maxNewTokens: t.peer.decoding.maxNewTokens })),
      ],
      shared,
      signal,
      entry.grammar,
    );
    taken.forEach((t, i) => {
      t.peer.batchSize = taken.length + 1;
      t.peer.result = outs.then((o) => o[i + 1]);
      t.peer.result.catch(() => {});
    });
    return (await outs)[0];
  }
}
