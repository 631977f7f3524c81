// Grammar-constrained decoding: a no-op where the model already obeys, the best allowed token
// where it does not, and PaliGemma's segment grammar on the tiny checkpoint.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { convert } from '../../../daemon/engine/convert/index.js';
import { maskOutside, segmentConstraint, type TokenConstraint } from '../../../daemon/engine/generate/constraint.js';
import { decode, type StepModel, type Strategy } from '../../../daemon/engine/generate/decode.js';
import { isEngineError } from '../../../daemon/engine/errors.js';
import { PaliGemma, parseSegments } from '../../../daemon/engine/index.js';

const EOS = 1;
const VOCAB = 12;

/** Next-token logits as a function of the history (one row; beams reorder copies of it). */
class ToyModel implements StepModel {
  readonly vocabSize = VOCAB;
  private histories: number[][] = [[]];
  constructor(private readonly fn: (history: number[]) => number[]) {}
  private logits(): Float32Array {
    const out = new Float32Array(this.histories.length * VOCAB);
    this.histories.forEach((h, r) => out.set(this.fn(h), r * VOCAB));
    return out;
  }
  async prefill(): Promise<Float32Array> {
    return this.logits();
  }
  async next(tokens: readonly number[]): Promise<Float32Array> {
    tokens.forEach((t, r) => this.histories[r].push(t));
    return this.logits();
  }
  reorder(sources: readonly number[]): void {
    this.histories = sources.map((s) => [...this.histories[s]]);
  }
}

// A deterministic, history-dependent spread of logits whose argmax walks 2, 3, 4, 8, 9, then eos.
const path = [2, 3, 4, 8, 9, EOS];
const walker = (h: number[]): number[] => Array.from({ length: VOCAB }, (_, i) => (i === path[Math.min(h.length, path.length - 1)] ? 4 : Math.sin(7 * i + 3 * h.length) - 1));
// "Steps 0-2 in [2, 5), steps 3-4 in [8, 10)": what the walker does anyway.
const obeyed: TokenConstraint = (step) => (step < 3 ? [{ from: 2, to: 5 }] : step < 5 ? [{ from: 8, to: 10 }] : null);

describe('token constraints in the decoding loop', () => {
  for (const strategy of ['greedy', 'beam'] as Strategy[]) {
    it(`${strategy}: a constraint the argmax already obeys changes nothing, scores included`, async () => {
      const opts = { maxNewTokens: 10, eosTokenId: EOS, strategy, numBeams: 3, recordSteps: true };
      const free = await decode(new ToyModel(walker), opts);
      const constrained = await decode(new ToyModel(walker), { ...opts, allowedTokens: obeyed });
      assert.deepEqual(free.tokens, [path]);
      assert.deepEqual(constrained.tokens, free.tokens);
      if (strategy === 'greedy') {
        // The recorded top-3 differ only where the mask removed runners-up; the winner is the same logit.
        constrained.steps![0].forEach((s, t) => assert.equal(s.logits[0], free.steps![0][t].logits[0]));
      }
    });
  }

  it('greedy takes the best allowed token when the argmax is outside, and sees its own history', async () => {
    const seen: number[][] = [];
    const allowed: TokenConstraint = (step, soFar) => {
      seen.push([...soFar]);
      return step === 1
        ? [
            { from: 6, to: 8 },
            { from: 10, to: 11 },
          ]
        : null;
    };
    // Step 1's logits: 3 is best (outside), then 10 (allowed), then 6.
    const fn = (h: number[]) =>
      Array.from({ length: VOCAB }, (_, i) => (h.length === 1 ? (({ 3: 9, 10: 5, 6: 4 } as Record<number, number>)[i] ?? 0) : i === (h.length === 0 ? 2 : EOS) ? 1 : 0));
    const out = await decode(new ToyModel(fn), { maxNewTokens: 5, eosTokenId: EOS, allowedTokens: allowed });
    assert.deepEqual(out.tokens, [[2, 10, EOS]]);
    assert.deepEqual(seen, [[], [2], [2, 10]]);
  });

  it('sampling never draws a masked token', async () => {
    const allowed: TokenConstraint = (step) => (step < 8 ? [{ from: 5, to: 7 }] : null);
    const flat = () => new Array<number>(VOCAB).fill(0);
    for (let seed = 0; seed < 20; seed++) {
      const out = await decode(new ToyModel(flat), { maxNewTokens: 8, eosTokenId: EOS, strategy: 'sample', seed, allowedTokens: allowed });
      assert.ok(
        out.tokens[0].every((id) => id === 5 || id === 6),
        `seed ${seed}: ${out.tokens[0]}`,
      );
    }
  });

  it('a constraint that allows nothing is a clear error', () => {
    assert.throws(
      () => maskOutside(new Float32Array(4), [{ from: 4, to: 9 }], 3),
      (e) => isEngineError(e, 'invalid-params') && /no token .* at step 3/.test(e.message),
    );
  });

  it('segmentConstraint: 4 loc tokens with y1 > y0 and x1 > x0, 16 seg tokens, then free', () => {
    const c = segmentConstraint({ loc0: 100, seg0: 2000 });
    const loc = (...v: number[]) => v.map((x) => 100 + x);
    assert.deepEqual(c(0, []), [{ from: 100, to: 1124 }]);
    assert.deepEqual(c(1, loc(500)), [{ from: 100, to: 1124 }]);
    assert.deepEqual(c(2, loc(500, 7)), [{ from: 601, to: 1124 }]);
    assert.deepEqual(c(3, loc(500, 7, 900)), [{ from: 108, to: 1124 }]);
    assert.deepEqual(c(3, loc(500, 1023, 900)), [{ from: 1123, to: 1124 }], 'the last bin stays allowed');
    assert.deepEqual(c(2, [5, 6]), [{ from: 100, to: 1124 }], 'a forced non-loc token leaves the far edge free');
    assert.deepEqual(c(4, []), [{ from: 2000, to: 2128 }]);
    assert.deepEqual(c(19, []), [{ from: 2000, to: 2128 }]);
    assert.equal(c(20, []), null);
  });
});

describe('segment grammar on the tiny checkpoint', () => {
  let root: string;
  let model: PaliGemma;
  const image = { width: 32, height: 24, rgb: new Uint8Array(32 * 24 * 3).map((_, i) => (i * 37) % 256) };

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'pg-constraint-'));
    const checkpoint = fileURLToPath(new URL('../../../../test/fixtures/tiny-paligemma-224/', import.meta.url));
    await convert({ input: checkpoint, output: join(root, 'tiny') });
    model = await PaliGemma.load(join(root, 'tiny'), { executionProvider: 'cpu' });
  });
  after(async () => {
    await model?.dispose();
    rmSync(root, { recursive: true, force: true });
  });

  it('a constrained segment generation starts with 4 loc and 16 seg tokens and parses as one object', async () => {
    const { loc0, seg0 } = model.manifest.tokens;
    const isLoc = (id: number) => id >= loc0 && id < loc0 + 1024;
    const isSeg = (id: number) => id >= seg0 && id < seg0 + 128;
    const prompt = 'segment circle';
    const free = await model.generate({ image, prompt, maxNewTokens: 24 });
    // The random-weight model does not emit the grammar by itself, else this test would prove nothing.
    assert.equal(parseSegments(free.raw, image.width, image.height).length, 0, free.raw);

    const out = await model.generate({ image, prompt, maxNewTokens: 24, allowedTokens: segmentConstraint(model.manifest.tokens) });
    const ids = out.generatedIds;
    assert.ok(ids.slice(0, 4).every(isLoc), `first 4: ${ids.slice(0, 4)}`);
    assert.ok(ids.slice(4, 20).every(isSeg), `next 16: ${ids.slice(4, 20)}`);
    const objects = parseSegments(out.raw, image.width, image.height);
    assert.equal(objects.length, 1, out.raw);
    assert.deepEqual(
      objects[0].loc,
      ids.slice(0, 4).map((id) => id - loc0),
    );
    assert.deepEqual(
      objects[0].codes,
      ids.slice(4, 20).map((id) => id - seg0),
    );
    const [y0, x0, y1, x1] = objects[0].loc;
    assert.ok(y1 > y0 && x1 > x0, `box ${objects[0].loc}`);
  });
});
