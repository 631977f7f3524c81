// Grammar-constrained decoding: a per-step set of allowed token ids, applied by masking every
// other logit to -Infinity (transformers' PrefixConstrainedLogitsProcessor). Masking changes
// nothing when the best token is already allowed, so a constraint only steers where the model
// would have left the grammar.
import { EngineError } from '../errors.js';

/** Token ids `from` (inclusive) to `to` (exclusive). */
export interface TokenRange {
  from: number;
  to: number;
}

/**
 * The tokens allowed at generation step `step` (0-based) after `generatedSoFar` in this row;
 * null leaves the step free.
 */
export type TokenConstraint = (step: number, generatedSoFar: readonly number[]) => readonly TokenRange[] | null;

/** Sets every entry of `row` outside `ranges` to -Infinity, in place. */
export function maskOutside(row: Float32Array, ranges: readonly TokenRange[], step: number): void {
  const inside = new Uint8Array(row.length);
  let allowed = 0;
  for (const { from, to } of ranges) {
    for (let i = Math.max(0, from); i < Math.min(row.length, to); i++) {
      if (!inside[i]) allowed++;
      inside[i] = 1;
    }
  }
  if (allowed === 0) {
    throw new EngineError('invalid-params', `the token constraint allows no token of the vocabulary (${row.length}) at step ${step}`);
  }
  for (let i = 0; i < row.length; i++) if (!inside[i]) row[i] = -Infinity;
}

/** PaliGemma's location and segmentation token blocks (`<loc0000>`..`<loc1023>`, `<seg000>`..`<seg127>`). */
export const LOC_TOKENS = 1024;
export const SEG_TOKENS = 128;

/**
 * PaliGemma's segmentation output for one object: 4 location tokens (the box y0 x0 y1 x1, with
 * y1 > y0 and x1 > x0 so that the box has an area to put a mask in), 16 segmentation tokens (the
 * mask's VQ codes), then free text (the label, more objects, eos). First ids come from the
 * model's manifest.
 */
export function segmentConstraint(tokens: { loc0: number; seg0: number }): TokenConstraint {
  const { loc0, seg0 } = tokens;
  const loc = [{ from: loc0, to: loc0 + LOC_TOKENS }];
  const seg = [{ from: seg0, to: seg0 + SEG_TOKENS }];
  return (step, soFar) => {
    if (step < 2) return loc;
    if (step < 4) {
      // The far edge lies past the near one (or on it, at the last bin).
      const near = soFar[step - 2] - loc0;
      if (!(near >= 0 && near < LOC_TOKENS)) return loc; // forced, not generated: nothing to follow
      return [{ from: loc0 + Math.min(near + 1, LOC_TOKENS - 1), to: loc0 + LOC_TOKENS }];
    }
    return step < 20 ? seg : null;
  };
}
