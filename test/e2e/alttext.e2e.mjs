// End-to-end: Fill Missing Alt Text in Workspace in a real VS Code (code-server, no MDX extension,
// so `.mdx` opens as plain text) with the packaged .vsix and the tiny model. The MDX image gets the
// model's text, the decorative HTML image (alt="") is left alone, and the review lists the missing
// image as skipped with its reason. Screenshots: test-results/e2e/alttext-*.png.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as h from './harness.mjs';

const MODEL_FIXTURE = join(h.FIXTURES, 'tiny-paligemma-224');
const MAX_TOKENS = 24;
const MDX = 'intro.mdx';
const MDX_TEXT = 'import Note from \'./note.js\'\n\n# Intro\n\n![](images/shapes.png)\n\n<img src="images/missing.png" />\n';
const HTML = 'page.html';
const HTML_TEXT = '<!doctype html>\n<p><img src="images/wide.jpg" alt=""> Decorative rule</p>\n';

let tmp;
let workspace;
let modelDir;
let server;
let browser;
let page;

const cli = h.daemonCli(() => ({ tmp, modelDir, cwd: workspace }));
const extensionRuntimeDir = () => join(tmp, 'runtime', 'paligemma');

before(async () => {
  h.requireInstalled();
  tmp = h.makeTempRoot();
  workspace = join(tmp, 'workspace');
  modelDir = join(tmp, 'model');
  cli(['convert', MODEL_FIXTURE, modelDir]);
  for (const f of ['shapes.png', 'wide.jpg']) h.copyFixture(join(MODEL_FIXTURE, f), join(workspace, 'images', f));
  writeFileSync(join(workspace, MDX), MDX_TEXT);
  writeFileSync(join(workspace, HTML), HTML_TEXT);
  h.installExtension(tmp);
  h.writeUserSettings(tmp, { 'workbench.secondarySideBar.defaultVisibility': 'hidden' });
  h.writeJson(join(workspace, '.vscode', 'settings.json'), {
    'paligemma.modelPath': modelDir,
    'paligemma.executionProvider': 'cpu',
    'paligemma.maxNewTokens': MAX_TOKENS,
    'paligemma.captionLanguage': 'en',
  });
  server = await h.startCodeServer(tmp, workspace, { PALIGEMMA_RUNTIME_DIR: extensionRuntimeDir(), PALIGEMMA_MODEL: modelDir });
  browser = await h.launchBrowser(tmp);
  page = await h.openWorkbench(browser, server.url, workspace);
});

after(() => h.tearDown(tmp, { browser, server, stopDaemon: (dir) => cli(['stop'], dir) }));

test('the workspace batch fixes the .mdx image, leaves the decorative alt="" alone and shows the skipped missing image', async () => {
  try {
    // The reference: the same caption through the CLI's own daemon, as alt text.
    const caption = JSON.parse(cli(['caption', 'images/shapes.png', '--lang', 'en', '--max-tokens', String(MAX_TOKENS), '--json']).trim()).text;
    const expectedAlt = caption
      .replace(/\s+/g, ' ')
      .trim()
      .replace(/^./, (c) => c.toUpperCase());
    assert.ok(expectedAlt, 'the tiny model says something about shapes.png');

    await h.runCommand(page, h.commandTitle('paligemma.fillMissingAltTextWorkspace'));
    const review = page.locator('.quick-input-widget', { hasText: 'Alt text for the workspace' });
    await review.waitFor({ timeout: 180_000 });
    const rows = page.locator('.quick-input-list .monaco-list-row');
    const skipped = rows.filter({ hasText: 'images/missing.png' });
    await skipped.waitFor({ timeout: 10_000 });
    assert.match(await skipped.innerText(), /skipped: file not found: images\/missing\.png/);
    assert.match(await page.locator('.quick-input-list').innerText(), /Skipped \(1\)/);
    const proposal = rows.filter({ hasText: expectedAlt });
    await proposal.first().waitFor({ timeout: 10_000 });
    assert.match(await proposal.first().innerText(), /intro\.mdx:5/);
    assert.equal(await rows.filter({ hasText: 'wide.jpg' }).count(), 0, 'the decorative image is not offered');
    await h.screenshot(page, 'alttext-review-skipped');

    await page.locator('.quick-input-widget input').press('Enter');
    const done = page.locator('.notifications-toasts', { hasText: 'alt text in the workspace: 1 fixed, 1 skipped, 0 failed' });
    await done.waitFor({ timeout: 20_000 });
    await review.waitFor({ state: 'hidden', timeout: 5_000 });
    await h.screenshot(page, 'alttext-review-done');
    await h.runCommand(page, 'File: Save All Files');

    const path = join(workspace, MDX);
    let onDisk = readFileSync(path, 'utf8');
    for (let i = 0; i < 50 && onDisk === MDX_TEXT; i++) {
      await page.waitForTimeout(200);
      onDisk = readFileSync(path, 'utf8');
    }
    const escaped = expectedAlt.replace(/[\\[\]*_`<>{}]/g, '\\$&');
    assert.equal(onDisk, MDX_TEXT.replace('![](images/shapes.png)', `![${escaped}](images/shapes.png)`), 'only the MDX image alt text changed');
    assert.equal(readFileSync(join(workspace, HTML), 'utf8'), HTML_TEXT, 'the decorative HTML image is untouched');
  } catch (err) {
    if (page) await h.screenshot(page, `FAILED-alttext-${Date.now()}`).catch(() => undefined);
    throw err;
  }
});

test('Generate Alt Text on a missing image in the .mdx file says which file is not found', async () => {
  try {
    await h.openFile(page, MDX);
    await h.focusWorkbench(page);
    await page.keyboard.press('Control+G');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor();
    await input.fill(':7:3');
    await input.press('Enter');
    await h.runCommand(page, h.commandTitle('paligemma.generateAltText'));
    await page.locator('.notifications-toasts', { hasText: 'PaliGemma: file not found: images/missing.png' }).waitFor({ timeout: 20_000 });
    await h.screenshot(page, 'alttext-generate-not-found');
  } catch (err) {
    if (page) await h.screenshot(page, `FAILED-alttext-${Date.now()}`).catch(() => undefined);
    throw err;
  }
});
