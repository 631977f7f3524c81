// The daemon's engine backend gives segment results masks when the model folder has vae.onnx.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { command as convertVae } from '../../../daemon/cli/convert-vae.js';
import { convert } from '../../../daemon/engine/convert/index.js';
import { decodeRle } from '../../../daemon/engine/segment/index.js';
import { engineBackend } from '../../../daemon/server/engineBackend.js';
import { fixturePath, vaeGolden } from './fixtures.js';

let root: string;
let model: string;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'pg-segbackend-'));
  model = join(root, 'tiny');
  const checkpoint = fileURLToPath(new URL('../../../../test/fixtures/tiny-paligemma-224/', import.meta.url));
  await convert({ input: checkpoint, output: model });
});
after(() => rmSync(root, { recursive: true, force: true }));

const seg = (codes: number[]) => codes.map((c) => `<seg${String(c).padStart(3, '0')}>`).join('');
const loc = (v: number[]) => v.map((x) => `<loc${String(x).padStart(4, '0')}>`).join('');

test('without vae.onnx the model has no segment(), with it segment() returns the golden mask', async () => {
  const backend = engineBackend();
  const plain = await backend.load(model, { executionProvider: 'cpu' });
  assert.equal(plain.segment, undefined);
  await plain.dispose();

  assert.equal(await convertVae.run([fixturePath('vae-tiny.npz'), join(model, 'vae.onnx')]), 0);
  const withMasks = await backend.load(model, { executionProvider: 'cpu' });
  try {
    const golden = vaeGolden();
    const c = golden.paste_cases[0];
    const [h, w] = c.image_hw;
    const raw = `${loc(c.loc_tokens)}${seg(golden.codes[c.mask_index])} circle ; ${loc([0, 0, 1023, 1023])}${seg(golden.codes[1])} all<eos>`;
    const objects = await withMasks.segment!(raw, w, h);
    assert.deepEqual(
      objects.map((o) => o.label),
      ['circle', 'all'],
    );
    assert.deepEqual(objects[0].box, { y0: c.box_px[0], x0: c.box_px[1], y1: c.box_px[2], x1: c.box_px[3] });
    assert.equal(
      decodeRle(objects[0].mask!).reduce((a, b) => a + b, 0),
      c.pixels_on,
    );
    assert.equal(objects[1].mask!.width, w);
  } finally {
    await withMasks.dispose();
  }
});
