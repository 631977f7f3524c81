// End-to-end tests in a real VS Code (code-server) with the packaged .vsix installed and the tiny
// converted PaliGemma model, driven through the UI by Playwright. Run with `npm run test:e2e`
// (installs what it needs, packages, then runs this file). Screenshots: test-results/e2e/.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as h from './harness.mjs';

const MODEL_FIXTURE = join(h.FIXTURES, 'tiny-paligemma-224');
/** The query the inspector test detects; chosen because the tiny model answers it with boxes on wide.jpg. */
const DETECT_IMAGE = 'wide.jpg';
const DETECT_QUERY = 'red square';
/** The segment scenario's image and object; the daemon holds the answer to the segment grammar, so it has a mask. */
const SEGMENT_IMAGE = 'shapes.png';
const SEGMENT_QUERY = 'circle';
/** The tiny VQ-VAE mask decoder (random weights), converted into the model folder as vae.onnx. */
const VAE_FIXTURE = join(h.FIXTURES, 'tiny-vae', 'vae-tiny.npz');
const NOTES = 'notes.md';
/** Line 3 has an image with alt text (hovered), line 5 one without (diagnosed and fixed). */
const NOTES_TEXT = '# Fixture notes\n\n![Shapes](images/shapes.png)\n\nA chart:\n![](images/wide.jpg)\n';
const MISSING_ALT_LINE = 6;

/** The workspace sets these, and the CLI reference runs are given the same. */
const MAX_TOKENS = '64';
const LANGUAGE = 'en';
/** paligemma.hover.thumbnailWidth: small, so the caption and text stay inside the hover for the screenshot. */
const THUMBNAIL_WIDTH = 64;

let tmp;
let workspace;
let modelDir;
let server;
let browser;
let page;
const consoleErrors = [];

const cli = h.daemonCli(() => ({ tmp, modelDir, cwd: workspace }));

/** Where the daemon that the extension starts listens (code-server's environment names it). */
const extensionRuntimeDir = () => join(tmp, 'runtime', 'paligemma');

before(async () => {
  h.requireInstalled();
  tmp = h.makeTempRoot();
  workspace = join(tmp, 'workspace');
  modelDir = join(tmp, 'model');
  h.log(`temp root ${tmp}`);
  cli(['convert', MODEL_FIXTURE, modelDir]);
  cli(['convert-vae', VAE_FIXTURE, join(modelDir, 'vae.onnx')]);
  for (const f of ['shapes.png', 'gradient.png', 'wide.jpg']) h.copyFixture(join(MODEL_FIXTURE, f), join(workspace, 'images', f));
  writeFileSync(join(workspace, NOTES), NOTES_TEXT);
  h.installExtension(tmp);
  h.writeUserSettings(tmp, { 'workbench.secondarySideBar.defaultVisibility': 'hidden' });
  h.writeJson(join(workspace, '.vscode', 'settings.json'), {
    'paligemma.modelPath': modelDir,
    'paligemma.executionProvider': 'cpu',
    'paligemma.maxNewTokens': Number(MAX_TOKENS),
    'paligemma.captionLanguage': LANGUAGE,
    // Hovers run the model themselves (the workspace is trusted: code-server runs with trust disabled).
    'paligemma.hover.describeOnHover': true,
    'paligemma.hover.thumbnailWidth': THUMBNAIL_WIDTH,
  });
  server = await h.startCodeServer(tmp, workspace, {
    // The daemon the extension starts inherits these: a private socket and the tiny model.
    PALIGEMMA_RUNTIME_DIR: extensionRuntimeDir(),
    PALIGEMMA_MODEL: modelDir,
  });
  browser = await h.launchBrowser(tmp);
  page = await h.openWorkbench(browser, server.url, workspace);
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) consoleErrors.push(m.text());
  });
});

after(() => h.tearDown(tmp, { browser, server, stopDaemon: (dir) => cli(['stop'], dir) }));

/** The daemon's caption of a workspace image, through the CLI with the workspace's settings. */
const cliCaption = (image) => cli.text(['caption', join('images', image), '--lang', LANGUAGE, '--max-tokens', MAX_TOKENS]);

const cliOcr = (image) => cli.text(['ocr', join('images', image), '--max-tokens', MAX_TOKENS]);

/** A test that leaves a screenshot of the workbench behind when it fails. */
function e2eTest(name, fn) {
  test(name, async () => {
    try {
      await fn();
    } catch (err) {
      if (page) await h.screenshot(page, `FAILED-${name.slice(0, 3).replace(/\W/g, '')}-${Date.now()}`).catch(() => undefined);
      throw err;
    }
  });
}

const squash = (s) => s.replace(/\s+/g, ' ').trim();

/** Puts the cursor at line:column through Go to Line. */
async function goTo(line, column) {
  await h.focusWorkbench(page);
  await page.keyboard.press('Control+G');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor();
  await input.fill(`:${line}:${column}`);
  await input.press('Enter');
}

describe('PaliGemma in VS Code', () => {
  e2eTest('(a) Describe Image on a fixture image shows its caption', async () => {
    const caption = cliCaption('shapes.png');
    await h.openFile(page, 'shapes.png');
    await h.runCommand(page, h.commandTitle('paligemma.describeImage'));
    // The result toast (not the "Describing shapes.png: …" progress one).
    const toast = page.locator('.notifications-toasts .notification-list-item-message', { hasText: /^shapes\.png: / });
    await toast.waitFor({ timeout: 120_000 });
    const message = squash(await toast.innerText());
    assert.equal(message, squash(`shapes.png: ${caption}`));
    await h.screenshot(page, 'a-describe-image');
    await page.keyboard.press('Escape');
    await page
      .locator('.notifications-toasts .notification-toast')
      .first()
      .waitFor({ state: 'hidden', timeout: 5000 })
      .catch(() => undefined);
  });

  e2eTest('(b) hovering a Markdown image link shows its caption and the text in it', async () => {
    const caption = cliCaption('shapes.png');
    const text = cliOcr('shapes.png');
    await h.openFile(page, NOTES);
    await goTo(3, 14);
    await h.runCommand(page, 'Show or Focus Hover');
    const hover = page.locator('.monaco-hover:visible', { hasText: 'Text in the image' });
    await hover.waitFor({ timeout: 120_000 });
    const shown = squash(await hover.innerText());
    assert.ok(shown.includes(squash(caption)), `the hover shows the caption ${JSON.stringify(caption)}; it shows ${JSON.stringify(shown)}`);
    assert.ok(shown.includes(`Text in the image: “${squash(text)}”`), `the hover shows the text ${JSON.stringify(text)}; it shows ${JSON.stringify(shown)}`);
    // Our part of the hover (VS Code's own Markdown image preview is another row): its thumbnail
    // must really load. A src the workbench cannot fetch (a raw file: URI in a web or remote
    // window) leaves a 0x0 broken image behind, which a mere count of <img> elements misses.
    const thumbnail = hover.locator('.hover-row', { hasText: 'Text in the image' }).locator('img');
    assert.equal(await thumbnail.count(), 1, 'our hover part shows one thumbnail');
    const loaded = await thumbnail.evaluate((img) =>
      img.decode().then(
        () => ({ ok: true, natural: [img.naturalWidth, img.naturalHeight], width: img.getBoundingClientRect().width, src: img.currentSrc }),
        (err) => ({ ok: false, error: String(err), src: img.currentSrc }),
      ),
    );
    assert.ok(loaded.ok, `the thumbnail loads: ${JSON.stringify(loaded)}`);
    assert.deepEqual(loaded.natural, [224, 224], `the thumbnail is shapes.png (224x224): ${JSON.stringify(loaded)}`);
    assert.equal(Math.round(loaded.width), THUMBNAIL_WIDTH, `the thumbnail is drawn paligemma.hover.thumbnailWidth wide: ${JSON.stringify(loaded)}`);
    // VS Code's own Markdown image preview comes first in the hover: bring our part into view.
    // (Not with the mouse wheel: once the hover cannot scroll further, the wheel scrolls the editor,
    // which closes the hover and leaves the editor scrolled for the next test.)
    const inspect = hover.locator('a', { hasText: 'Inspect' });
    await inspect.scrollIntoViewIfNeeded();
    await page.waitForTimeout(300);
    await h.screenshot(page, 'b-markdown-hover');
    // The hover's Inspect link opens the inspector on that image.
    await inspect.click();
    const webview = page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
    await webview.locator('#image-name', { hasText: 'shapes.png' }).waitFor({ timeout: 30_000 });
    await h.runCommand(page, 'View: Close Editor');
  });

  e2eTest('(c) the missing alt text diagnostic (from paligemma lsp) appears and its quick fix writes alt text into the file', async () => {
    const caption = cliCaption('wide.jpg');
    const expectedAlt = squash(caption).replace(/^./, (c) => c.toUpperCase());
    await h.openFile(page, NOTES);
    // Reveal the line first: only the lines in view are rendered, squiggles included.
    await goTo(MISSING_ALT_LINE, 3);
    const squiggle = page.locator('.monaco-editor .squiggly-warning');
    await squiggle.first().waitFor({ timeout: 30_000 });
    await h.runCommand(page, 'Quick Fix...');
    const fix = page.locator('.action-widget .monaco-list-row', { hasText: 'Generate alt text with PaliGemma' });
    await fix.waitFor({ timeout: 15_000 });
    await page.locator('.action-widget .monaco-list-row', { hasText: 'Mark image as decorative' }).waitFor({ timeout: 5000 });
    await h.screenshot(page, 'c-alt-text-quick-fix');
    // The language server runs the model when the action is chosen (codeAction/resolve) and
    // answers with the edit itself: no input box in between any more; Undo takes it back.
    await fix.click();
    await squiggle.first().waitFor({ state: 'detached', timeout: 120_000 });
    await h.runCommand(page, 'File: Save');
    const path = join(workspace, NOTES);
    let onDisk = readFileSync(path, 'utf8');
    for (let i = 0; i < 50 && onDisk === NOTES_TEXT; i++) {
      await page.waitForTimeout(200);
      onDisk = readFileSync(path, 'utf8');
    }
    const lines = onDisk.split('\n');
    const m = /^!\[(.*)\]\(images\/wide\.jpg\)$/.exec(lines[MISSING_ALT_LINE - 1]);
    assert.ok(m, `line ${MISSING_ALT_LINE} on disk is still an image link: ${JSON.stringify(lines[MISSING_ALT_LINE - 1])}`);
    assert.equal(m[1].replace(/\\(.)/g, '$1'), expectedAlt, 'the alt text written to disk (unescaped) is the caption');
    assert.deepEqual(
      lines.filter((_, i) => i !== MISSING_ALT_LINE - 1),
      NOTES_TEXT.split('\n').filter((_, i) => i !== MISSING_ALT_LINE - 1),
      'nothing else changed',
    );
    await h.screenshot(page, 'c-alt-text-written');
  });

  e2eTest('(d) the image inspector draws the detection boxes the daemon finds, and keeps them across a reload', async () => {
    const expected = JSON.parse(
      cli(['detect', join('images', DETECT_IMAGE), '--object', DETECT_QUERY, '--max-tokens', MAX_TOKENS, '--json'])
        .trim()
        .split('\n')[0],
    );
    assert.ok(expected.objects.length > 0, `the tiny model finds no "${DETECT_QUERY}" in ${DETECT_IMAGE}: pick another query`);

    await h.openFile(page, DETECT_IMAGE);
    await h.runCommand(page, h.commandTitle('paligemma.openInspector'));
    const webview = page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
    await webview.locator('#stage:not([hidden]) #image').waitFor({ timeout: 30_000 });
    await webview.locator('#objects-query input').fill(DETECT_QUERY);
    await webview.locator('#detect').click();
    const boxes = webview.locator('#overlay .box');
    await boxes.first().waitFor({ timeout: 120_000 });

    const drawn = await boxes.evaluateAll((els) =>
      els.map((el) => {
        const r = el.getBoundingClientRect();
        const img = document.getElementById('image').getBoundingClientRect();
        return {
          label: el.dataset.label,
          box: el.dataset.box,
          inside: r.left >= img.left - 1 && r.top >= img.top - 1 && r.right <= img.right + 1 && r.bottom <= img.bottom + 1,
          visible: r.width > 0 && r.height > 0,
        };
      }),
    );
    const want = expected.objects.map((o) => ({
      label: o.label,
      box: [o.box.x0, o.box.y0, o.box.x1, o.box.y1].map((v) => Math.round(v)).join(','),
    }));
    assert.deepEqual(
      drawn.map(({ label, box }) => ({ label, box })),
      want,
      'the webview draws exactly the boxes the daemon returns',
    );
    for (const d of drawn) assert.ok(d.inside, `box ${d.box} lies over the image`);
    assert.ok(
      drawn.some((d) => d.visible),
      'at least one box has an area',
    );
    assert.equal(await webview.locator('#objects li').count(), want.length);
    await h.screenshot(page, 'd-inspector-detect');

    // A reload restores the panel from its saved state: same image, same boxes.
    await page.waitForTimeout(1000);
    await h.runCommand(page, 'Developer: Reload Window');
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    const restored = page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
    await restored.locator('#overlay .box').first().waitFor({ timeout: 60_000 });
    assert.equal(await restored.locator('#overlay .box').count(), want.length);
    await h.screenshot(page, 'd-inspector-restored');
    assert.deepEqual(consoleErrors, [], 'no Content Security Policy violations');
  });
  e2eTest('(d) Detect Objects from the command palette opens the inspector and draws the boxes', async () => {
    const expected = JSON.parse(
      cli(['detect', join('images', DETECT_IMAGE), '--object', DETECT_QUERY, '--max-tokens', MAX_TOKENS, '--json'])
        .trim()
        .split('\n')[0],
    );
    await h.runCommand(page, 'View: Close All Editors');
    await h.openFile(page, DETECT_IMAGE);
    // The image preview takes the focus once loaded, which would close the command's input box.
    await page.frameLocator('iframe.webview.ready').frameLocator('#active-frame').locator('img').first().waitFor({ timeout: 30_000 });
    await h.runCommandWithInput(page, h.commandTitle('paligemma.detectObjects'), `Detect objects in ${DETECT_IMAGE}`, DETECT_QUERY);
    // A new panel: the task waits for the webview to load, then runs there.
    const webview = page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
    await webview.locator('#overlay .box').first().waitFor({ timeout: 120_000 });
    assert.equal(await webview.locator('#overlay .box').count(), expected.objects.length);
    assert.equal(await webview.locator('#objects-query input').inputValue(), DETECT_QUERY);
    await h.screenshot(page, 'd-detect-command');
  });

  e2eTest('(d) an image pasted into an empty inspector is shown and described from its bytes', async () => {
    const expected = JSON.parse(
      cli(['caption', join('images', 'shapes.png'), '--lang', LANGUAGE, '--max-tokens', MAX_TOKENS, '--json'])
        .trim()
        .split('\n')[0],
    );
    await h.runCommand(page, 'View: Close All Editors');
    await h.runCommand(page, h.commandTitle('paligemma.openInspector'));
    const webview = page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
    await webview.locator('#empty:not([hidden])').waitFor({ timeout: 30_000 });
    const png = readFileSync(join(workspace, 'images', 'shapes.png')).toString('base64');
    await webview.locator('body').evaluate((_, b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const data = new DataTransfer();
      data.items.add(new File([bytes], 'shapes.png', { type: 'image/png' }));
      document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
    }, png);
    await webview.locator('#stage:not([hidden]) #image').waitFor({ timeout: 30_000 });
    assert.equal(await webview.locator('#image-name').textContent(), 'shapes.png');
    assert.match(await webview.locator('#image').getAttribute('src'), /^data:image\/png;base64,/);
    await webview.locator('#describe').click();
    await webview.locator('#caption:not(.placeholder):not(.streaming)').waitFor({ timeout: 120_000 });
    assert.equal(await webview.locator('#caption').textContent(), expected.text);
    await h.screenshot(page, 'd-inspector-paste');
  });
  e2eTest('(e) the status bar reports the model ready', async () => {
    const item = page.locator('.statusbar-item', { hasText: 'PaliGemma' });
    await item.locator('.codicon-check').waitFor({ timeout: 60_000 });
    assert.match(squash(await item.innerText()), /PaliGemma · cpu/);
    await item.hover();
    const tooltip = page.locator('.monaco-hover:visible, .workbench-hover:visible', { hasText: 'tiny-paligemma-224' });
    await tooltip.first().waitFor({ timeout: 15_000 });
    assert.match(squash(await tooltip.first().innerText()), /Model tiny-paligemma-224 \(paligemma, fp32, 224 px\) on cpu/);
    await h.screenshot(page, 'e-status-bar-ready');
  });

  e2eTest('(f) the image inspector segments an object and draws its mask inside its box', async () => {
    const expected = JSON.parse(
      cli(['segment', join('images', SEGMENT_IMAGE), '--object', SEGMENT_QUERY, '--max-tokens', MAX_TOKENS, '--json'])
        .trim()
        .split('\n')[0],
    );
    assert.equal(expected.objects.length, 1, `the daemon segments one "${SEGMENT_QUERY}" in ${SEGMENT_IMAGE}: ${JSON.stringify(expected.objects)}`);
    const [want] = expected.objects;
    assert.ok(want.mask, 'the daemon returns a mask (the model folder has vae.onnx)');
    const onPixels = want.mask.rle.filter((_, i) => i % 2 === 1).reduce((a, b) => a + b, 0);

    await h.runCommand(page, 'View: Close All Editors');
    await h.openFile(page, SEGMENT_IMAGE);
    await h.runCommand(page, h.commandTitle('paligemma.openInspector'));
    const webview = page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
    await webview.locator('#stage:not([hidden]) #image').waitFor({ timeout: 30_000 });
    assert.equal(await webview.locator('#image-name').textContent(), SEGMENT_IMAGE);
    await webview.locator('#objects-query input').fill(SEGMENT_QUERY);
    await webview.locator('#segment').click();
    await webview.locator('#overlay .box canvas.mask').first().waitFor({ timeout: 120_000 });

    const drawn = await webview.locator('#overlay .box').evaluateAll((els) =>
      els.map((el) => {
        const canvas = el.querySelector('canvas.mask');
        const r = el.getBoundingClientRect();
        const c = canvas?.getBoundingClientRect();
        let painted = 0;
        if (canvas) {
          const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
          for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
        }
        return {
          label: el.dataset.label,
          box: el.dataset.box,
          canvas: canvas ? { width: canvas.width, height: canvas.height } : null,
          painted,
          // How far the canvas's edges lie from the box's (its 2 px border sits between them).
          inset: c ? Math.max(Math.abs(c.left - r.left), Math.abs(c.top - r.top), Math.abs(r.right - c.right), Math.abs(r.bottom - c.bottom)) : null,
          size: { width: r.width, height: r.height },
        };
      }),
    );
    assert.equal(drawn.length, 1, JSON.stringify(drawn));
    const [d] = drawn;
    const { x0, y0, x1, y1 } = want.box;
    assert.equal(d.label, want.label);
    assert.equal(d.box, [x0, y0, x1, y1].map((v) => Math.round(v)).join(','), 'the box the daemon returns');
    assert.deepEqual(d.canvas, { width: Math.round(x1 - x0), height: Math.round(y1 - y0) }, 'the mask canvas has the box size in image pixels');
    assert.deepEqual(d.canvas, { width: want.mask.width, height: want.mask.height });
    assert.equal(d.painted, onPixels, 'the canvas paints exactly the mask pixels');
    assert.ok(d.size.width > 4 && d.size.height > 4, `the box is visible: ${JSON.stringify(d.size)}`);
    assert.ok(d.inset <= 3, `the mask canvas fills its box (edges ${d.inset} px apart)`);
    assert.equal(await webview.locator('#objects-summary').textContent(), `1 object (segment ${SEGMENT_QUERY})`);
    assert.equal(await webview.locator('#objects li').count(), 1);
    await h.screenshot(page, 'f-inspector-segment');
    assert.deepEqual(consoleErrors, [], 'no Content Security Policy violations');
  });
});
