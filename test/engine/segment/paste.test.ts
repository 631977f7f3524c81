import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeRle, encodeRle, pasteMask, resizeBilinearPil, segmentBox } from '../../../daemon/engine/segment/paste.js';
import { goldenMasks, vaeGolden } from './fixtures.js';

test('segmentBox divides loc tokens by 1023 and truncates, as big_vision does', () => {
  for (const c of vaeGolden().paste_cases) {
    const [h, w] = c.image_hw;
    const box = segmentBox(c.loc_tokens, w, h);
    assert.ok(box);
    assert.deepEqual([box.y0, box.x0, box.y1, box.x1], c.box_px);
  }
  assert.equal(segmentBox([10, 10, 10, 20], 224, 224), null, 'empty box');
  assert.equal(segmentBox([10, 10, 1024, 20], 224, 224), null, 'loc out of range');
  assert.equal(segmentBox([500, 10, 501, 20], 224, 224), null, 'box empty after truncation');
});

test('pasted masks count exactly the golden pixels, row by row', () => {
  const masks = goldenMasks();
  for (const c of vaeGolden().paste_cases) {
    const [h, w] = c.image_hw;
    const pasted = pasteMask(masks[c.mask_index], c.loc_tokens, w, h);
    assert.ok(pasted, `case ${c.mask_index} has a box`);
    const { box, mask } = pasted;
    assert.equal(mask.width, box.x1 - box.x0);
    assert.equal(mask.height, box.y1 - box.y0);
    const bits = decodeRle(mask);
    let total = 0;
    const rows = new Array<number>(h).fill(0);
    for (let y = 0; y < mask.height; y++) {
      for (let x = 0; x < mask.width; x++) rows[box.y0 + y] += bits[y * mask.width + x];
    }
    for (const r of rows) total += r;
    assert.equal(total, c.pixels_on, `case ${c.mask_index}: pixels on`);
    assert.deepEqual(rows, c.rows_on, `case ${c.mask_index}: pixels on per row`);
  }
});

test('resizeBilinearPil: identity, constant, and a hand-computed upscale', () => {
  const src = Float32Array.from({ length: 16 }, (_, i) => i * 0.25 - 1);
  assert.deepEqual(resizeBilinearPil(src, 4, 4, 4, 4), src);
  const flat = resizeBilinearPil(new Float32Array(16).fill(0.3), 4, 4, 7, 3);
  for (const v of flat) assert.ok(Math.abs(v - 0.3) < 1e-6);
  // 2 -> 4 on one row: centres at 0.25, 0.75, 1.25, 1.75 in input units; PIL clamps at the edges.
  const up = resizeBilinearPil(Float32Array.from([0, 1]), 2, 1, 4, 1);
  assert.deepEqual(Array.from(up), [0, 0.25, 0.75, 1]);
  // 4 -> 2 averages pairs (triangle widened to support 2): weights 1/8, 3/8, 3/8, 1/8 clipped at the edge.
  const down = resizeBilinearPil(Float32Array.from([0, 1, 2, 3]), 4, 1, 2, 1);
  assert.ok(Math.abs(down[0] - (0 * 3 + 1 * 3 + 2 * 1) / 7) < 1e-6, `got ${down[0]}`);
});

test('RLE starts with a run of zeros and round-trips', () => {
  assert.deepEqual(encodeRle([1, 1, 0, 1]), [0, 2, 1, 1]);
  assert.deepEqual(encodeRle([0, 0, 0]), [3]);
  assert.deepEqual(encodeRle([]), [0]);
  const bits = Uint8Array.from({ length: 50 }, (_, i) => ((i * 7) % 3 === 0 ? 1 : 0));
  assert.deepEqual(decodeRle({ width: 10, height: 5, rle: encodeRle(bits) }), bits);
  assert.throws(() => decodeRle({ width: 2, height: 2, rle: [1, 2] }), /covers 3 pixels/);
});

test('pasteMask rejects a mask of the wrong size', () => {
  assert.throws(() => pasteMask(new Float32Array(10), [0, 0, 100, 100], 10, 10), /64x64/);
});
