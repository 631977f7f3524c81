// Additive attention biases for the decoder graph, reproducing Hugging Face transformers' PaliGemma
// masking (masking_utils.py + PaliGemma's create_causal_mask_mapping, read at transformers commit
// 00c4411 / the 4.57+ PaliGemma model):
//
//   full layers:    padding(k) AND ( causal(q,k) OR sameBlock(q,k) )
//   sliding layers: padding(k) AND ( (causal(q,k) AND window(q,k)) OR sameBlock(q,k) )
//
// where sameBlock means both q and k belong to the prompt (image tokens + <bos> + text + "\n"), which
// PaliGemma marks as one bidirectional block during prefill, causal(q,k) = k <= q and
// window(q,k) = k > q - slidingWindow (transformers' sliding_window_overlay). The OR comes last, so
// on sliding layers the window does NOT cut into the bidirectional prompt: when the prompt is
// longer than the window (896 px: 4096 image tokens + text), every prompt token still sees the
// whole prompt, while generated tokens see only the last `slidingWindow` positions. (big_vision's
// original Gemma 2 code clamps the prompt block to the window instead; we follow transformers.)
//
// Indices: transformers compares cache indices of a left-padded batch, in which the difference of
// two real tokens' indices equals the difference of their 1-indexed position ids. We lay a padded
// row out as [image][pads][text][generated] (the graph concatenates image features first), so the
// window is measured on position ids, which gives transformers' numbers for every real token.

/** float32's lowest value, what transformers' eager attention adds for masked positions. */
export const MASKED = -3.4028234663852886e38;

export const SlotKind = { Pad: 0, Prompt: 1, Generated: 2 } as const;
export type SlotKind = (typeof SlotKind)[keyof typeof SlotKind];

/** What occupies each cache slot of one batch row, and its position id. */
export class RowLayout {
  kinds: Uint8Array;
  positions: Int32Array;
  length = 0;

  constructor(capacity = 64) {
    this.kinds = new Uint8Array(capacity);
    this.positions = new Int32Array(capacity);
  }

  push(kind: SlotKind, position: number): void {
    if (this.length === this.kinds.length) {
      const cap = Math.max(16, this.kinds.length * 2);
      const k = new Uint8Array(cap);
      k.set(this.kinds);
      const p = new Int32Array(cap);
      p.set(this.positions);
      this.kinds = k;
      this.positions = p;
    }
    this.kinds[this.length] = kind;
    this.positions[this.length] = position;
    this.length++;
  }

  copy(): RowLayout {
    const out = new RowLayout(this.kinds.length);
    out.kinds.set(this.kinds);
    out.positions.set(this.positions);
    out.length = this.length;
    return out;
  }

  /** Position id the next real token gets: one after the last non-pad slot (1-indexed, like HF). */
  nextPosition(): number {
    for (let i = this.length - 1; i >= 0; i--) if (this.kinds[i] !== SlotKind.Pad) return this.positions[i] + 1;
    return 1;
  }
}

/**
 * Lays out a prefill row: `numImage` image slots, `padCount` pads, then `textLength` text slots, all
 * prompt tokens numbered 1, 2, ... in order (pads get position 1; they are masked everywhere).
 */
export function prefillLayout(numImage: number, padCount: number, textLength: number): RowLayout {
  const row = new RowLayout(numImage + padCount + textLength + 64);
  let pos = 1;
  for (let i = 0; i < numImage; i++) row.push(SlotKind.Prompt, pos++);
  for (let i = 0; i < padCount; i++) row.push(SlotKind.Pad, 1);
  for (let i = 0; i < textLength; i++) row.push(SlotKind.Prompt, pos++);
  return row;
}

/**
 * Builds a float32 bias `[B, 1, Q, K]` for the queries in slots `[qStart, qStart + Q)` against keys
 * in slots `[0, K)` of each row (K = every row's length). `window` null = full attention.
 * `out` is reused when it is large enough.
 */
export function buildAttentionBias(rows: readonly RowLayout[], qStart: number, qLength: number, window: number | null, out?: Float32Array): Float32Array {
  const kLength = rows[0].length;
  for (const r of rows) {
    if (r.length !== kLength) throw new Error(`rows differ in length (${r.length} vs ${kLength})`);
  }
  if (qStart + qLength > kLength) throw new Error(`queries [${qStart}, ${qStart + qLength}) exceed ${kLength} slots`);
  const size = rows.length * qLength * kLength;
  const fresh = !(out && out.length >= size);
  const bias = fresh ? new Float32Array(size) : out!.subarray(0, size);
  for (let b = 0; b < rows.length; b++) {
    const { kinds, positions } = rows[b];
    if (onlyPrompt(rows[b], kLength)) {
      // A prefill without padding: one bidirectional block, nothing masked (the common case, and
      // at 896 px a 4112 x 4112 matrix that is not worth a loop).
      if (!fresh) bias.fill(0, b * qLength * kLength, (b + 1) * qLength * kLength);
      continue;
    }
    for (let qi = 0; qi < qLength; qi++) {
      const q = qStart + qi;
      const qKind = kinds[q];
      const qPos = positions[q];
      const base = (b * qLength + qi) * kLength;
      let any = false;
      for (let k = 0; k < kLength; k++) {
        const kKind = kinds[k];
        let allowed = false;
        if (kKind !== SlotKind.Pad) {
          if (qKind === SlotKind.Prompt && kKind === SlotKind.Prompt) allowed = true;
          else if (k <= q) allowed = window === null || positions[k] > qPos - window;
        }
        bias[base + k] = allowed ? 0 : MASKED;
        any ||= allowed;
      }
      // A query that sees nothing (a pad slot before any real token) may see itself: a row of only
      // MASKED becomes -inf and then NaN in fp16 graphs, and no real query ever attends to a pad
      // key, so no real token's output changes.
      if (!any) bias[base + q] = 0;
    }
  }
  return bias;
}

/** True when the first `length` slots of the row are all prompt tokens (no pads, nothing generated). */
export function onlyPrompt(row: RowLayout, length = row.length): boolean {
  for (let i = 0; i < length; i++) if (row.kinds[i] !== SlotKind.Prompt) return false;
  return true;
}
