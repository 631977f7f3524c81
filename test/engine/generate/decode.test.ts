import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decode, type StepModel } from '../../../daemon/engine/generate/decode.js';
import { topK } from '../../../daemon/engine/generate/logits.js';
import { SeededRandom, sampleFrom, topKFilter, topPFilter, warpLogits } from '../../../daemon/engine/generate/sampling.js';
import { isEngineError } from '../../../daemon/engine/errors.js';

const EOS = 1;

/** A toy model: next-token logits are a function of the tokens so far; rows can be reordered. */
class ToyModel implements StepModel {
  histories: number[][];
  calls = 0;
  constructor(
    readonly vocabSize: number,
    private readonly fn: (history: number[]) => number[],
    rows = 1,
  ) {
    this.histories = Array.from({ length: rows }, () => []);
  }
  private logits(): Float32Array {
    const out = new Float32Array(this.histories.length * this.vocabSize);
    this.histories.forEach((h, r) => out.set(this.fn(h), r * this.vocabSize));
    return out;
  }
  async prefill(): Promise<Float32Array> {
    return this.logits();
  }
  async next(tokens: readonly number[]): Promise<Float32Array> {
    this.calls++;
    tokens.forEach((t, r) => this.histories[r].push(t));
    return this.logits();
  }
  reorder(sources: readonly number[]): void {
    this.histories = sources.map((s) => [...this.histories[s]]);
  }
}

/** A toy model that drops rows when asked (as a host KV cache does) and counts the rows of each step. */
class CompactingToy extends ToyModel {
  batchSizes: number[] = [];
  compact(keep: readonly number[]): void {
    this.histories = keep.map((i) => this.histories[i]);
  }
  override async next(tokens: readonly number[]): Promise<Float32Array> {
    this.batchSizes.push(tokens.length);
    return super.next(tokens);
  }
}

/** Log-probabilities to logits (any constant shift is fine). */
const fromProbs = (p: number[]): number[] => p.map((x) => (x > 0 ? Math.log(x) : -1e9));

describe('greedy decoding', () => {
  // Vocab 5: counts 2, 3, 4, then eos.
  const counting = (h: number[]): number[] => {
    const want = h.length < 3 ? 2 + h.length : EOS;
    return [0, 1, 2, 3, 4].map((i) => (i === want ? 5 : 0));
  };

  it('takes the argmax each step and stops after eos', async () => {
    const model = new ToyModel(5, counting);
    const out = await decode(model, { maxNewTokens: 10, eosTokenId: EOS });
    assert.deepEqual(out.tokens, [[2, 3, 4, EOS]]);
    assert.equal(model.calls, 3, 'no model call after eos');
  });

  it('stops at maxNewTokens', async () => {
    const out = await decode(new ToyModel(5, counting), { maxNewTokens: 2, eosTokenId: EOS });
    assert.deepEqual(out.tokens, [[2, 3]]);
  });

  it('suppresses eos until minNewTokens and records the processed top-3 per step', async () => {
    const model = new ToyModel(5, (h) => (h.length < 3 ? [0, 9, 3, 2, 1] : [0, 9, 0, 0, 0]));
    const out = await decode(model, { maxNewTokens: 5, minNewTokens: 2, eosTokenId: EOS, recordSteps: true });
    assert.deepEqual(out.tokens, [[2, 2, EOS]]);
    assert.deepEqual(out.steps?.[0][0], { ids: [2, 3, 4], logits: [3, 2, 1] });
    assert.deepEqual(out.steps?.[0][1], { ids: [2, 3, 4], logits: [3, 2, 1] }, 'eos still suppressed at step 1');
    assert.deepEqual(out.steps?.[0][2], { ids: [1, 2, 3], logits: [9, 3, 2] });
  });

  it('feeds forced tokens instead of the chosen ones', async () => {
    const model = new ToyModel(5, (h) => [0, 0, 1 + h.length, 0, 0]);
    const out = await decode(model, { maxNewTokens: 3, eosTokenId: EOS, forceTokens: [4, 3, 0], recordSteps: true });
    assert.deepEqual(out.tokens, [[4, 3, 0]]);
    assert.deepEqual(model.histories, [[4, 3]]);
    assert.deepEqual(
      out.steps?.[0].map((s) => s.ids[0]),
      [2, 2, 2],
    );
  });

  it('decodes a batch, padding rows that finished', async () => {
    const model = new ToyModel(5, (h) => (h.length === 0 ? [0, 0, 5, 0, 0] : [0, 5, 0, 0, 0]), 2);
    model.histories[1] = [7]; // row 1 is "ahead" and ends at once
    const out = await decode(model, { maxNewTokens: 4, eosTokenId: EOS, padTokenId: 0 });
    assert.deepEqual(out.tokens, [[2, EOS], [EOS]]);
    // Row 1's eos is fed like any token (as in HF); had row 0 gone on, row 1 would get pads.
    assert.deepEqual(model.histories, [[2], [7, EOS]]);
  });

  it('drops finished rows from a model that compacts, and only those', async () => {
    // Each row's first history entry is 10 + the number of 2s it makes before eos.
    const model = new CompactingToy(5, (h) => (h.length - 1 < h[0] - 10 ? [0, 0, 5, 0, 0] : [0, 5, 0, 0, 0]), 3);
    model.histories = [[11], [13], [10]];
    const out = await decode(model, { maxNewTokens: 8, eosTokenId: EOS, padTokenId: 0 });
    assert.deepEqual(out.tokens, [[2, EOS], [2, 2, 2, EOS], [EOS]]);
    assert.deepEqual(model.batchSizes, [2, 1, 1], 'rows per step after the prefill');
    assert.deepEqual(model.histories, [[13, 2, 2, 2]], 'only the last row is left, fed only its own tokens');
  });

  it('stops each row at its own maxNewTokens', async () => {
    const model = new CompactingToy(5, () => [0, 0, 5, 0, 0], 3);
    const out = await decode(model, { maxNewTokens: 4, rowMaxNewTokens: [1, 4, 2], eosTokenId: EOS });
    assert.deepEqual(
      out.tokens.map((t) => t.length),
      [1, 4, 2],
    );
    assert.deepEqual(model.batchSizes, [2, 1, 1]);
    await assert.rejects(decode(new ToyModel(5, counting, 2), { maxNewTokens: 2, rowMaxNewTokens: [1, 3], eosTokenId: EOS }), (e) => isEngineError(e, 'invalid-params'));
    await assert.rejects(decode(new ToyModel(5, counting, 2), { maxNewTokens: 4, minNewTokens: 2, rowMaxNewTokens: [1, 3], eosTokenId: EOS }), (e) =>
      isEngineError(e, 'invalid-params'),
    );
  });

  it('samples in each row of a batch what that row samples alone', async () => {
    const opts = { maxNewTokens: 12, eosTokenId: 99, strategy: 'sample' as const, topK: 0, seed: 3 };
    const flat = () => [0, 1, 2, 3, 4].map(() => 0);
    const alone = await decode(new ToyModel(5, flat), opts);
    const batch = await decode(new ToyModel(5, flat, 3), opts);
    assert.deepEqual(batch.tokens, [alone.tokens[0], alone.tokens[0], alone.tokens[0]]);
    assert.ok(new Set(alone.tokens[0]).size > 1, 'a uniform distribution gives several ids');
  });

  it('streams each token of row 0', async () => {
    const seen: number[] = [];
    await decode(new ToyModel(5, counting), { maxNewTokens: 10, eosTokenId: EOS, onToken: (id) => seen.push(id) });
    assert.deepEqual(seen, [2, 3, 4, EOS]);
  });

  it('throws cancelled when the signal aborts between steps', async () => {
    const ac = new AbortController();
    const model = new ToyModel(5, () => [0, 0, 1, 0, 0]);
    await assert.rejects(decode(model, { maxNewTokens: 50, eosTokenId: EOS, signal: ac.signal, onToken: (_, i) => i === 2 && ac.abort() }), (e) => isEngineError(e, 'cancelled'));
    assert.equal(model.calls, 3, 'stopped right after the step that saw the abort');
  });

  it('rejects bad options with invalid-params', async () => {
    for (const bad of [{ maxNewTokens: 0 }, { maxNewTokens: 3, minNewTokens: 4 }, { maxNewTokens: 3, temperature: 0 }, { maxNewTokens: 3, topP: 1.5 }]) {
      await assert.rejects(decode(new ToyModel(5, counting), { eosTokenId: EOS, ...bad }), (e) => isEngineError(e, 'invalid-params'));
    }
  });
});

describe('sampling', () => {
  const probs = [0.05, 0.05, 0.5, 0.3, 0.1];
  const model = () => new ToyModel(5, () => fromProbs(probs));

  it('is deterministic for a seed and differs across seeds', async () => {
    const opts = { maxNewTokens: 40, eosTokenId: 99, strategy: 'sample' as const, topK: 0 };
    const a = await decode(model(), { ...opts, seed: 7 });
    const b = await decode(model(), { ...opts, seed: 7 });
    const c = await decode(model(), { ...opts, seed: 8 });
    assert.deepEqual(a.tokens, b.tokens);
    assert.notDeepEqual(a.tokens, c.tokens);
  });

  it('draws tokens with their softmax probabilities', () => {
    const rng = new SeededRandom(123);
    const counts = [0, 0, 0, 0, 0];
    const n = 20000;
    const row = Float32Array.from(fromProbs(probs));
    for (let i = 0; i < n; i++) counts[sampleFrom(row, rng)]++;
    counts.forEach((c, i) => {
      const sd = Math.sqrt(n * probs[i] * (1 - probs[i]));
      assert.ok(Math.abs(c - n * probs[i]) < 5 * sd, `token ${i}: ${c} draws, expected ${n * probs[i]}`);
    });
  });

  it('never draws a token removed by top-k / top-p', async () => {
    const out = await decode(model(), { maxNewTokens: 200, eosTokenId: 99, strategy: 'sample', topK: 2, seed: 3 });
    assert.ok(out.tokens[0].every((t) => t === 2 || t === 3));
    const nucleus = await decode(model(), { maxNewTokens: 200, eosTokenId: 99, strategy: 'sample', topK: 0, topP: 0.75, seed: 3 });
    assert.ok(nucleus.tokens[0].every((t) => t === 2 || t === 3));
    assert.ok(nucleus.tokens[0].includes(3));
  });

  it('top-k keeps ties with the k-th value', () => {
    const row = Float32Array.from([1, 3, 3, 2, 3]);
    topKFilter(row, 2);
    assert.deepEqual(Array.from(row), [-Infinity, 3, 3, -Infinity, 3]);
  });

  it('top-p keeps the smallest set reaching p, as transformers computes it', () => {
    // Sorted ascending probabilities 0.05 0.05 0.1 0.3 0.5 -> cumulative 0.05 0.1 0.2 0.5 1.0.
    const cases: [number, number[]][] = [
      [0.5, [2]], // drop while cumulative <= 0.5: 0.05, 0.1, 0.2, 0.5 -> keep only 0.5
      [0.51, [2, 3]],
      [0.8, [2, 3]],
      [0.81, [2, 3, 4]],
      [1, [0, 1, 2, 3, 4]],
    ];
    for (const [p, kept] of cases) {
      const row = Float32Array.from(fromProbs(probs));
      if (p < 1) topPFilter(row, p);
      const survivors = Array.from(row.keys()).filter((i) => row[i] !== -Infinity);
      assert.deepEqual(survivors, kept, `top_p ${p}`);
    }
  });

  it('temperature sharpens the distribution', () => {
    const row = Float32Array.from([0, Math.log(2)]);
    warpLogits(row, { temperature: 0.5, topK: 0, topP: 1 });
    assert.ok(Math.abs(row[1] - row[0] - 2 * Math.log(2)) < 1e-6);
  });
});

describe('beam search', () => {
  // Greedy takes A (0.6) and then eos (0.4); B (0.4) leads to a near-certain continuation Y, eos.
  const V = 6;
  const [A, B, , Y] = [2, 3, 4, 5];
  const tree = (h: number[]): number[] => {
    if (h.length === 0) return fromProbs([0, 0, 0.6, 0.4, 0, 0]);
    if (h.length === 1 && h[0] === A) return fromProbs([0, 0.4, 0.2, 0.2, 0.2, 0]);
    if (h.length === 1 && h[0] === B) return fromProbs([0, 0, 0, 0, 0.05, 0.95]);
    return fromProbs([0, 1, 0, 0, 0, 0]); // then eos
  };

  it('finds the sequence greedy misses', async () => {
    const greedy = await decode(new ToyModel(V, tree), { maxNewTokens: 5, eosTokenId: EOS });
    assert.deepEqual(greedy.tokens, [[A, EOS]]);
    const beam = await decode(new ToyModel(V, tree), { maxNewTokens: 5, eosTokenId: EOS, strategy: 'beam', numBeams: 2 });
    assert.deepEqual(beam.tokens, [[B, Y, EOS]]);
  });

  it('with one beam equals greedy', async () => {
    const greedy = await decode(new ToyModel(V, tree), { maxNewTokens: 5, eosTokenId: EOS });
    const beam = await decode(new ToyModel(V, tree), { maxNewTokens: 5, eosTokenId: EOS, strategy: 'beam', numBeams: 1 });
    assert.deepEqual(beam.tokens, greedy.tokens);
  });

  it('normalises by length: a negative length penalty favours the short hypothesis', async () => {
    // [A, eos]: log 0.6 + log 0.4 = -1.43 over 2 tokens; [B, Y, eos]: log 0.4 + log 0.95 = -0.97 over
    // 3. Penalty 1: -0.71 vs -0.32 (the long one wins, above); penalty -3 multiplies by length^3:
    // -11.4 vs -26.1, so the 2-token answer wins.
    const out = await decode(new ToyModel(V, tree), { maxNewTokens: 5, eosTokenId: EOS, strategy: 'beam', numBeams: 2, lengthPenalty: -3 });
    assert.deepEqual(out.tokens, [[A, EOS]]);
  });

  it('keeps the model rows in step with the beams', async () => {
    const model = new ToyModel(V, tree);
    await decode(model, { maxNewTokens: 5, eosTokenId: EOS, strategy: 'beam', numBeams: 2 });
    assert.equal(model.histories.length, 2);
    assert.ok(model.histories.some((h) => h[0] === B && h[1] === Y));
  });
});

describe('topK helper', () => {
  it('returns the largest values in order, lower id first on ties', () => {
    assert.deepEqual(topK(Float32Array.from([1, 5, 3, 5, -2]), 3), { ids: [1, 3, 2], values: [5, 5, 3] });
  });
});

describe('greedy decoding handed to the model (StepModel.greedy)', () => {
  /** Returns fixed rows from greedy() and counts how it was called; prefill/next must not run. */
  class LoopModel extends ToyModel {
    greedyCalls: [number, number][] = [];
    constructor(private readonly rows: number[][]) {
      super(5, () => [0, 0, 5, 0, 0], rows.length);
    }
    async greedy(maxNew: number, minNew: number): Promise<number[][]> {
      this.greedyCalls.push([maxNew, minNew]);
      return this.rows.map((r) => [...r]);
    }
  }

  it('takes each row up to its first eos and streams row 0', async () => {
    const model = new LoopModel([
      [2, 3, EOS, 4, 4],
      [4, 4, 4, 4, 4],
      [EOS, 2, 2, 2, 2],
    ]);
    const streamed: number[] = [];
    const out = await decode(model, { maxNewTokens: 5, minNewTokens: 1, eosTokenId: EOS, onToken: (id) => streamed.push(id) });
    assert.deepEqual(out.tokens, [[2, 3, EOS], [4, 4, 4, 4, 4], [EOS]]);
    assert.deepEqual(model.greedyCalls, [[5, 1]]);
    assert.deepEqual(streamed, [2, 3, EOS]);
    assert.equal(model.calls, 0, 'no step-by-step calls');
  });

  it('never returns more than maxNewTokens', async () => {
    const out = await decode(new LoopModel([[2, 3, 4, 4]]), { maxNewTokens: 2, eosTokenId: EOS });
    assert.deepEqual(out.tokens, [[2, 3]]);
  });

  it('keeps the step-by-step loop when a step needs the host: sampling, grammar, recorded or forced steps', async () => {
    const variants = [{ strategy: 'sample' as const, seed: 1 }, { allowedTokens: () => [{ from: 2, to: 3 }] }, { recordSteps: true }, { forceTokens: [3] }];
    for (const v of variants) {
      const model = new LoopModel([[4, 4, 4]]);
      await decode(model, { maxNewTokens: 3, eosTokenId: EOS, ...v });
      assert.equal(model.greedyCalls.length, 0, JSON.stringify(Object.keys(v)));
      assert.ok(model.calls > 0);
    }
  });

  it('checks cancellation before handing over', async () => {
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(decode(new LoopModel([[2]]), { maxNewTokens: 2, eosTokenId: EOS, signal: ac.signal }), (e: unknown) => isEngineError(e, 'cancelled'));
  });
});
