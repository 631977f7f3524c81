// The inspector webview on its own in Chromium: the bundled script (dist/webview.js) in the page the
// extension builds (extension/inspector/html.ts, same CSP), with a stand-in for VS Code's webview API.
// It checks what the full VS Code run cannot reach with a random-weight model: segmentation masks
// drawn pixel for pixel, state restored without the host, errors shown, and no CSP violation.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { build } from 'esbuild';
import * as h from './harness.mjs';

const IMAGE = join(h.FIXTURES, 'tiny-paligemma-224', 'wide.jpg'); // 640 x 360

let server;
let origin;
let context;
let tmp;

/** The extension's page builder, compiled on the fly so this test needs no tsc run. */
async function loadHtmlBuilder() {
  const out = await build({ entryPoints: [join(h.ROOT, 'extension/inspector/html.ts')], bundle: true, platform: 'node', format: 'esm', write: false });
  return import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0].text).toString('base64')}`);
}

/** Stands in for acquireVsCodeApi(): records posted messages and the saved state in window globals. */
const FAKE_API = `
window.__posted = [];
window.__state = JSON.parse(sessionStorage.getItem('state') || 'null');
window.acquireVsCodeApi = () => ({
  postMessage: (m) => window.__posted.push(m),
  getState: () => window.__state,
  setState: (s) => { window.__state = s; sessionStorage.setItem('state', JSON.stringify(s)); },
});
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));
`;

before(async () => {
  h.requireInstalled();
  tmp = h.makeTempRoot();
  const { inspectorHtml } = await loadHtmlBuilder();
  server = createServer((req, res) => {
    const send = (type, body) => {
      res.writeHead(200, { 'content-type': type });
      res.end(body);
    };
    if (req.url === '/') {
      const nonce = 'test-nonce-' + Math.random().toString(36).slice(2);
      const html = inspectorHtml({ cspSource: origin, scriptUri: `${origin}/webview.js`, styleUri: `${origin}/inspector.css`, nonce });
      send('text/html', html.replace(`<script nonce="${nonce}"`, `<script nonce="${nonce}">${FAKE_API}</script><script nonce="${nonce}"`));
    } else if (req.url === '/webview.js') send('text/javascript', readFileSync(join(h.ROOT, 'dist', 'webview.js')));
    else if (req.url === '/inspector.css') send('text/css', readFileSync(join(h.ROOT, 'media', 'inspector.css')));
    else if (req.url === '/wide.jpg') send('image/jpeg', readFileSync(IMAGE));
    else {
      res.writeHead(404);
      res.end();
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  origin = `http://127.0.0.1:${server.address().port}`;
  context = await h.launchBrowser(tmp);
});

after(async () => {
  await context?.close().catch(() => undefined);
  server?.close();
  if (tmp) h.removeTemp(tmp);
});

const hostSays = (page, message) => page.evaluate((m) => window.postMessage(m, '*'), message);
const posted = (page) => page.evaluate(() => window.__posted);

async function waitForPosted(page, predicate) {
  for (let i = 0; i < 100; i++) {
    const found = (await posted(page)).find(predicate);
    if (found) return found;
    await page.waitForTimeout(50);
  }
  throw new Error(`the webview never posted the expected message; it posted ${JSON.stringify(await posted(page))}`);
}

/** A disc of radius r centred in a w x h mask, as the protocol's RLE (alternating runs, 0s first). */
function discMask(w, h, r) {
  const rle = [];
  let value = 0;
  let run = 0;
  let area = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const on = (x + 0.5 - w / 2) ** 2 + (y + 0.5 - h / 2) ** 2 <= r * r ? 1 : 0;
      area += on;
      if (on === value) run++;
      else {
        rle.push(run);
        value = on;
        run = 1;
      }
    }
  }
  rle.push(run);
  return { mask: { width: w, height: h, rle }, area };
}

const image = { source: { kind: 'uri', uri: 'file:///workspace/wide.jpg', name: 'wide.jpg' }, src: '/wide.jpg' };
const meta = { model: 'tiny-paligemma-224', ms: 42, cached: false };

describe('inspector webview', () => {
  test('draws segmentation masks pixel for pixel inside their boxes, and restores them from its state', async () => {
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(origin);
    await waitForPosted(page, (m) => m.type === 'ready');
    await hostSays(page, { type: 'image', image });
    await page.locator('#stage:not([hidden]) #image').waitFor();
    await page.waitForFunction(() => document.getElementById('image').naturalWidth === 640);

    await page.locator('#objects-query input').fill('red square');
    await page.locator('#segment').click();
    const run = await waitForPosted(page, (m) => m.type === 'run');
    assert.deepEqual(run.task, { kind: 'segment', object: 'red square' });
    assert.ok(await page.locator('#busy:not([hidden])').isVisible(), 'busy while the request runs');

    const { mask, area } = discMask(160, 90, 40);
    const box = { x0: 320, y0: 180, x1: 480, y1: 270 }; // the lower-right quarter's upper-left part
    await hostSays(page, {
      type: 'result',
      requestId: run.requestId,
      result: { kind: 'segment', query: ['red square'], objects: [{ label: 'red square', box, mask }], meta },
    });
    const drawn = page.locator('#overlay .box');
    await drawn.first().waitFor();
    assert.equal(await drawn.count(), 1);
    assert.equal(await drawn.getAttribute('data-label'), 'red square');
    assert.equal(await drawn.getAttribute('data-mask-pixels'), String(area));
    assert.ok(await page.locator('#busy').isHidden(), 'not busy once answered');

    const geometry = await page.evaluate(() => {
      const img = document.getElementById('image').getBoundingClientRect();
      const el = document.querySelector('#overlay .box').getBoundingClientRect();
      const canvas = document.querySelector('#overlay .box canvas.mask');
      const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let on = 0;
      for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) on++;
      return {
        left: (el.left - img.left) / img.width,
        top: (el.top - img.top) / img.height,
        width: el.width / img.width,
        height: el.height / img.height,
        canvas: [canvas.width, canvas.height],
        on,
        centre: pixels[(45 * canvas.width + 80) * 4 + 3],
        corner: pixels[3],
      };
    });
    const near = (a, b) => Math.abs(a - b) < 0.01;
    assert.ok(near(geometry.left, 0.5) && near(geometry.top, 0.5), `box at the image's centre: ${JSON.stringify(geometry)}`);
    assert.ok(near(geometry.width, 0.25) && near(geometry.height, 0.25), `box a quarter of the image wide and high: ${JSON.stringify(geometry)}`);
    assert.deepEqual(geometry.canvas, [160, 90], 'the mask canvas has the mask own size');
    assert.equal(geometry.on, area, 'every mask pixel is painted, and no other');
    assert.ok(geometry.centre > 0 && geometry.corner === 0, 'the disc is painted at its centre, not in the corner');
    await h.screenshot(page, 'webview-segment-mask');

    // A reload of the webview (VS Code does this when a hidden panel comes back) keeps the result.
    await page.reload();
    await waitForPosted(page, (m) => m.type === 'ready');
    await page.locator('#overlay .box canvas.mask').waitFor();
    assert.equal(await page.locator('#overlay .box').getAttribute('data-mask-pixels'), String(area));
    assert.equal(await page.locator('#objects-query input').inputValue(), 'red square');
    assert.deepEqual(await page.evaluate(() => window.__cspViolations), [], 'no CSP violation');
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('shows the caption, the text with a copy button, answers and errors', async () => {
    const page = await context.newPage();
    await page.goto(origin);
    await page.evaluate(() => sessionStorage.clear());
    await page.reload();
    await waitForPosted(page, (m) => m.type === 'ready');
    await hostSays(page, { type: 'image', image: { ...image, source: { ...image.source, uri: 'file:///workspace/other.jpg' } } });
    await page.locator('#stage:not([hidden])').waitFor();

    await page.locator('#extract').click();
    const ocr = await waitForPosted(page, (m) => m.type === 'run' && m.task.kind === 'ocr');
    await hostSays(page, { type: 'partial', requestId: ocr.requestId, text: 'TOTAL' });
    await page.locator('#ocr.streaming', { hasText: 'TOTAL' }).waitFor();
    await hostSays(page, { type: 'result', requestId: ocr.requestId, result: { kind: 'ocr', text: 'TOTAL 42.00\nVAT 8.00', meta } });
    await page.locator('#ocr:not(.streaming)', { hasText: 'VAT 8.00' }).waitFor();
    await page.locator('#copy-ocr').click();
    const copy = await waitForPosted(page, (m) => m.type === 'copy');
    assert.equal(copy.text, 'TOTAL 42.00\nVAT 8.00');

    await page.locator('#question input').fill('what is the total?');
    await page.locator('#question input').press('Enter');
    const ask = await waitForPosted(page, (m) => m.type === 'run' && m.task.kind === 'answer');
    assert.equal(ask.task.question, 'what is the total?');
    await hostSays(page, { type: 'result', requestId: ask.requestId, result: { kind: 'answer', question: 'what is the total?', text: '42', meta } });
    await page.locator('#answers li', { hasText: '42' }).waitFor();

    await page.locator('#describe').click();
    const cap = await waitForPosted(page, (m) => m.type === 'run' && m.task.kind === 'caption');
    await hostSays(page, { type: 'error', requestId: cap.requestId, message: 'Describe failed: wide.jpg: corrupt JPEG data' });
    await page.locator('#error:not([hidden])', { hasText: 'corrupt JPEG data' }).waitFor();
    assert.ok(await page.locator('#busy').isHidden());

    // Detect with nothing typed says what to do and asks the host nothing.
    const before = (await posted(page)).length;
    await page.locator('#objects-query input').fill('  ');
    await page.locator('#detect').click();
    await page.locator('#error', { hasText: 'Type what to detect' }).waitFor();
    assert.equal((await posted(page)).length, before);
    await h.screenshot(page, 'webview-text-answers-error');
    await page.close();
  });
});
