// The decoding loop, independent of onnxruntime: it talks to a `StepModel` that turns tokens into
// next-token logits, so greedy, sampling and beam search are unit-tested with toy logits functions.
import { EngineError } from '../errors.js';
import { maskOutside, type TokenConstraint } from './constraint.js';
import { argmax, logSoftmax, topK } from './logits.js';
import { DEFAULT_SAMPLING, SeededRandom, sampleFrom, warpLogits, type SamplingOptions } from './sampling.js';

/** The model side of decoding: rows of logits in, one token per row out. */
export interface StepModel {
  readonly vocabSize: number;
  /** Runs the prompt(s); returns the last position's logits, `rows x vocabSize`. */
  prefill(): Promise<Float32Array>;
  /** Appends `tokens[i]` to row i and returns the next logits, `rows x vocabSize`. */
  next(tokens: readonly number[]): Promise<Float32Array>;
  /** Beam search: from now on row i continues from current row `sources[i]` (may change the row count). */
  reorder(sources: readonly number[]): void | Promise<void>;
  /**
   * Optional: the whole greedy decoding in one call (the loop inside the model, e.g. on the GPU),
   * instead of prefill + next. Returns each row's ids, at least `minNewTokens` before eos,
   * possibly running on past its eos (decode cuts there). Only plain greedy decoding uses it.
   */
  greedy?(maxNewTokens: number, minNewTokens: number): Promise<number[][]>;
  /**
   * Optional: keep only rows `keep` (ascending current row indices), dropping the others from
   * every tensor, so that rows which finished stop costing. Without it finished rows are fed
   * `padTokenId` until the whole batch ends.
   */
  compact?(keep: readonly number[]): void | Promise<void>;
  /**
   * Optional: the whole beam search of one prompt in one call (inside the model), or null when
   * the model cannot score these options exactly as `beamSearch` does. Returns the best
   * hypothesis, ending with eos when it stopped on one. Only unconstrained beam search uses it.
   */
  beam?(o: BeamRequest): Promise<number[]> | null;
}

export interface BeamRequest {
  numBeams: number;
  lengthPenalty: number;
  maxNewTokens: number;
  minNewTokens: number;
}

export type Strategy = 'greedy' | 'sample' | 'beam';

export interface DecodeOptions {
  maxNewTokens: number;
  /** Batched decoding: row i stops after `rowMaxNewTokens[i]` tokens (each at most maxNewTokens). */
  rowMaxNewTokens?: readonly number[];
  minNewTokens?: number;
  strategy?: Strategy;
  eosTokenId: number;
  /** Token fed to rows that already finished (batched decoding). */
  padTokenId?: number;
  numBeams?: number;
  /** Beam scores are sum(logprob) / length ** lengthPenalty (HF default 1). */
  lengthPenalty?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  signal?: AbortSignal;
  /** Called once per generated token of row 0 (not for beam search, whose beams are not final). */
  onToken?: (id: number, index: number) => void;
  /** Record each step's top-3 ids and processed logits of every row (HF's `output_scores`). */
  recordSteps?: boolean;
  /** Teacher forcing: feed these tokens instead of the chosen ones (parity checks); row 0 only. */
  forceTokens?: readonly number[];
  /** Grammar: the tokens allowed at each step (others are masked to -Infinity before selection). */
  allowedTokens?: TokenConstraint;
}

export interface StepRecord {
  ids: number[];
  logits: number[];
}

export interface DecodeResult {
  /** Generated ids per row, each ending with eos when the row stopped on it. */
  tokens: number[][];
  /** With recordSteps: per row, one record per generated token. */
  steps?: StepRecord[][];
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new EngineError('cancelled', 'generation was cancelled');
}

function checkOptions(opts: DecodeOptions): void {
  const int = (v: number | undefined, name: string, min: number): void => {
    if (v !== undefined && !(Number.isInteger(v) && v >= min)) {
      throw new EngineError('invalid-params', `${name} must be an integer >= ${min} (got ${v})`);
    }
  };
  int(opts.maxNewTokens, 'maxNewTokens', 1);
  int(opts.minNewTokens, 'minNewTokens', 0);
  int(opts.numBeams, 'numBeams', 1);
  int(opts.topK, 'topK', 0);
  int(opts.seed, 'seed', 0);
  opts.rowMaxNewTokens?.forEach((m, i) => {
    int(m, `maxNewTokens of row ${i}`, 1);
    if (m > opts.maxNewTokens) throw new EngineError('invalid-params', `maxNewTokens of row ${i} (${m}) exceeds the batch's ${opts.maxNewTokens}`);
    if ((opts.minNewTokens ?? 0) > m) throw new EngineError('invalid-params', `minNewTokens (${opts.minNewTokens}) exceeds maxNewTokens of row ${i} (${m})`);
  });
  if ((opts.minNewTokens ?? 0) > opts.maxNewTokens) {
    throw new EngineError('invalid-params', `minNewTokens (${opts.minNewTokens}) exceeds maxNewTokens (${opts.maxNewTokens})`);
  }
  if (opts.temperature !== undefined && !(opts.temperature > 0 && Number.isFinite(opts.temperature))) {
    throw new EngineError('invalid-params', `temperature must be a positive number (got ${opts.temperature})`);
  }
  if (opts.topP !== undefined && !(opts.topP > 0 && opts.topP <= 1)) {
    throw new EngineError('invalid-params', `topP must be in (0, 1] (got ${opts.topP})`);
  }
}

/** Runs one generation with the chosen strategy. */
export async function decode(model: StepModel, opts: DecodeOptions): Promise<DecodeResult> {
  checkOptions(opts);
  const strategy = opts.strategy ?? 'greedy';
  if (strategy === 'beam') return beamSearch(model, opts);
  return decodeRows(model, opts, strategy);
}

function row(logits: Float32Array, vocab: number, i: number): Float32Array {
  return logits.subarray(i * vocab, (i + 1) * vocab);
}

/** Whether this request may hand the whole loop to `StepModel.greedy`: nothing needs each step. */
function greedyAtOnce(model: StepModel, opts: DecodeOptions, strategy: Strategy): boolean {
  return strategy === 'greedy' && model.greedy !== undefined && !opts.allowedTokens && !opts.recordSteps && !opts.forceTokens;
}

async function decodeRows(model: StepModel, opts: DecodeOptions, strategy: 'greedy' | 'sample'): Promise<DecodeResult> {
  const limit = (r: number) => opts.rowMaxNewTokens?.[r] ?? opts.maxNewTokens;
  if (greedyAtOnce(model, opts, strategy)) {
    throwIfAborted(opts.signal);
    const rows = await model.greedy!(opts.maxNewTokens, opts.minNewTokens ?? 0);
    const tokens = rows.map((ids, r) => {
      const end = ids.indexOf(opts.eosTokenId);
      return ids.slice(0, Math.min(limit(r), end === -1 ? ids.length : end + 1));
    });
    // Streaming listeners get the tokens at once: the loop ran inside the model.
    tokens[0]?.forEach((id, t) => opts.onToken?.(id, t));
    return { tokens };
  }
  const vocab = model.vocabSize;
  const minNew = opts.minNewTokens ?? 0;
  const sampling: SamplingOptions = {
    temperature: opts.temperature ?? DEFAULT_SAMPLING.temperature,
    topK: opts.topK ?? DEFAULT_SAMPLING.topK,
    topP: opts.topP ?? DEFAULT_SAMPLING.topP,
  };
  throwIfAborted(opts.signal);
  let logits = await model.prefill();
  const rows = logits.length / vocab;
  // One generator per row, each seeded alike, so that a row samples what it would alone.
  const rngs = Array.from({ length: rows }, () => new SeededRandom(opts.seed ?? 0));
  const tokens: number[][] = Array.from({ length: rows }, () => []);
  const done = new Array<boolean>(rows).fill(false);
  const steps: StepRecord[][] | undefined = opts.recordSteps ? Array.from({ length: rows }, () => []) : undefined;
  const work = new Float32Array(vocab);
  /** The batch row of the model's row i (rows drop out as the model compacts). */
  let live = Array.from({ length: rows }, (_, r) => r);

  for (let t = 0; ; t++) {
    throwIfAborted(opts.signal);
    const chosen: number[] = [];
    live.forEach((r, i) => {
      if (done[r]) {
        chosen.push(opts.padTokenId ?? opts.eosTokenId);
        return;
      }
      work.set(row(logits, vocab, i));
      if (t < minNew) work[opts.eosTokenId] = -Infinity; // HF MinNewTokensLengthLogitsProcessor
      constrain(work, opts.allowedTokens, t, tokens[r]);
      if (strategy === 'sample') warpLogits(work, sampling);
      if (steps) {
        const top = topK(work, 3);
        steps[r].push({ ids: top.ids, logits: top.values });
      }
      let id = strategy === 'greedy' ? argmax(work) : sampleFrom(work, rngs[r]);
      if (r === 0 && opts.forceTokens && t < opts.forceTokens.length) id = opts.forceTokens[t];
      tokens[r].push(id);
      if (r === 0) opts.onToken?.(id, t);
      if (id === opts.eosTokenId || tokens[r].length >= limit(r)) done[r] = true;
      chosen.push(id);
    });
    if (done.every(Boolean)) break;
    if (model.compact && live.some((r) => done[r])) {
      const keep = live.flatMap((r, i) => (done[r] ? [] : [i]));
      await model.compact(keep);
      logits = await model.next(keep.map((i) => chosen[i]));
      live = keep.map((i) => live[i]);
    } else {
      logits = await model.next(chosen);
    }
  }
  return { tokens, steps };
}

function constrain(row: Float32Array, allowed: TokenConstraint | undefined, step: number, soFar: readonly number[]): void {
  const ranges = allowed?.(step, soFar);
  if (ranges) maskOutside(row, ranges, step);
}

interface Hypothesis {
  tokens: number[];
  score: number;
}

/**
 * Beam search as in transformers' `_beam_search` (num_return_sequences 1, early_stopping False):
 * each step expands every beam, keeps the best 2 x numBeams candidates, moves candidates ending in
 * eos that rank among the first numBeams into the finished set (score = sum logprob / length **
 * lengthPenalty, length counting the eos), and continues with the best numBeams others. It stops
 * when numBeams hypotheses are finished and no running beam can still beat the worst of them,
 * or at maxNewTokens, where the running beams count as finished.
 */
async function beamSearch(model: StepModel, opts: DecodeOptions): Promise<DecodeResult> {
  const vocab = model.vocabSize;
  const numBeams = opts.numBeams ?? 4;
  const lengthPenalty = opts.lengthPenalty ?? 1;
  const minNew = opts.minNewTokens ?? 0;
  const eos = opts.eosTokenId;
  throwIfAborted(opts.signal);
  const inModel = opts.allowedTokens ? null : (model.beam?.({ numBeams, lengthPenalty, maxNewTokens: opts.maxNewTokens, minNewTokens: minNew }) ?? null);
  if (inModel) return { tokens: [await inModel] };
  let logits = await model.prefill();
  if (logits.length !== vocab) throw new Error('beam search decodes one prompt at a time');
  await model.reorder(new Array<number>(numBeams).fill(0));
  let beams: Hypothesis[] = Array.from({ length: numBeams }, (_, i) => ({ tokens: [], score: i === 0 ? 0 : -1e9 }));
  let beamRows = 1; // rows of `logits` (1 before the first expansion)
  const finished: Hypothesis[] = [];
  const normalized = (h: Hypothesis): number => h.score / h.tokens.length ** lengthPenalty;
  const worstFinished = (): number => (finished.length < numBeams ? -Infinity : Math.min(...finished.map(normalized)));
  const addFinished = (h: Hypothesis): void => {
    if (finished.length < numBeams) finished.push(h);
    else {
      let worst = 0;
      for (let i = 1; i < finished.length; i++) if (normalized(finished[i]) < normalized(finished[worst])) worst = i;
      if (normalized(h) > normalized(finished[worst])) finished[worst] = h;
    }
  };
  const logp = new Float32Array(vocab);

  for (let t = 0; t < opts.maxNewTokens; t++) {
    throwIfAborted(opts.signal);
    // Candidates over (beam, token): keep the best 2 * numBeams.
    const keep = 2 * numBeams;
    const candScores: number[] = [];
    const candBeam: number[] = [];
    const candToken: number[] = [];
    for (let b = 0; b < numBeams; b++) {
      const src = beamRows === 1 ? 0 : b;
      logp.set(row(logits, vocab, src));
      if (t < minNew) logp[eos] = -Infinity;
      logSoftmax(logp, logp);
      // After the log-softmax, as transformers applies its processors in beam search.
      constrain(logp, opts.allowedTokens, t, beams[b].tokens);
      const top = topK(logp, keep);
      for (let j = 0; j < top.ids.length; j++) {
        candScores.push(beams[b].score + top.values[j]);
        candBeam.push(b);
        candToken.push(top.ids[j]);
      }
    }
    const order = candScores
      .map((_, i) => i)
      .sort((x, y) => candScores[y] - candScores[x] || x - y)
      .slice(0, keep);
    const lastStep = t === opts.maxNewTokens - 1;
    const next: Hypothesis[] = [];
    const sources: number[] = [];
    for (let rank = 0; rank < order.length && next.length < numBeams; rank++) {
      const i = order[rank];
      const h = { tokens: [...beams[candBeam[i]].tokens, candToken[i]], score: candScores[i] };
      if (candToken[i] === eos) {
        if (rank < numBeams) addFinished(h);
        continue;
      }
      next.push(h);
      sources.push(candBeam[i]);
    }
    if (lastStep) {
      for (const h of next) addFinished(h);
      break;
    }
    beams = next;
    // Early-stop heuristic (early_stopping=False): the best running beam, normalized by the current
    // length, can no longer beat the worst finished hypothesis.
    const genLength = t + 1;
    if (finished.length >= numBeams && beams[0].score / genLength ** lengthPenalty <= worstFinished()) break;
    await model.reorder(sources);
    logits = await model.next(beams.map((h) => h.tokens[h.tokens.length - 1]));
    beamRows = numBeams;
  }
  if (finished.length === 0) finished.push(...beams);
  let best = finished[0];
  for (const h of finished) if (normalized(h) > normalized(best)) best = h;
  return { tokens: [best.tokens] };
}
