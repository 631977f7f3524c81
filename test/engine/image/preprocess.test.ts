import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { loadImage, type RgbImage } from '../../../daemon/engine/image/load.js';
import { preprocess } from '../../../daemon/engine/image/preprocess.js';
import { resizeBicubicAntialias } from '../../../daemon/engine/image/resize.js';
import { imageInput, imageReference, maxAbsDiff, readRgb, repoPath } from './fixtures.js';

const SIGLIP = { size: 224, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], rescale: 0.00392156862745098 };
const SAMPLES = [
  [0, 0, 0],
  [1, 100, 50],
  [2, 223, 223],
  [0, 111, 180],
] as const;

interface PixelCase {
  image: string;
  pixel_values_mean: number[];
  pixel_values_l1: number;
  pixel_values_sample: number[];
}

/** What the reference's normalisation gives for an 8-bit value (float32 (x - 127.5) / 127.5). */
const normalised = (v: number) => Math.fround((v - 127.5) / 127.5);

for (const model of ['tiny-paligemma-224', 'tiny-paligemma2-224']) {
  test(`pixel values match golden.json for every case of ${model}`, async () => {
    const golden = JSON.parse(readFileSync(repoPath(`test/fixtures/${model}/golden.json`), 'utf8')) as { cases: PixelCase[] };
    const cache = new Map<string, Float32Array>();
    for (const c of golden.cases) {
      let pv = cache.get(c.image);
      if (!pv) {
        pv = preprocess(await loadImage(repoPath(`test/fixtures/${model}/${c.image}`)), SIGLIP);
        cache.set(c.image, pv);
      }
      assert.equal(pv.length, 3 * 224 * 224);
      const plane = 224 * 224;
      SAMPLES.forEach(([ch, y, x], i) => {
        const got = pv[ch * plane + y * 224 + x];
        assert.ok(Math.abs(got - c.pixel_values_sample[i]) <= 1e-7, `${c.image} [${ch},${y},${x}]: ${got} vs ${c.pixel_values_sample[i]}`);
      });
      let l1 = 0;
      for (let ch = 0; ch < 3; ch++) {
        let sum = 0;
        for (let i = 0; i < plane; i++) {
          sum += pv[ch * plane + i];
          l1 += Math.abs(pv[ch * plane + i]);
        }
        // golden means are numpy float32 reductions: agreement to ~1e-7 means the same pixels
        assert.ok(Math.abs(sum / plane - c.pixel_values_mean[ch]) < 1e-6, `${c.image} mean[${ch}] ${sum / plane} vs ${c.pixel_values_mean[ch]}`);
      }
      assert.ok(Math.abs(l1 - c.pixel_values_l1) / c.pixel_values_l1 < 1e-6, `${c.image} l1 ${l1} vs ${c.pixel_values_l1}`);
    }
  });
}

test('wide.jpg (640x360 -> 224x224) equals the reference pixel values exactly, value by value', async () => {
  // reference/wide.jpg.224.png holds transformers' pixel_values as exact 8-bit values
  const pv = preprocess(await loadImage(repoPath('test/fixtures/tiny-paligemma-224/wide.jpg')), SIGLIP);
  const ref = await readRgb(imageReference('wide.jpg.224.png'));
  let maxDiff = 0;
  let sumDiff = 0;
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < 224 * 224; i++) {
      const d = Math.abs(pv[c * 224 * 224 + i] - normalised(ref.rgb[i * 3 + c]));
      maxDiff = Math.max(maxDiff, d);
      sumDiff += d;
    }
  }
  assert.equal(maxDiff, 0, `max |diff| ${maxDiff}, mean ${sumDiff / pv.length}`);
});

for (const name of ['noise-301x187.png', 'tall-150x400.jpg', 'up-57x33.png']) {
  test(`antialiased bicubic resize of ${name} is bit-exact with torchvision's`, async () => {
    const img = await loadImage(imageInput(name));
    const ref = await readRgb(imageReference(`${name}.224.png`));
    const out = resizeBicubicAntialias(img.rgb, img.width, img.height, 224, 224);
    assert.equal(maxAbsDiff(out, ref.rgb), 0);
  });
}

test('resize handles non-square targets, one-pixel images and identity sizes', () => {
  const src = new Uint8Array([0, 0, 0, 255, 255, 255, 10, 20, 30, 200, 100, 50]); // 2x2
  assert.deepEqual([...resizeBicubicAntialias(src, 2, 2, 2, 2)], [...src]);
  const one = resizeBicubicAntialias(new Uint8Array([7, 8, 9]), 1, 1, 5, 3);
  assert.equal(one.length, 5 * 3 * 3);
  for (let i = 0; i < one.length; i += 3) assert.deepEqual([...one.slice(i, i + 3)], [7, 8, 9]);
  // a constant image stays constant whatever the scale (weights sum to one after rounding)
  const flat = new Uint8Array(97 * 31 * 3).fill(77);
  for (const [w, h] of [
    [13, 7],
    [224, 224],
    [400, 5],
  ]) {
    assert.ok(
      resizeBicubicAntialias(flat, 97, 31, w, h).every((v) => v === 77),
      `${w}x${h}`,
    );
  }
});

test('normalisation follows the fused float32 formula for other means and stds', () => {
  const img: RgbImage = { width: 1, height: 1, rgb: new Uint8Array([0, 128, 255]) };
  const mean = [0.48145466, 0.4578275, 0.40821073];
  const std = [0.26862954, 0.26130258, 0.27577711];
  const pv = preprocess(img, { size: 1, mean, std, rescale: 1 / 255 });
  const f = Math.fround;
  [0, 128, 255].forEach((v, c) => {
    const m = f(f(mean[c]) * f(255));
    const s = f(f(std[c]) * f(255));
    assert.equal(pv[c], f(f(v - m) / s));
    assert.ok(Math.abs(pv[c] - (v / 255 - mean[c]) / std[c]) < 1e-5);
  });
});

test('preprocess rejects inconsistent input', () => {
  const img: RgbImage = { width: 2, height: 2, rgb: new Uint8Array(5) };
  assert.throws(() => preprocess(img, SIGLIP), { name: 'EngineError', code: 'invalid-params' });
  assert.throws(() => preprocess({ width: 1, height: 1, rgb: new Uint8Array(3) }, { ...SIGLIP, size: 0 }), { code: 'invalid-params' });
  for (const [width, height] of [
    [0, 0],
    [0, 5],
    [5, 0],
    [1.5, 2],
  ]) {
    assert.throws(() => preprocess({ width, height, rgb: new Uint8Array(Math.max(0, width * height * 3)) }, SIGLIP), { code: 'invalid-params' }, `${width}x${height}`);
  }
});

test('preprocess writes into a given slice of a batch buffer, and refuses one of the wrong size', async () => {
  const img = await loadImage(repoPath('test/fixtures/tiny-paligemma-224/wide.jpg'));
  const plane = 3 * 224 * 224;
  const batch = new Float32Array(2 * plane).fill(-9);
  const returned = preprocess(img, SIGLIP, batch.subarray(plane));
  assert.equal(returned.buffer, batch.buffer);
  assert.ok(
    batch.subarray(0, plane).every((v) => v === -9),
    'the first slot is untouched',
  );
  assert.deepEqual(batch.subarray(plane), preprocess(img, SIGLIP));
  assert.throws(() => preprocess(img, SIGLIP, new Float32Array(plane - 1)), { code: 'invalid-params' });
});
