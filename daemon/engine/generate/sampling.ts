// Sampling: a seeded PRNG and the logits warpers in Hugging Face's order (temperature, top-k,
// top-p), each written to match transformers' TemperatureLogitsWarper / TopKLogitsWarper /
// TopPLogitsWarper, so the same settings keep the same candidate set.

/** sfc32: small, fast, 128-bit state; good enough statistically for token sampling. */
export class SeededRandom {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    // splitmix32 spreads any integer seed (0 included) over the whole state.
    let s = seed >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  nextUint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }
}

export interface SamplingOptions {
  temperature: number;
  topK: number; // 0 = off
  topP: number; // 1 = off
}

/** Hugging Face's defaults for do_sample=True (GenerationConfig: temperature 1, top_k 50, top_p 1). */
export const DEFAULT_SAMPLING: SamplingOptions = { temperature: 1, topK: 50, topP: 1 };

/** Applies temperature, top-k and top-p in place; removed tokens become -Infinity. */
export function warpLogits(row: Float32Array, opts: SamplingOptions): Float32Array {
  if (opts.temperature !== 1) {
    for (let i = 0; i < row.length; i++) row[i] /= opts.temperature;
  }
  if (opts.topK > 0 && opts.topK < row.length) topKFilter(row, opts.topK);
  if (opts.topP < 1) topPFilter(row, opts.topP);
  return row;
}

/** Keeps every token whose logit is >= the k-th largest (ties with it survive, as in HF). */
export function topKFilter(row: Float32Array, k: number): void {
  const sorted = Float32Array.from(row).sort();
  const kth = sorted[sorted.length - k];
  for (let i = 0; i < row.length; i++) if (row[i] < kth) row[i] = -Infinity;
}

/**
 * HF's nucleus filter: sort ascending, drop the tokens whose cumulative probability is <= 1 - topP,
 * always keeping the most likely token.
 */
export function topPFilter(row: Float32Array, topP: number): void {
  const order = Array.from(row.keys()).sort((x, y) => row[x] - row[y] || x - y);
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  let cumulative = 0;
  for (let r = 0; r < order.length - 1; r++) {
    const id = order[r];
    cumulative += Math.exp(row[id] - max) / sum;
    if (cumulative <= 1 - topP) row[id] = -Infinity;
    else break;
  }
}

/** Draws one id from softmax(row); -Infinity entries are never drawn. */
export function sampleFrom(row: Float32Array, rng: SeededRandom): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  let u = rng.next() * sum;
  let last = 0;
  for (let i = 0; i < row.length; i++) {
    const p = Math.exp(row[i] - max);
    if (p === 0) continue;
    last = i;
    u -= p;
    if (u < 0) return i;
  }
  return last; // rounding left a sliver of mass: the last possible token takes it
}
