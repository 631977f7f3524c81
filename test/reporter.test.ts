// .ci/test-reporter.mjs, the reporter of `npm test`, on a real node:test run of three small files:
// one line per file, each failure in full with its file's output, node's closing counts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const REPORTER = join(ROOT, '.ci/test-reporter.mjs');

const FILES: Record<string, string> = {
  'a-pass.test.mjs': `import { test } from 'node:test';
test('adds numbers', () => { console.log('chatter of a passing file'); });
test('compares strings', () => {});
test.skip('is skipped', () => {});
`,
  'b-fail.test.mjs': `import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
describe('parser', () => {
  it('reads a header', () => {});
  it('rejects a bad magic number', () => { console.error('diagnostic of the failing file'); assert.equal('PNG', 'GIF'); });
});
`,
  'c-broken.test.mjs': `syntax error(\n`,
  'd-hook.test.mjs': `import { before, describe, it } from 'node:test';
describe('needs a server', () => {
  before(() => { throw new Error('prerequisites missing: no server binary'); });
  it('answers', () => {});
});
`,
};

function run(dir: string, ...extra: string[]) {
  // Without the variable that marks this process as a test file, the child runs as a test runner.
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  return spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...extra, ...Object.keys(FILES)], { cwd: dir, env, encoding: 'utf8', timeout: 60_000 });
}

test('one line per file, the failures in full, node’s counts at the end', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'reporter-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(FILES)) writeFileSync(join(dir, name), text);

  const r = run(dir, `--test-reporter=${REPORTER}`);
  assert.equal(r.status, 1, r.stderr);
  const lines = r.stdout.split('\n');
  const fileLines = lines.filter((l) => /^[✔✖] /.test(l));
  assert.deepEqual(
    fileLines.map((l) => l.replace(/ \(\d+\.\d s\)$/, '')),
    [
      '✔ a-pass.test.mjs: 2 passed, 1 skipped',
      '✖ b-fail.test.mjs: 1 passed, 1 failed',
      '✖ c-broken.test.mjs: 0 passed, the file failed',
      '✖ d-hook.test.mjs: 0 passed, 1 cancelled',
    ],
  );
  // The failure: its name, the assertion with both values, and what its file wrote.
  assert.ok(lines.includes('  ✖ rejects a bad magic number'), r.stdout);
  assert.match(r.stdout, /AssertionError.*\n[^]*'PNG'[^]*'GIF'/);
  assert.match(r.stdout, /diagnostic of the failing file/);
  // Why the broken file failed: node's own syntax error message, from its output.
  assert.match(r.stdout, /SyntaxError/);
  // A suite whose hook failed: the suite and the hook's error, its tests counted as cancelled.
  assert.ok(lines.includes('  ✖ needs a server'), r.stdout);
  assert.match(r.stdout, /prerequisites missing: no server binary/);
  // Passing tests and their output stay out of the report.
  assert.doesNotMatch(r.stdout, /adds numbers|reads a header|chatter of a passing file/);
  // node's closing counts, one per line, last.
  const tail = lines.filter((l) => l.startsWith('# '));
  assert.ok(tail.includes('# pass 3'), tail.join('\n'));
  assert.ok(tail.includes('# fail 2'), tail.join('\n'));
  assert.ok(tail.includes('# skipped 1'), tail.join('\n'));
  assert.ok(tail.includes('# cancelled 1'), tail.join('\n'));
  assert.match(lines.filter((l) => l).at(-1) ?? '', /^# duration_ms /);

  // TAP stays available, and reports the same run.
  const tap = run(dir, '--test-reporter=tap');
  assert.equal(tap.status, 1);
  assert.match(tap.stdout, /^ok \d+ - adds numbers$/m);
  assert.match(tap.stdout, /^# pass 3$/m);
});

test('a file whose process outlives its tests: the exit watch names the open handle; without it, the timeout is shown', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'reporter-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, 'leak.test.mjs'),
    `import { createServer } from 'node:net';
import { test } from 'node:test';
test('leaves a server listening', () => { createServer().listen(0, '127.0.0.1'); });
`,
  );
  const env: NodeJS.ProcessEnv = { ...process.env, PALIGEMMA_TEST_EXIT_GRACE_MS: '300' };
  delete env.NODE_TEST_CONTEXT;
  const spawnRun = (...extra: string[]) =>
    spawnSync(process.execPath, [...extra, '--test', `--test-reporter=${REPORTER}`, 'leak.test.mjs'], { cwd: dir, env, encoding: 'utf8', timeout: 60_000 });

  const watched = spawnRun(`--import=${join(ROOT, '.ci/test-exit-watch.mjs')}`, '--test-timeout=30000');
  assert.equal(watched.status, 1, watched.stderr);
  assert.match(watched.stdout, /^✖ leak\.test\.mjs: 1 passed, the file failed/m);
  assert.match(watched.stdout, /still running 300 ms after its last test/);
  assert.match(watched.stdout, /handle: Server \{"address":"127\.0\.0\.1"/);

  const unwatched = spawnRun('--test-timeout=1000');
  assert.equal(unwatched.status, 1, unwatched.stderr);
  assert.match(unwatched.stdout, /✖ the file as a whole\n[^]*timed out after 1000ms/);
});
