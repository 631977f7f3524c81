import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { command as convertVae } from '../../../daemon/cli/convert-vae.js';
import { decodeRle, findMaskDecoder, MaskDecoder, segmentObjects } from '../../../daemon/engine/segment/index.js';
import { isEngineError } from '../../../daemon/engine/errors.js';
import { fixturePath, vaeGolden } from './fixtures.js';

let dir: string;
let decoder: MaskDecoder;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pg-vae-'));
  // The test's VAE is converted here, from the fixture npz, through the CLI command.
  const rc = await convertVae.run([fixturePath('vae-tiny.npz'), join(dir, 'vae.onnx')]);
  assert.equal(rc, 0);
  decoder = await MaskDecoder.load(join(dir, 'vae.onnx'));
});
after(async () => {
  await decoder?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test('convert-vae writes only the final file and refuses a wrong archive', async () => {
  assert.deepEqual(readdirSync(dir), ['vae.onnx']);
  await assert.rejects(convertVae.run([fixturePath('golden.json'), join(dir, 'bad.onnx')]), /not a readable \.npz/);
  assert.equal(existsSync(join(dir, 'bad.onnx')), false);
  assert.deepEqual(readdirSync(dir), ['vae.onnx']);
  assert.equal(await convertVae.run([fixturePath('vae-tiny.npz')]), 2);
});

test('segmentObjects gives the golden paste for each segment, in order, batched', async () => {
  const golden = vaeGolden();
  const [c] = golden.paste_cases.filter((p) => p.image_hw[0] === 224);
  const [h, w] = c.image_hw;
  const objects = await segmentObjects(
    decoder,
    [
      { label: 'circle', loc: c.loc_tokens, codes: golden.codes[c.mask_index] },
      { label: 'sliver', loc: [500, 10, 501, 20], codes: golden.codes[0] }, // empty after truncation
      { label: 'all', loc: [0, 0, 1023, 1023], codes: golden.codes[1] },
    ],
    w,
    h,
  );
  assert.deepEqual(
    objects.map((o) => o.label),
    ['circle', 'sliver', 'all'],
  );
  assert.deepEqual(objects[0].box, { y0: c.box_px[0], x0: c.box_px[1], y1: c.box_px[2], x1: c.box_px[3] });
  const bits = decodeRle(objects[0].mask!);
  assert.equal(
    bits.reduce((a, b) => a + b, 0),
    c.pixels_on,
  );
  assert.equal(objects[1].mask, undefined);
  assert.equal(objects[1].box.y1 - objects[1].box.y0, 0);
  assert.deepEqual(objects[2].box, { x0: 0, y0: 0, x1: 224, y1: 224 });
  assert.equal(objects[2].mask!.width * objects[2].mask!.height, 224 * 224);
});

test('decode rejects codes outside 0..127 and rows that are not 16 long', async () => {
  await assert.rejects(decoder.decode([new Array(16).fill(128)]), (e) => isEngineError(e, 'invalid-params'));
  await assert.rejects(decoder.decode([[1, 2, 3]]), /needs 16 codes/);
  assert.deepEqual(await decoder.decode([]), []);
});

test('findMaskDecoder: manifest files.vae, then vae.onnx, else none', async () => {
  const model = mkdtempSync(join(tmpdir(), 'pg-model-'));
  try {
    assert.equal(await findMaskDecoder(model), null);
    writeFileSync(join(model, 'vae.onnx'), 'x');
    assert.equal(await findMaskDecoder(model), join(model, 'vae.onnx'));
    writeFileSync(join(model, 'manifest.json'), JSON.stringify({ files: { vae: 'masks/vae-oid.onnx' } }));
    await assert.rejects(findMaskDecoder(model), (e) => isEngineError(e, 'model-missing') && /files\.vae/.test((e as Error).message));
    writeFileSync(join(model, 'manifest.json'), JSON.stringify({ files: { vae: 'vae.onnx' } }));
    assert.equal(await findMaskDecoder(model), join(model, 'vae.onnx'));
  } finally {
    rmSync(model, { recursive: true, force: true });
  }
});

test('loading something that is not a mask decoder says so', async () => {
  const bad = join(dir, 'garbage.onnx');
  writeFileSync(bad, 'not a model');
  await assert.rejects(MaskDecoder.load(bad), (e) => isEngineError(e, 'model-invalid'));
  rmSync(bad);
});
