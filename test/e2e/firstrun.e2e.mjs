// End-to-end: a new user's first run in a real VS Code (code-server), with no model configured
// anywhere (no setting, no $PALIGEMMA_MODEL, no models/default) and the execution provider left
// on `auto`. The status says so, the first command offers the three ways to get a model, choosing
// the converted tiny model's folder loads it and the command completes; the model path then lives
// only in User settings; an image pasted into Markdown is saved and gets the model's alt text; a
// configured folder that does not exist is reported by name.
// Screenshots: test-results/e2e/{first-run-no-model,user-settings-model,paste-alt-text,status-ready}.png
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as h from './harness.mjs';

const MODEL_FIXTURE = join(h.FIXTURES, 'tiny-paligemma-224');
const MAX_TOKENS = 32;
const NOTES = 'notes.md';
const NOTES_TEXT = '# Notes\n\nA pasted picture:\n\n';
/** The workspace's markdown.copyFiles.destination: pasted images go to media/. */
const PASTE_DESTINATION = { '**/*.md': 'media/' };

let tmp;
let workspace;
let modelDir;
let server;
let browser;
let page;

const cli = h.daemonCli(() => ({ tmp, modelDir, cwd: workspace }));

const cliCaption = (image) => cli.text(['caption', join('images', image), '--lang', 'en', '--max-tokens', String(MAX_TOKENS)]);

const extensionRuntimeDir = () => join(tmp, 'runtime', 'paligemma');
const userSettingsPath = () => join(tmp, 'user-data', 'User', 'settings.json');
const squash = (s) => s.replace(/\s+/g, ' ').trim();

before(async () => {
  h.requireInstalled();
  tmp = h.makeTempRoot();
  workspace = join(tmp, 'workspace');
  modelDir = join(tmp, 'model');
  h.log(`temp root ${tmp}`);
  cli(['convert', MODEL_FIXTURE, modelDir]);
  for (const f of ['shapes.png', 'gradient.png']) h.copyFixture(join(MODEL_FIXTURE, f), join(workspace, 'images', f));
  writeFileSync(join(workspace, NOTES), NOTES_TEXT);
  h.installExtension(tmp);
  h.writeUserSettings(tmp, {
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    'paligemma.maxNewTokens': MAX_TOKENS,
    // Ours among the paste edits, so Ctrl+V applies it (the built-in one stays in the paste widget).
    'editor.pasteAs.preferences': ['markdown.link.image.altText'],
  });
  // Workspace settings hold no model path: only the paste destination.
  h.writeJson(join(workspace, '.vscode', 'settings.json'), { 'markdown.copyFiles.destination': PASTE_DESTINATION });
  const env = { PALIGEMMA_RUNTIME_DIR: extensionRuntimeDir() };
  server = await h.startCodeServer(tmp, workspace, env);
  browser = await h.launchBrowser(tmp);
  page = await h.openWorkbench(browser, server.url, workspace);
});

after(() => h.tearDown(tmp, { browser, server, stopDaemon: (dir) => cli(['stop'], dir) }));

/** The extension's own log (its output channel), kept next to the screenshots when a test fails. */
function keepExtensionLog() {
  const found = spawnSync('find', [join(tmp, 'user-data', 'logs'), '-name', '*PaliGemma.log'], { encoding: 'utf8' })
    .stdout.trim()
    .split('\n')
    .filter(Boolean);
  // The newest: a window reload starts another extension host with its own log.
  found.sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs);
  if (found.length) copyFileSync(found.at(-1), join(h.RESULTS, 'FAILED-firstrun-extension.log'));
}

function e2eTest(name, fn) {
  test(name, async () => {
    try {
      await fn();
    } catch (err) {
      if (page) await h.screenshot(page, `FAILED-firstrun-${name.slice(0, 12).replace(/\W/g, '')}-${Date.now()}`).catch(() => undefined);
      try {
        keepExtensionLog();
      } catch (e) {
        h.log(`no extension log: ${e.message}`);
      }
      throw err;
    }
  });
}

const statusItem = () => page.locator('.statusbar-item', { hasText: 'PaliGemma' }).first();
const toast = (text) => page.locator('.notifications-toasts .notification-list-item', { hasText: text }).first();

async function dismissToasts() {
  for (let i = 0; i < 5; i++) {
    const toasts = page.locator('.notifications-toasts .notification-toast');
    if ((await toasts.count()) === 0) return;
    await toasts
      .first()
      .hover()
      .catch(() => undefined);
    await page.keyboard.press('Escape');
    await page.waitForTimeout(200);
  }
}

/**
 * Answers VS Code's own folder dialog in a web window (a quick input holding a path): types the
 * folder and accepts it with the dialog's OK.
 */
async function chooseFolderInDialog(folder) {
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ timeout: 15_000 });
  const want = folder.endsWith('/') ? folder : `${folder}/`;
  // The dialog fills in its starting folder asynchronously: wait for it, then replace it.
  await page.waitForFunction(() => (document.querySelector('.quick-input-widget input')?.value ?? '') !== '', null, { timeout: 15_000 });
  for (let attempt = 0; attempt < 5 && (await input.inputValue()) !== want; attempt++) {
    await input.fill(want);
    await page.waitForTimeout(500);
  }
  assert.equal(await input.inputValue(), want, 'the folder typed into the dialog');
  const ok = page.locator('.quick-input-widget .monaco-button', { hasText: /^(OK|Use Model)$/ }).first();
  if (await ok.isVisible().catch(() => false)) await ok.click();
  else await input.press('Enter');
  // The dialog stays open while it navigates into the folder; accept once more if it did.
  await page.waitForTimeout(800);
  if (await input.isVisible().catch(() => false)) {
    if (await ok.isVisible().catch(() => false)) await ok.click();
    else await input.press('Enter');
  }
  await input.waitFor({ state: 'hidden', timeout: 15_000 });
}

describe('PaliGemma first run in VS Code', () => {
  e2eTest('(1) no model: the status says so; Describe offers Download, Choose Folder, Convert; a chosen folder loads and the command completes', async () => {
    const caption = cliCaption('shapes.png');
    const item = statusItem();
    await item.waitFor({ timeout: 60_000 });
    await page.waitForFunction(() => [...document.querySelectorAll('.statusbar-item')].some((e) => /PaliGemma: no model/.test(e.textContent ?? '')), null, { timeout: 30_000 });
    assert.match(squash(await item.innerText()), /PaliGemma: no model/);
    const colour = await item.evaluate((e) => getComputedStyle(e).backgroundColor);
    assert.notEqual(colour, 'rgba(0, 0, 0, 0)', `the item has the warning background, not none (${colour})`);

    await h.openFile(page, 'shapes.png');
    await page.frameLocator('iframe.webview.ready').frameLocator('#active-frame').locator('img').first().waitFor({ timeout: 30_000 });
    await h.runCommand(page, h.commandTitle('paligemma.describeImage'));
    const offer = toast('No model is loaded. Download one or choose a folder.');
    await offer.waitFor({ timeout: 30_000 });
    const buttons = (await offer.locator('.monaco-button').allInnerTexts()).map(squash).filter(Boolean);
    assert.deepEqual(buttons.slice(0, 3), ['Download…', 'Choose Folder…', 'Convert Checkpoint…']);
    assert.equal(await page.locator('.notifications-toasts .notification-list-item', { hasText: 'No model is loaded' }).count(), 1, 'one notification');
    await page.waitForTimeout(700); // the toast fades in
    await h.screenshot(page, 'first-run-no-model');

    await offer.locator('.monaco-button', { hasText: 'Choose Folder…' }).click();
    await chooseFolderInDialog(modelDir);
    // The command that asked goes on: the model loads and the caption comes.
    const result = page.locator('.notifications-toasts .notification-list-item-message', { hasText: /^shapes\.png: / });
    await result.waitFor({ timeout: 180_000 });
    assert.equal(squash(await result.innerText()), squash(`shapes.png: ${caption}`));
    const settings = JSON.parse(readFileSync(userSettingsPath(), 'utf8'));
    assert.equal(settings['paligemma.modelPath'], modelDir, 'the chosen folder is in User settings');
    await dismissToasts();
  });

  e2eTest('(2) the model path only in User settings: after a reload and a daemon restart, Describe works', async () => {
    const caption = cliCaption('gradient.png');
    const workspaceSettings = JSON.parse(readFileSync(join(workspace, '.vscode', 'settings.json'), 'utf8'));
    assert.equal(workspaceSettings['paligemma.modelPath'], undefined, 'the workspace does not set it');
    await h.runCommand(page, 'Developer: Reload Window');
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    await page.locator('.explorer-folders-view, .explorer-viewlet').first().waitFor({ timeout: 60_000 });
    await h.runCommand(page, h.commandTitle('paligemma.restartDaemon'));
    await h.runCommand(page, 'View: Close All Editors');
    await h.openFile(page, 'gradient.png');
    await page.frameLocator('iframe.webview.ready').frameLocator('#active-frame').locator('img').first().waitFor({ timeout: 30_000 });
    await h.runCommand(page, h.commandTitle('paligemma.describeImage'));
    const result = page.locator('.notifications-toasts .notification-list-item-message', { hasText: /^gradient\.png: / });
    await result.waitFor({ timeout: 180_000 });
    assert.equal(squash(await result.innerText()), squash(`gradient.png: ${caption}`));
    assert.equal(await toast('No model is loaded').count(), 0, 'no first-run offer this time');
    await h.screenshot(page, 'user-settings-model');
    await dismissToasts();
  });

  e2eTest("(3) an image pasted into Markdown is saved under the copyFiles destination and gets the model's alt text", async () => {
    const caption = cliCaption('shapes.png');
    const expectedAlt = squash(caption).replace(/^./, (c) => c.toUpperCase());
    const png = readFileSync(join(workspace, 'images', 'shapes.png'));
    await h.runCommand(page, 'View: Close All Editors');
    await h.openFile(page, NOTES);
    await h.focusWorkbench(page);
    await page.locator('.monaco-editor .view-lines').first().click();
    await page.keyboard.press('Control+End');
    // A clipboard paste as the browser delivers it: a paste event whose clipboardData holds the PNG.
    await page.evaluate((b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const data = new DataTransfer();
      data.items.add(new File([bytes], 'image.png', { type: 'image/png' }));
      const target = document.activeElement ?? document.body;
      target.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
    }, png.toString('base64'));
    // Our placeholder first (the built-in paste writes "alt text"), then the model's text in its place.
    const line = page.locator('.monaco-editor .view-line', { hasText: 'media/image.png' }).first();
    await line.waitFor({ timeout: 30_000 });
    const lineText = () => line.evaluate((l) => (l.textContent ?? '').replace(/\u00a0/g, ' '));
    assert.match(await lineText(), /^!\[(image description|.{12,})\]\(media\/image\.png\)$/, 'our paste edit, not the built-in one');
    await page.waitForFunction(
      () =>
        [...document.querySelectorAll('.monaco-editor .view-line')].some((l) =>
          /!\[(?!image description\]|alt text\])[^\]]+\]\(media\/image\.png\)/.test(l.textContent?.replace(/\u00a0/g, ' ') ?? ''),
        ),
      null,
      { timeout: 120_000 },
    );
    await h.runCommand(page, 'File: Save');
    const path = join(workspace, NOTES);
    let onDisk = readFileSync(path, 'utf8');
    for (let i = 0; i < 50 && !onDisk.includes('media/image.png'); i++) {
      await page.waitForTimeout(200);
      onDisk = readFileSync(path, 'utf8');
    }
    const m = /!\[(.*)\]\(media\/image\.png\)/.exec(onDisk);
    assert.ok(m, `the saved file holds the image reference: ${JSON.stringify(onDisk)}`);
    assert.equal(m[1].replace(/\\(.)/g, '$1'), expectedAlt, "the alt text is the model's description");
    assert.ok(onDisk.startsWith(NOTES_TEXT), 'the text before is unchanged');
    const saved = join(workspace, 'media', 'image.png');
    // The image is written with the paste's file edit, whose bytes come from the browser: after the text.
    for (let i = 0; i < 50 && !existsSync(saved); i++) await page.waitForTimeout(200);
    assert.ok(existsSync(saved), `the image is saved at ${saved}`);
    assert.ok(readFileSync(saved).equals(png), 'the saved image is the pasted bytes');
    await h.screenshot(page, 'paste-alt-text');
  });

  e2eTest('(4) the ready status names the model and the provider; the tooltip holds no loader errors', async () => {
    const item = statusItem();
    await item.locator('.codicon-check').waitFor({ timeout: 60_000 });
    assert.match(squash(await item.innerText()), /PaliGemma · (cpu|webgpu|cuda)/);
    await item.hover();
    const tooltip = page.locator('.monaco-hover:visible, .workbench-hover:visible', { hasText: 'tiny-paligemma-224' }).first();
    await tooltip.waitFor({ timeout: 15_000 });
    const text = squash(await tooltip.innerText());
    assert.match(text, /Model tiny-paligemma-224 \(paligemma, fp32, 224 px\) on (cpu|webgpu|cuda)/);
    assert.doesNotMatch(text, /libonnxruntime|\.so\b|shared object|Failed to load|providers_cuda|execution provider could not/i, text);
    // Without an NVIDIA driver `auto` passes over CUDA: said in one line, the loader's words in the log.
    if (!existsSync('/proc/driver/nvidia/version')) assert.match(text, /CUDA (and WebGPU )?unavailable: using (CPU|WebGPU) — details in the log/);
    await h.screenshot(page, 'status-ready');
  });

  e2eTest('(5) a configured model folder that does not exist is reported by name, in the status and on the next command', async () => {
    const missing = join(tmp, 'missing-model');
    const settings = JSON.parse(readFileSync(userSettingsPath(), 'utf8'));
    h.writeJson(userSettingsPath(), { ...settings, 'paligemma.modelPath': missing });
    // The web workbench reads User settings written behind its back when the window reloads.
    await h.runCommand(page, 'Developer: Reload Window');
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    await page.locator('.explorer-folders-view, .explorer-viewlet').first().waitFor({ timeout: 60_000 });
    await page.waitForFunction(() => [...document.querySelectorAll('.statusbar-item')].some((e) => /PaliGemma: no model/.test(e.textContent ?? '')), null, { timeout: 30_000 });
    await dismissToasts();
    await h.runCommand(page, 'View: Close All Editors');
    await h.openFile(page, 'shapes.png');
    await page.frameLocator('iframe.webview.ready').frameLocator('#active-frame').locator('img').first().waitFor({ timeout: 30_000 });
    await h.runCommand(page, h.commandTitle('paligemma.describeImage'));
    const offer = toast('does not exist');
    await offer.waitFor({ timeout: 30_000 });
    const message = squash(await offer.locator('.notification-list-item-message').innerText());
    assert.match(message, /^The model folder (\S+) \(paligemma\.modelPath in (User|User or Remote) settings\) does not exist\. Choose a folder or download a model\.$/);
    assert.equal(message.split(missing).length - 1, 1, `the path is named once: ${message}`);
    const buttons = (await offer.locator('.monaco-button').allInnerTexts()).map(squash).filter(Boolean);
    assert.deepEqual(buttons.slice(0, 3), ['Download…', 'Choose Folder…', 'Convert Checkpoint…']);
  });
});
