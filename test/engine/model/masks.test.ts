import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildAttentionBias, MASKED, prefillLayout, RowLayout, SlotKind } from '../../../daemon/engine/model/masks.js';

// An independent transcription of transformers' mask composition for PaliGemma (masking_utils.py:
// causal_mask_function, sliding_window_overlay, padding_mask_function, or_masks/and_masks; the
// prompt block from PaliGemma's token_type_ids_mask_function), evaluated on HF's own left-padded
// layout [pads][image][text][generated] with cache indices.
function hfAllowed(hfKinds: SlotKind[], q: number, k: number, window: number | null): boolean {
  const padding = hfKinds[k] !== SlotKind.Pad;
  const causal = k <= q;
  const sliding = window === null ? true : k > q - window;
  const block = hfKinds[q] !== SlotKind.Generated && hfKinds[k] !== SlotKind.Generated; // prompt block (pads too; padding removes them)
  return padding && ((causal && sliding) || block);
}

function allowed(bias: Float32Array, qLength: number, kLength: number, b: number, qi: number, k: number): boolean {
  const v = bias[(b * qLength + qi) * kLength + k];
  assert.ok(v === 0 || v === MASKED, `bias values are 0 or MASKED (got ${v})`);
  return v === 0;
}

/** Our slot order for a row with `pads` pads: [image][pads][text][gen]; HF's: [pads][image][text][gen]. */
function toHfIndex(slot: number, numImage: number, pads: number): number {
  if (slot < numImage) return pads + slot;
  if (slot < numImage + pads) return slot - numImage;
  return slot;
}

function grow(row: RowLayout, generated: number): void {
  for (let i = 0; i < generated; i++) row.push(SlotKind.Generated, row.nextPosition());
}

describe('attention bias', () => {
  it('lets the whole prompt attend bidirectionally during prefill', () => {
    const row = prefillLayout(3, 0, 2);
    const bias = buildAttentionBias([row], 0, 5, null);
    assert.equal(bias.length, 25);
    assert.ok(bias.every((v) => v === 0));
    assert.deepEqual(Array.from(row.positions.subarray(0, 5)), [1, 2, 3, 4, 5]);
  });

  it('makes generated tokens causal and keeps the prompt from seeing them', () => {
    const row = prefillLayout(2, 0, 2);
    grow(row, 3);
    const bias = buildAttentionBias([row], 0, 7, null);
    for (let q = 0; q < 7; q++) {
      for (let k = 0; k < 7; k++) {
        const expected = q < 4 ? k < 4 : k <= q;
        assert.equal(allowed(bias, 7, 7, 0, q, k), expected, `q=${q} k=${k}`);
      }
    }
    // A decode step's single query row equals the last row of the full matrix.
    const step = buildAttentionBias([row], 6, 1, null);
    assert.deepEqual(Array.from(step), Array.from(bias.subarray(6 * 7, 7 * 7)));
    assert.deepEqual(Array.from(row.positions.subarray(0, 7)), [1, 2, 3, 4, 5, 6, 7]);
  });

  it('masks padding and numbers the real tokens as a left-padded HF batch does', () => {
    const a = prefillLayout(2, 0, 3);
    const b = prefillLayout(2, 2, 1);
    grow(a, 2);
    grow(b, 2);
    assert.deepEqual(Array.from(b.kinds.subarray(0, 7)), [1, 1, 0, 0, 1, 2, 2]);
    assert.deepEqual(
      Array.from(b.positions.subarray(0, 7)).filter((_, i) => b.kinds[i] !== 0),
      [1, 2, 3, 4, 5],
    );
    const bias = buildAttentionBias([a, b], 0, 7, null);
    for (let q = 0; q < 7; q++) {
      for (let k = 0; k < 7; k++) {
        // A pad query's output is never used; it only needs one visible key to stay finite.
        if (b.kinds[q] === SlotKind.Pad) {
          assert.ok(Array.from({ length: 7 }, (_, kk) => allowed(bias, 7, 7, 1, q, kk)).some(Boolean));
          continue;
        }
        const hfQ = toHfIndex(q, 2, 2);
        const hfK = toHfIndex(k, 2, 2);
        const hfKinds = [0, 0, 1, 1, 1, 2, 2] as SlotKind[];
        assert.equal(allowed(bias, 7, 7, 1, q, k), hfAllowed(hfKinds, hfQ, hfK, null), `row 1 q=${q} k=${k}`);
      }
    }
  });

  it('matches transformers where the sliding window cuts into the bidirectional prompt', () => {
    // 896-px situation in miniature: window 4, prompt of 7 tokens (5 image + 2 text), 4 generated.
    const window = 4;
    const row = prefillLayout(5, 0, 2);
    grow(row, 4);
    const n = row.length;
    const sliding = buildAttentionBias([row], 0, n, window);
    const full = buildAttentionBias([row], 0, n, null);
    const hfKinds = Array.from(row.kinds.subarray(0, n)) as SlotKind[];
    for (let q = 0; q < n; q++) {
      for (let k = 0; k < n; k++) {
        assert.equal(allowed(sliding, n, n, 0, q, k), hfAllowed(hfKinds, q, k, window), `sliding q=${q} k=${k}`);
        assert.equal(allowed(full, n, n, 0, q, k), hfAllowed(hfKinds, q, k, null), `full q=${q} k=${k}`);
      }
    }
    // Spelled out: the first prompt token still sees the last one (6 apart > window), while the
    // last generated token (slot 10, position 11) sees only positions 8..11.
    assert.ok(allowed(sliding, n, n, 0, 0, 6));
    assert.ok(allowed(sliding, n, n, 0, 6, 0));
    assert.deepEqual(
      Array.from({ length: n }, (_, k) => allowed(sliding, n, n, 0, 10, k)),
      [false, false, false, false, false, false, false, true, true, true, true],
    );
    assert.ok(!allowed(sliding, n, n, 0, 7, 3), 'first generated token: position 8 cannot see position 4');
    assert.ok(allowed(sliding, n, n, 0, 7, 4));
  });

  it('measures the window on positions in padded batches, like HF on its left-padded layout', () => {
    const window = 3;
    const rows = [prefillLayout(3, 0, 3), prefillLayout(3, 2, 1)];
    for (const r of rows) grow(r, 3);
    const n = rows[0].length;
    const bias = buildAttentionBias(rows, 0, n, window);
    const pads = 2;
    const hfKinds = [0, 0, 1, 1, 1, 1, 2, 2, 2] as SlotKind[];
    for (let q = 0; q < n; q++) {
      if (rows[1].kinds[q] === SlotKind.Pad) continue;
      for (let k = 0; k < n; k++) {
        assert.equal(allowed(bias, n, n, 1, q, k), hfAllowed(hfKinds, toHfIndex(q, 3, pads), toHfIndex(k, 3, pads), window), `q=${q} k=${k}`);
      }
    }
  });

  it('clears a reused buffer on the all-prompt fast path', () => {
    const row = prefillLayout(3, 0, 2);
    const buffer = new Float32Array(25).fill(MASKED);
    const bias = buildAttentionBias([row], 0, 5, 2, buffer);
    assert.ok(
      bias.every((v) => v === 0),
      'a prompt-only prefill masks nothing, even with a window shorter than the prompt',
    );
  });

  it('reuses a large enough output buffer', () => {
    const row = prefillLayout(2, 0, 1);
    const buffer = new Float32Array(100).fill(7);
    const bias = buildAttentionBias([row], 0, 3, null, buffer);
    assert.equal(bias.buffer, buffer.buffer);
    assert.equal(bias.length, 9);
  });
});
