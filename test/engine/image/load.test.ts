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

// Each input decodes to what transformers' processor sees: PIL's Image.open(path).convert("RGB")
// (alpha dropped, palette expanded, PIL's CMYK formula), first frame of animations.
const PIL_PARITY: [string, string][] = [
  ['rgba.png', 'RGBA: alpha is dropped, not composited'],
  ['gray.png', '8-bit grey'],
  ['graya.png', 'grey + alpha'],
  ['rgb16.png', '16-bit RGB (PIL keeps the high byte)'],
  ['palette.png', 'palette with a transparent index'],
  ['cmyk.jpg', 'Adobe CMYK JPEG'],
  ['anim.gif', 'animated GIF, first frame'],
  ['anim.webp', 'animated WebP, first frame'],
  ['transparent.gif', 'GIF with a transparent index: PIL shows its palette colour'],
  ['p3.jpg', 'JPEG with a Display P3 profile: no colour management'],
  ['progressive.jpg', 'progressive JPEG'],
  ['444.jpg', 'JPEG without chroma subsampling'],
  ['gray.jpg', 'greyscale JPEG'],
  ['interlaced.png', 'interlaced PNG'],
  ['bilevel.png', '1-bit palette PNG'],
  ['lzw.tiff', 'LZW TIFF'],
  ['lossy.webp', 'lossy WebP'],
  ['cmyk.tiff', 'CMYK TIFF'],
  ['rgba16.png', '16-bit RGBA PNG'],
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

test('a text file renamed .png and an SVG are unsupported-image', async () => {
  writeFileSync(join(tmp, 'notes.png'), 'just some text, not an image\n'.repeat(10));
  await rejects(join(tmp, 'notes.png'), 'unsupported-image', /not an image/);
  writeFileSync(join(tmp, 'icon.svg'), '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
  await rejects(join(tmp, 'icon.svg'), 'unsupported-image', /svg images are not supported/);
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
  await rejects(imageInput('noise-301x187.png'), 'file-too-large', /limit of 1000 bytes/, { maxBytes: 1000 });
  await rejects(readFileSync(imageInput('noise-301x187.png')), 'file-too-large', /limit/, { maxBytes: 1000 });
});
