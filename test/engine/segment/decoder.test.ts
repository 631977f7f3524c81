import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MaskDecoder } from '../../../daemon/engine/segment/decoder.js';
import { readVaeNpz, vaeDecoderOnnx } from '../../../daemon/engine/segment/vae.js';
import { fixturePath, goldenMasks, vaeGolden } from './fixtures.js';

test("the converted tiny VAE reproduces big_vision's Flax masks within 1e-4", async () => {
  const decoder = await MaskDecoder.load(vaeDecoderOnnx(readVaeNpz(fixturePath('vae-tiny.npz'))));
  try {
    const golden = vaeGolden();
    const expected = goldenMasks();
    const masks = await decoder.decode(golden.codes);
    assert.equal(masks.length, golden.codes.length);
    masks.forEach((m, i) => {
      let maxDiff = 0;
      let positive = 0;
      for (let j = 0; j < m.length; j++) {
        maxDiff = Math.max(maxDiff, Math.abs(m[j] - expected[i][j]));
        if (m[j] > 0) positive++;
      }
      assert.ok(maxDiff < 1e-4, `mask ${i}: max |diff| ${maxDiff}`);
      assert.equal(positive, golden.mask_stats[i].positive, `mask ${i}: positive pixels`);
    });
  } finally {
    await decoder.dispose();
  }
});
