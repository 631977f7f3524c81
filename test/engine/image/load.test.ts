import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { loadImage } from '../../../daemon/engine/image/load.js';
import { imageInput, imageReference, maxAbsDiff, readRgb, repoPath } from './fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'paligemma-image-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

// Each opaque input decodes to what transformers' processor sees: PIL's
// Image.open(path).convert("RGB") (palette expanded, PIL's CMYK formula), first frame of animations.
const PIL_PARITY: [string, string][] = [
  ['gray.png', '8-bit grey'],
  ['rgb16.png', '16-bit RGB (PIL keeps the high byte)'],
  ['cmyk.jpg', 'Adobe CMYK JPEG'],
  ['anim.webp', 'animated WebP, first frame'],
  ['p3.jpg', 'JPEG with a Display P3 profile: no colour management'],
  ['progressive.jpg', 'progressive JPEG'],
  ['444.jpg', 'JPEG without chroma subsampling'],
  ['gray.jpg', 'greyscale JPEG'],
  ['interlaced.png', 'interlaced PNG'],
  ['bilevel.png', '1-bit palette PNG'],
  ['lzw.tiff', 'LZW TIFF'],
  ['lossy.webp', 'lossy WebP'],
  ['cmyk.tiff', 'CMYK TIFF'],
];

for (const [name, what] of PIL_PARITY) {
  test(`decodes ${name} (${what}) exactly like PIL`, async () => {
    const img = await loadImage(imageInput(name));
    const ref = await readRgb(imageReference(`${name}.rgb.png`));
    assert.deepEqual([img.width, img.height], [ref.width, ref.height]);
    assert.equal(img.rgb.length, img.width * img.height * 3);
    assert.equal(maxAbsDiff(img.rgb, ref.rgb), 0);
  });
}

// Inputs with transparency: PIL's colours (its references drop alpha) composited onto white with
// the input's own alpha, so opaque pixels are PIL's exactly and transparent ones white.
const FLATTENED: [string, string][] = [
  ['rgba.png', 'RGBA'],
  ['graya.png', 'grey + alpha'],
  ['palette.png', 'palette with a transparent index'],
  ['rgba16.png', '16-bit RGBA PNG'],
  ['anim.gif', 'animated GIF, first frame'],
  ['transparent.gif', 'GIF with a transparent index'],
];

for (const [name, what] of FLATTENED) {
  test(`flattens ${name} (${what}) onto white`, async () => {
    const img = await loadImage(imageInput(name));
    const ref = await readRgb(imageReference(`${name}.rgb.png`));
    const { data: alpha, info } = await sharp(imageInput(name), { page: 0, pages: 1 })
      .ensureAlpha()
      .extractChannel(3)
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    assert.deepEqual([img.width, img.height], [ref.width, ref.height]);
    assert.deepEqual([info.width, info.height], [ref.width, ref.height]);
    let partial = 0;
    let transparent = 0;
    for (let p = 0; p < info.width * info.height; p++) {
      const a = alpha[p] / 255;
      if (a > 0 && a < 1) partial++;
      if (a === 0) transparent++;
      for (let c = 0; c < 3; c++) {
        const expected = ref.rgb[p * 3 + c] * a + 255 * (1 - a);
        const got = img.rgb[p * 3 + c];
        // Exact where opaque or fully transparent; partial alpha rounds once (twice for 16 bits, whose
        // colour and alpha are both cut to their high byte on the way to 8 bits).
        const tolerance = a === 0 || a === 1 ? 0 : name.includes('16') ? 2.5 : 1.5;
        if (Math.abs(got - expected) > tolerance) assert.fail(`pixel ${p} channel ${c}: ${got}, expected ${expected.toFixed(1)} (alpha ${alpha[p]})`);
      }
    }
    if (name !== 'anim.gif') assert.ok(partial + transparent > 0, 'the fixture has transparent pixels');
  });
}

test('a dark logo on a transparent background is seen on white, not as a black square', async () => {
  // Black strokes, and transparent pixels whose (invisible) colour is black too, as editors save them.
  const rgba = Buffer.alloc(8 * 8 * 4);
  for (let x = 0; x < 8; x++) rgba[(3 * 8 + x) * 4 + 3] = 255; // one opaque black row
  const img = await loadImage(
    await sharp(rgba, { raw: { width: 8, height: 8, channels: 4 } })
      .png()
      .toBuffer(),
  );
  assert.deepEqual([...img.rgb.subarray(0, 3)], [255, 255, 255], 'transparent pixels are white');
  assert.deepEqual([...img.rgb.subarray(3 * 8 * 3, 3 * 8 * 3 + 3)], [0, 0, 0], 'the stroke stays black');
});

const SVG = (attrs: string, body: string) => `<svg xmlns="http://www.w3.org/2000/svg" ${attrs}>${body}</svg>`;

test('an SVG is rasterised on white at the requested short side, keeping its aspect', async () => {
  writeFileSync(join(tmp, 'icon.svg'), SVG('width="20" height="10"', '<rect x="10" y="0" width="10" height="10" fill="#ff0000"/>'));
  const img = await loadImage(join(tmp, 'icon.svg'), { svgSize: 224 });
  assert.deepEqual([img.width, img.height], [448, 224]);
  const at = (x: number, y: number) => [...img.rgb.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3)];
  assert.deepEqual(at(100, 112), [255, 255, 255], 'the transparent half is white');
  assert.deepEqual(at(340, 112), [255, 0, 0], 'the red rectangle');
  const big = await loadImage(Buffer.from(SVG('viewBox="0 0 30 60"', '<circle cx="15" cy="30" r="10"/>')));
  assert.deepEqual([big.width, big.height], [896, 1792], 'by default at 896 on the short side (the largest PaliGemma input)');
});

test('a broken SVG is damaged, an SVG too large to render is refused from its size', async () => {
  await rejects(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect'), 'corrupt-image', /damaged or truncated|not an image/);
  await rejects(Buffer.from(SVG('width="10" height="1000"', '')), 'too-many-pixels', /896x89600/);
});

test('applies every EXIF orientation like transformers.image_utils.load_image', async () => {
  for (const [name, orientation, size] of [
    ['exif2.png', 2, [24, 16]],
    ['exif3.png', 3, [24, 16]],
    ['exif4.png', 4, [24, 16]],
    ['exif5.png', 5, [16, 24]],
    ['exif6.jpg', 6, [40, 64]],
    ['exif7.png', 7, [16, 24]],
    ['exif8.png', 8, [16, 24]],
  ] as const) {
    const meta = await sharp(imageInput(name)).metadata();
    assert.equal(meta.orientation, orientation);
    const img = await loadImage(imageInput(name));
    const ref = await readRgb(imageReference(`${name}.exif.rgb.png`));
    assert.deepEqual([img.width, img.height], size, name);
    assert.deepEqual([ref.width, ref.height], size, name);
    assert.equal(maxAbsDiff(img.rgb, ref.rgb), 0, name);
  }
});

test('16-bit grey keeps its content (PIL would clip it to white; we scale to 8 bits)', async () => {
  // gray16.png was written from the 8-bit pattern (x * 5 + y * 3) & 255 widened to 16 bits
  const img = await loadImage(imageInput('gray16.png'));
  assert.deepEqual([img.width, img.height], [50, 40]);
  for (let y = 0; y < 40; y++) {
    for (let x = 0; x < 50; x++) {
      const v = (x * 5 + y * 3) & 255;
      const p = (y * 50 + x) * 3;
      assert.deepEqual([img.rgb[p], img.rgb[p + 1], img.rgb[p + 2]], [v, v, v], `pixel ${x},${y}`);
    }
  }
});

test('takes a Buffer or a Uint8Array as well as a path', async () => {
  const bytes = readFileSync(repoPath('test/fixtures/tiny-paligemma-224/shapes.png'));
  const a = await loadImage(bytes);
  const b = await loadImage(new Uint8Array(bytes));
  const c = await loadImage(repoPath('test/fixtures/tiny-paligemma-224/shapes.png'));
  assert.deepEqual([a.width, a.height], [224, 224]);
  assert.equal(maxAbsDiff(a.rgb, c.rgb), 0);
  assert.equal(maxAbsDiff(b.rgb, c.rgb), 0);
  await assert.rejects(loadImage(undefined as unknown as string), { code: 'invalid-params' });
  await assert.rejects(loadImage({ path: 'x.png' } as unknown as string), { code: 'invalid-params' });
});

/** A PNG whose header claims `width` x `height` with a tiny (wrong) body. */
function pngHeader(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, no interlace
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(64))), chunk('IEND', Buffer.alloc(0))]);
}

async function rejects(input: string | Buffer, code: string, message: RegExp, opts?: { maxPixels?: number; maxBytes?: number }) {
  await assert.rejects(loadImage(input, opts), (e: Error & { code?: string }) => {
    assert.equal(e.name, 'EngineError');
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
}

test('a missing path is not-found, a directory is not-a-file, an empty file is empty-file', async () => {
  await rejects(join(tmp, 'nope.png'), 'not-found', /no such file/);
  await rejects(join(tmp, 'nope', 'deeper.png'), 'not-found', /no such file/);
  mkdirSync(join(tmp, 'folder.png'));
  await rejects(join(tmp, 'folder.png'), 'not-a-file', /directory/);
  writeFileSync(join(tmp, 'empty.png'), '');
  await rejects(join(tmp, 'empty.png'), 'empty-file', /empty/);
  await rejects(Buffer.alloc(0), 'empty-file', /empty/);
});

test('a text file renamed .png is unsupported-image, named in the message', async () => {
  writeFileSync(join(tmp, 'notes.png'), 'just some text, not an image\n'.repeat(10));
  await rejects(join(tmp, 'notes.png'), 'unsupported-image', /notes\.png is not an image/);
  await rejects(Buffer.from('%PDF-1.4\n'.repeat(20)), 'unsupported-image', /not an image/);
});

test('truncated JPEG and PNG files are corrupt-image, not grey-padded pictures', async () => {
  const jpeg = readFileSync(repoPath('test/fixtures/tiny-paligemma-224/wide.jpg'));
  writeFileSync(join(tmp, 'cut.jpg'), jpeg.subarray(0, Math.floor(jpeg.length / 2)));
  await rejects(join(tmp, 'cut.jpg'), 'corrupt-image', /damaged or truncated/);
  const png = readFileSync(imageInput('noise-301x187.png'));
  writeFileSync(join(tmp, 'cut.png'), png.subarray(0, Math.floor(png.length / 2)));
  await rejects(join(tmp, 'cut.png'), 'corrupt-image', /damaged or truncated/);
  // a flipped byte inside the compressed PNG data
  const bad = Buffer.from(png);
  bad[Math.floor(bad.length / 2)] ^= 0xff;
  await rejects(bad, 'corrupt-image', /damaged or truncated/);
});

test('a PNG header claiming 100000x100000 is refused from the header, without decoding', async () => {
  const file = join(tmp, 'bomb.png');
  writeFileSync(file, pngHeader(100000, 100000));
  // this message comes from the header check (decoding would fail differently, if at all)
  await rejects(file, 'too-many-pixels', /100000x100000 is 10000\.0 megapixels, more than the limit of 50\.0 megapixels/);
  // and a limit of the caller's choosing
  await rejects(imageInput('gray.png'), 'too-many-pixels', /50x40 is 2000 pixels, more than the limit of 1999 pixels/, { maxPixels: 1999 });
  assert.equal((await loadImage(imageInput('gray.png'), { maxPixels: 2000 })).width, 50);
});

test('files over maxBytes are file-too-large', async () => {
  await rejects(imageInput('noise-301x187.png'), 'file-too-large', /is \d+\.\d kB, more than the limit of 1\.0 kB/, { maxBytes: 1000 });
  await rejects(readFileSync(imageInput('noise-301x187.png')), 'file-too-large', /limit/, { maxBytes: 1000 });
});
