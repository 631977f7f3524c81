import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { boxToPercent, decodeRle, labelColorIndex, maskArea } from '../../webview/geometry.js';

describe('boxToPercent', () => {
  it('converts pixel boxes to percentages of the image', () => {
    assert.deepEqual(boxToPercent({ x0: 64, y0: 36, x1: 320, y1: 180 }, 640, 360), {
      left: 10,
      top: 10,
      width: 40,
      height: 40,
    });
  });

  it('clamps boxes that stick out of the image and orders swapped corners', () => {
    assert.deepEqual(boxToPercent({ x0: 300, y0: 250, x1: -20, y1: 50 }, 200, 200), {
      left: 0,
      top: 25,
      width: 100,
      height: 75,
    });
  });

  it('gives null when the image size is unknown or the box is not a number', () => {
    assert.equal(boxToPercent({ x0: 0, y0: 0, x1: 1, y1: 1 }, 0, 100), null);
    assert.equal(boxToPercent({ x0: NaN, y0: 0, x1: 1, y1: 1 }, 10, 10), null);
  });
});

describe('decodeRle', () => {
  it('expands alternating runs starting with zeros', () => {
    const bits = decodeRle({ width: 3, height: 2, rle: [1, 2, 2, 1] });
    assert.deepEqual([...bits], [0, 1, 1, 0, 0, 1]);
    assert.equal(maskArea({ width: 3, height: 2, rle: [1, 2, 2, 1] }), 3);
  });

  it('accepts an empty first run (mask starting with ones)', () => {
    assert.deepEqual([...decodeRle({ width: 2, height: 1, rle: [0, 2] })], [1, 1]);
  });

  it('refuses runs that do not cover the mask exactly', () => {
    assert.throws(() => decodeRle({ width: 2, height: 2, rle: [1, 2] }), /cover 3 of 2x2/);
    assert.throws(() => decodeRle({ width: 2, height: 1, rle: [1, 5] }), /exceed 2x1/);
    assert.throws(() => decodeRle({ width: 2, height: 1, rle: [1, -1, 2] }), /not a count/);
    assert.throws(() => decodeRle({ width: 1.5, height: 1, rle: [] }), /invalid size/);
  });
});

describe('labelColorIndex', () => {
  it('is stable for a label and within the palette', () => {
    const labels = ['cat', 'dog', 'red square', '', 'круг'];
    for (const l of labels) {
      const i = labelColorIndex(l, 6);
      assert.ok(i >= 0 && i < 6);
      assert.equal(labelColorIndex(l, 6), i);
    }
    const distinct = new Set(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((l) => labelColorIndex(l, 6)));
    assert.ok(distinct.size > 1, 'different labels spread over the palette');
  });
});
