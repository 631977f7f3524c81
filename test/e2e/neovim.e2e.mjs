// End-to-end: `paligemma lsp --stdio` in a real, headless Neovim (Debian's package; see
// .ci/install-neovim.sh) on a Markdown file, with the tiny converted model: the alt-text diagnostic
// arrives, Neovim's own code-action flow (vim.lsp.buf.code_action, resolve included) applies
// "Generate alt text", and the file written by :write is checked on disk against the caption the
// CLI gets from the same daemon. Run: npm run test:e2e:neovim
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import * as h from './harness.mjs';

const CLI = join(h.ROOT, 'out', 'daemon', 'cli', 'main.js');
const NOTES_TEXT = '# Notes\n\nA chart:\n![](images/wide.jpg)\n';
const MISSING_ALT_LINE = 4;
const GENERATE = 'Generate alt text with PaliGemma';

let tmp;
let workspace;
let modelDir;
let env;

before(() => {
  const nvim = spawnSync('nvim', ['--version'], { encoding: 'utf8' });
  if (nvim.status !== 0) throw new Error('nvim is not installed: run .ci/install-neovim.sh');
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build`);
  tmp = h.makeTempRoot();
  workspace = join(tmp, 'workspace');
  modelDir = join(tmp, 'model');
  env = { ...h.isolatedEnv(tmp), PALIGEMMA_RUNTIME_DIR: join(tmp, 'runtime', 'paligemma'), PALIGEMMA_MODEL: modelDir };
  h.run(process.execPath, [CLI, 'convert', join(h.FIXTURES, 'tiny-paligemma-224'), modelDir], { env });
  h.copyFixture(join(h.FIXTURES, 'tiny-paligemma-224', 'wide.jpg'), join(workspace, 'images', 'wide.jpg'));
  writeFileSync(join(workspace, 'notes.md'), NOTES_TEXT);
});

after(() => {
  // The daemon the language server started outlives it by design: stop it.
  if (env && existsSync(env.PALIGEMMA_RUNTIME_DIR)) spawnSync(process.execPath, [CLI, 'stop'], { env, encoding: 'utf8' });
  if (tmp) h.removeTemp(tmp);
});

/** The script Neovim runs: the README's configuration, then the user's keystrokes as Lua. */
function script(resultPath) {
  const lua = (v) => JSON.stringify(v); // a JSON string is a valid Lua string literal here (ASCII paths)
  return `
local result = { events = {} }
local function finish(ok, why)
  result.ok = ok
  result.why = why
  local f = io.open(${lua(resultPath)}, 'w')
  f:write(vim.fn.json_encode(result))
  f:close()
  vim.cmd('qa!')
end
local function step(name) table.insert(result.events, name) end

local config = {
  name = 'paligemma',
  cmd = { ${lua(process.execPath)}, ${lua(CLI)}, 'lsp', '--stdio' },
  root_dir = ${lua(workspace)},
  settings = { paligemma = { modelPath = ${lua(modelDir)}, executionProvider = 'cpu', maxNewTokens = 64 } },
}
-- vim.lsp.start (Neovim 0.8+) is what the README shows; Debian bookworm ships 0.7.
local client_id
if vim.lsp.start then
  client_id = vim.lsp.start(config)
else
  client_id = vim.lsp.start_client(config)
  vim.lsp.buf_attach_client(0, client_id)
end
step('started')

local ok = vim.wait(60000, function() return #vim.diagnostic.get(0) > 0 end, 100)
if not ok then return finish(false, 'no diagnostics within 60 s') end
local d = vim.diagnostic.get(0)[1]
result.diagnostic = { lnum = d.lnum, col = d.col, end_col = d.end_col, message = d.message, source = d.source, code = d.user_data and d.user_data.lsp and d.user_data.lsp.code }
step('diagnostics')

-- Choose "Generate alt text" in Neovim's own code-action menu.
vim.ui.select = function(items, opts, on_choice)
  local titles, chosen = {}, nil
  for i, item in ipairs(items) do
    local title = opts.format_item(item)
    table.insert(titles, title)
    if title == ${lua(GENERATE)} and not chosen then chosen = i end
  end
  result.actions = titles
  if chosen then on_choice(items[chosen], chosen) else on_choice(nil, nil) end
end
vim.api.nvim_win_set_cursor(0, { ${MISSING_ALT_LINE}, 1 })
vim.lsp.buf.code_action()
local before = vim.api.nvim_buf_get_lines(0, ${MISSING_ALT_LINE - 1}, ${MISSING_ALT_LINE}, false)[1]
ok = vim.wait(180000, function()
  return vim.api.nvim_buf_get_lines(0, ${MISSING_ALT_LINE - 1}, ${MISSING_ALT_LINE}, false)[1] ~= before
end, 200)
if not ok then return finish(false, 'the code action changed nothing within 180 s') end
step('edited')
vim.cmd('write')
step('written')
ok = vim.wait(10000, function() return #vim.diagnostic.get(0) == 0 end, 100)
result.diagnostics_after = #vim.diagnostic.get(0)
finish(true)
`;
}

test('Neovim: alt-text diagnostic, then "Generate alt text" writes the caption into the Markdown file', { timeout: 400_000 }, async () => {
  const resultPath = join(tmp, 'result.json');
  const scriptPath = join(tmp, 'test.lua');
  writeFileSync(scriptPath, script(resultPath));
  const started = Date.now();
  const r = spawnSync('nvim', ['--headless', '--clean', '-n', '-i', 'NONE', 'notes.md', '-c', `luafile ${scriptPath}`], {
    cwd: workspace,
    env,
    encoding: 'utf8',
    timeout: 360_000,
  });
  h.log(`nvim exited ${r.status ?? r.signal} after ${Date.now() - started} ms`);
  assert.ok(existsSync(resultPath), `Neovim wrote no result (exit ${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  const result = JSON.parse(readFileSync(resultPath, 'utf8'));
  assert.equal(result.ok, true, `${result.why}; steps: ${result.events.join(', ')}\n${r.stderr}`);

  // The docs core's kind and message for that image, as `paligemma alt-text check` reports it.
  const { findAltTextProblems } = await import(pathToFileURL(join(h.ROOT, 'out', 'daemon', 'alttext', 'diagnose.js')).href);
  const [expected] = findAltTextProblems(NOTES_TEXT, 'markdown').problems;
  assert.equal(result.diagnostic.source, 'PaliGemma');
  assert.equal(result.diagnostic.code, `alt-${expected.kind}`);
  assert.equal(result.diagnostic.message, expected.message);
  assert.deepEqual([result.diagnostic.lnum, result.diagnostic.col, result.diagnostic.end_col], [MISSING_ALT_LINE - 1, 0, '![](images/wide.jpg)'.length]);
  assert.deepEqual(result.actions.slice(0, 2), [GENERATE, 'Mark image as decorative']);

  // The same daemon, asked by the CLI with the same parameters: the caption the fix used.
  const caption = JSON.parse(
    h
      .run(process.execPath, [CLI, 'caption', join('images', 'wide.jpg'), '--lang', 'en', '--max-tokens', '64', '--json'], { env, cwd: workspace })
      .trim()
      .split('\n')[0],
  ).text;
  const expectedAlt = caption
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/^./, (c) => c.toUpperCase());
  const lines = readFileSync(join(workspace, 'notes.md'), 'utf8').split('\n');
  const m = /^!\[(.*)\]\(images\/wide\.jpg\)$/.exec(lines[MISSING_ALT_LINE - 1]);
  assert.ok(m, `line ${MISSING_ALT_LINE} on disk is still the image: ${JSON.stringify(lines[MISSING_ALT_LINE - 1])}`);
  assert.ok(m[1].length > 0, 'alt text was written');
  assert.equal(m[1].replace(/\\(.)/g, '$1'), expectedAlt, 'the alt text on disk (unescaped) is the caption');
  const others = (text) => text.split('\n').filter((_, i) => i !== MISSING_ALT_LINE - 1);
  assert.deepEqual(others(lines.join('\n')), others(NOTES_TEXT), 'nothing else changed');
  assert.equal(result.diagnostics_after, 0, 'the diagnostic went away');
});
