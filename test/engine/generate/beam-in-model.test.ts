// StepModel.beam: decode() hands a beam search to the model (onnxruntime's BeamSearch op) only
// when the model says it scores those options alike and no grammar constrains the steps.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decode, type BeamRequest, type StepModel } from '../../../daemon/engine/generate/decode.js';

const EOS = 1;
const VOCAB = 4;

/** Always prefers token 2, then 3; reorderable; optionally a beam search of its own. */
class Model implements StepModel {
  readonly vocabSize = VOCAB;
  prefills = 0;
  asked: BeamRequest[] = [];
  constructor(private readonly answer: ((o: BeamRequest) => number[]) | null) {}
  async prefill(): Promise<Float32Array> {
    this.prefills++;
    return Float32Array.of(0, -5, 2, 1);
  }
  async next(tokens: readonly number[]): Promise<Float32Array> {
    const out = new Float32Array(tokens.length * VOCAB);
    tokens.forEach((_, r) => out.set([0, -5, 2, 1], r * VOCAB));
    return out;
  }
  reorder(): void {}
  beam(o: BeamRequest): Promise<number[]> | null {
    this.asked.push(o);
    return this.answer ? Promise.resolve(this.answer(o)) : null;
  }
}

describe('beam search inside the model (StepModel.beam)', () => {
  const opts = { maxNewTokens: 3, eosTokenId: EOS, strategy: 'beam' as const, numBeams: 2, lengthPenalty: 0 };

  it('returns what the model found, with the options it was asked, and runs no step itself', async () => {
    const model = new Model(() => [3, 3, EOS]);
    const out = await decode(model, opts);
    assert.deepEqual(out.tokens, [[3, 3, EOS]]);
    assert.deepEqual(model.asked, [{ numBeams: 2, lengthPenalty: 0, maxNewTokens: 3, minNewTokens: 0 }]);
    assert.equal(model.prefills, 0);
  });

  it('runs its own beam search when the model declines', async () => {
    const model = new Model(null);
    const out = await decode(model, { ...opts, lengthPenalty: 1 });
    assert.equal(model.asked.length, 1);
    assert.equal(model.prefills, 1);
    assert.deepEqual(out.tokens, [[2, 2, 2]]);
  });

  it('keeps grammar-constrained beam search on the host', async () => {
    const model = new Model(() => [3, 3, EOS]);
    const out = await decode(model, { ...opts, allowedTokens: () => [{ from: 3, to: 4 }] });
    assert.equal(model.asked.length, 0);
    assert.deepEqual(out.tokens, [[3, 3, 3]]);
  });
});
