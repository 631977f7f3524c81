import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanText, parseDetections, parseSegments, type Detection } from '../../../daemon/engine/text/parse.js';
import { golden, MODELS, rng } from './fixtures.js';

const loc = (v: number) => `<loc${String(v).padStart(4, '0')}>`;
const seg = (v: number) => `<seg${String(v).padStart(3, '0')}>`;

function assertInside(objects: readonly Detection[], width: number, height: number, context: string) {
  for (const o of objects) {
    const { x0, y0, x1, y1 } = o.box;
    assert.ok([x0, y0, x1, y1].every(Number.isFinite), context);
    assert.ok(0 <= x0 && x0 <= x1 && x1 <= width, `${context}: x ${x0}..${x1} of ${width}`);
    assert.ok(0 <= y0 && y0 <= y1 && y1 <= height, `${context}: y ${y0}..${y1} of ${height}`);
    assert.equal(typeof o.label, 'string');
    assert.ok(!/<(loc|seg)\d+>/.test(o.label), `${context}: label ${o.label}`);
  }
}

test('detections: y/x order, value / 1024 of the original size, labels, " ; " separators', () => {
  const raw = `${loc(100)}${loc(200)}${loc(300)}${loc(400)} red square ; ${loc(512)}${loc(0)}${loc(1023)}${loc(1023)} cat<eos>`;
  assert.deepEqual(parseDetections(raw, 640, 360), [
    { label: 'red square', box: { x0: (200 / 1024) * 640, y0: (100 / 1024) * 360, x1: (400 / 1024) * 640, y1: (300 / 1024) * 360 } },
    { label: 'cat', box: { x0: 0, y0: 180, x1: (1023 / 1024) * 640, y1: (1023 / 1024) * 360 } },
  ]);
  // corners given in the wrong order are normalised; spaces between tokens (as HF decodes them) are fine
  assert.deepEqual(parseDetections(` ${loc(800)} ${loc(900)} ${loc(200)} ${loc(100)} dog`, 1024, 1024), [{ label: 'dog', box: { x0: 100, y0: 200, x1: 900, y1: 800 } }]);
});

test('segments: box, 16 codes and label; loc values kept for the mask decoder', () => {
  const codes = Array.from({ length: 16 }, (_, i) => (i * 37) % 128);
  const raw = `${loc(10)}${loc(20)}${loc(530)}${loc(1000)}${codes.map(seg).join('')} circle ; ${loc(1)}${loc(2)}${loc(3)}${loc(4)}${seg(5)} broken ; ${loc(0)}${loc(0)}${loc(512)}${loc(512)} ${codes.map(seg).join(' ')} square`;
  assert.deepEqual(parseSegments(raw, 2048, 1024), [
    { label: 'circle', box: { x0: 40, y0: 10, x1: 2000, y1: 530 }, loc: [10, 20, 530, 1000], codes },
    { label: 'square', box: { x0: 0, y0: 0, x1: 1024, y1: 512 }, loc: [0, 0, 512, 512], codes },
  ]);
  // a code outside the 128-entry codebook makes the group malformed
  assert.deepEqual(parseSegments(`${loc(1)}${loc(2)}${loc(3)}${loc(4)}${[...codes.slice(0, 15), 200].map(seg).join('')} x`, 10, 10), []);
});

for (const model of MODELS) {
  test(`parsers survive every golden output of ${model} (random weights: mixed words, locs and segs)`, () => {
    for (const c of golden(model).cases) {
      for (const text of [c.generated_text, c.generated_text_raw]) {
        for (const [w, h] of [
          [640, 360],
          [224, 224],
          [1, 1],
        ]) {
          const dets = parseDetections(text, w, h);
          assertInside(dets, w, h, `${c.image} ${c.prompt}`);
          // every parsed detection is a run of four loc tokens in the text
          const groups = text.match(/(?:<loc\d{4}>\s*){4}/g) ?? [];
          assert.ok(dets.length <= groups.length);
          const segs = parseSegments(text, w, h);
          assertInside(segs, w, h, `${c.image} ${c.prompt}`);
          for (const s of segs) assert.ok(s.codes.length === 16 && s.codes.every((v) => v >= 0 && v < 128));
        }
      }
      assert.ok(!/<(loc|seg)\d+>/.test(cleanText(c.generated_text)));
    }
  });
}

test('a golden output with one full loc group parses to that box and its label', () => {
  // tiny-paligemma-224, shapes.png, "answer en what color is the circle?"
  const c = golden('tiny-paligemma-224').cases.find((k) => k.image === 'shapes.png' && k.prompt.startsWith('answer'))!;
  assert.match(c.generated_text_raw, /<loc0438> <loc0703> <loc0641> <loc0815>di <loc0194>/);
  assert.deepEqual(parseDetections(c.generated_text_raw, 224, 224), [
    { label: 'di', box: { x0: (703 / 1024) * 224, y0: (438 / 1024) * 224, x1: (815 / 1024) * 224, y1: (641 / 1024) * 224 } },
  ]);
});

test('fuzz: random token soup never throws and never yields a box outside the image', () => {
  const next = rng(20261122);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)];
  const pieces = [
    () => loc(Math.floor(next() * 1024)),
    () => `<loc${Math.floor(next() * 100000)}>`,
    () => seg(Math.floor(next() * 128)),
    () => `<seg${Math.floor(next() * 1000)}>`,
    () => pick([' ; ', ';', ' ', '  ', '\n', '<eos>', '<pad>', '<image>', '<loc', '<seg12', 'loc0001>', '<', '>', '\uFFFD', '😀', 'cat', 'red car', 'ünï', '$&', '\\1', '(', '[']),
  ];
  let parsedDetections = 0;
  let parsedSegments = 0;
  for (let i = 0; i < 3000; i++) {
    let raw = '';
    const n = Math.floor(next() * 60);
    for (let k = 0; k < n; k++) raw += pick(pieces)();
    const w = 1 + Math.floor(next() * 5000);
    const h = 1 + Math.floor(next() * 5000);
    const dets = parseDetections(raw, w, h);
    const segs = parseSegments(raw, w, h);
    assertInside(dets, w, h, JSON.stringify(raw));
    assertInside(segs, w, h, JSON.stringify(raw));
    parsedDetections += dets.length;
    parsedSegments += segs.length;
    cleanText(raw);
  }
  assert.ok(parsedDetections > 100, `the fuzz produced parseable groups too (${parsedDetections})`);
  assert.ok(parsedSegments >= 0);
});

test('fuzz: well-formed answers round-trip exactly', () => {
  const next = rng(7);
  for (let i = 0; i < 200; i++) {
    const w = 1 + Math.floor(next() * 4000);
    const h = 1 + Math.floor(next() * 4000);
    const objects = Array.from({ length: 1 + Math.floor(next() * 5) }, (_, k) => {
      const v = () => Math.floor(next() * 1024);
      const [ya, yb, xa, xb] = [v(), v(), v(), v()];
      return {
        loc: [Math.min(ya, yb), Math.min(xa, xb), Math.max(ya, yb), Math.max(xa, xb)],
        codes: Array.from({ length: 16 }, () => Math.floor(next() * 128)),
        label: `object ${k}`,
      };
    });
    const detRaw = objects.map((o) => `${o.loc.map(loc).join('')} ${o.label}`).join(' ; ');
    const segRaw = objects.map((o) => `${o.loc.map(loc).join('')}${o.codes.map(seg).join('')} ${o.label}`).join(' ; ');
    const boxes = objects.map((o) => ({ x0: (o.loc[1] / 1024) * w, y0: (o.loc[0] / 1024) * h, x1: (o.loc[3] / 1024) * w, y1: (o.loc[2] / 1024) * h }));
    assert.deepEqual(
      parseDetections(detRaw, w, h),
      objects.map((o, k) => ({ label: o.label, box: boxes[k] })),
    );
    assert.deepEqual(
      parseSegments(segRaw, w, h),
      objects.map((o, k) => ({ label: o.label, box: boxes[k], loc: o.loc, codes: o.codes })),
    );
  }
});

test('text cleanup drops loc/seg/control tokens and blanks around them', () => {
  assert.equal(cleanText('  a cat <loc0001> <loc0002>on a mat<eos>  '), 'a cat on a mat');
  assert.equal(cleanText('<seg001>'), '');
  assert.equal(cleanText('HELLO WORLD 42'), 'HELLO WORLD 42');
  assert.equal(cleanText('line one\nline two'), 'line one\nline two');
});

test('an invalid image size is invalid-params (the text itself never throws)', () => {
  assert.throws(() => parseDetections('', 0, 10), { code: 'invalid-params' });
  assert.throws(() => parseSegments('', 10, Number.NaN), { code: 'invalid-params' });
  assert.deepEqual(parseDetections(undefined as unknown as string, 10, 10), []);
});
