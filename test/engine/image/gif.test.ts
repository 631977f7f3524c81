import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { gifTransparentColour } from '../../../daemon/engine/image/gif.js';
import { imageInput } from './fixtures.js';

/** A 1x1 GIF: global palette [10,20,30], [40,50,60], [70,80,90], [1,2,3]; GCE with index 1. */
function tinyGif(transparencyFlag: boolean, localPalette = false): Uint8Array {
  return Uint8Array.from([
    ...Buffer.from('GIF89a'), 1, 0, 1, 0, 0x81, 0, 0,
    10, 20, 30, 40, 50, 60, 70, 80, 90, 1, 2, 3,
    0x21, 0xff, 3, 1, 2, 3, 0, // an application extension to skip
    0x21, 0xf9, 4, transparencyFlag ? 1 : 0, 0, 0, 1, 0,
    0x2c, 0, 0, 0, 0, 1, 0, 1, 0, localPalette ? 0x80 : 0,
    ...(localPalette ? [200, 201, 202, 210, 211, 212] : []),
    2, 2, 0x4c, 1, 0, 0x3b,
  ]);
}

test('finds the transparent palette colour of a GIF first frame', () => {
  assert.deepEqual(gifTransparentColour(readFileSync(imageInput('transparent.gif'))), [76, 105, 113]);
  assert.deepEqual(gifTransparentColour(tinyGif(true)), [40, 50, 60]);
  assert.deepEqual(gifTransparentColour(tinyGif(true, true)), [210, 211, 212]); // the local palette wins
  assert.equal(gifTransparentColour(tinyGif(false)), null);
});

test('never throws on truncated or foreign data', () => {
  const gif = readFileSync(imageInput('transparent.gif'));
  for (let n = 0; n < gif.length; n += 7) gifTransparentColour(gif.subarray(0, n));
  assert.equal(gifTransparentColour(readFileSync(imageInput('rgba.png'))), null);
  assert.equal(gifTransparentColour(new Uint8Array(0)), null);
});
