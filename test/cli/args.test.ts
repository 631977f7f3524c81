// daemon/cli/args.ts: the argument handling every `paligemma` command shares.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { choiceOption, integerOption, runCommand, UsageError } from '../../daemon/cli/args.js';

/** Runs `fn` with stdout and stderr captured. */
async function captured(fn: () => Promise<number>): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const write = { out: process.stdout.write, err: process.stderr.write };
  process.stdout.write = ((s: string) => out.push(s) > 0) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => err.push(s) > 0) as typeof process.stderr.write;
  try {
    const code = await fn();
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = write.out;
    process.stderr.write = write.err;
  }
}

const USAGE = 'usage: paligemma probe <file> [--max-tokens N] [--json]\n';
const spec = { name: 'probe', usage: USAGE, options: { 'max-tokens': { type: 'string' }, json: { type: 'boolean', default: false } } } as const;

test('the command gets the values and positionals; its exit code is returned', async () => {
  let seen: unknown;
  const r = await captured(() =>
    runCommand(spec, ['a.png', '--max-tokens', '12', 'b.png', '--json'], async (values, positionals) => {
      seen = { maxTokens: integerOption(values['max-tokens'], 'max-tokens', 1), json: values.json, positionals };
      return 7;
    }),
  );
  assert.equal(r.code, 7);
  assert.deepEqual(seen, { maxTokens: 12, json: true, positionals: ['a.png', 'b.png'] });
  assert.equal(r.stdout + r.stderr, '');
});

test('--help and -h print the usage on stdout and exit 0 without running', async () => {
  for (const flag of ['--help', '-h']) {
    const r = await captured(() => runCommand(spec, ['x', flag], async () => assert.fail('ran')));
    assert.deepEqual(r, { code: 0, stdout: USAGE, stderr: '' });
  }
});

test('an unknown option or a missing value: the reason and the usage on stderr, exit 2', async () => {
  const unknown = await captured(() => runCommand(spec, ['--max-new-tokens', '5'], async () => assert.fail('ran')));
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^paligemma probe: .*--max-new-tokens/);
  assert.ok(unknown.stderr.endsWith(USAGE));
  const missing = await captured(() => runCommand(spec, ['--max-tokens'], async () => assert.fail('ran')));
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^paligemma probe: .*--max-tokens/);
});

test('a UsageError from the command exits 2 with its message (the usage only when asked); other errors propagate', async () => {
  const bad = await captured(() => runCommand(spec, ['--max-tokens', '0'], async (v) => integerOption(v['max-tokens'], 'max-tokens', 1) ?? 0));
  assert.deepEqual(bad, { code: 2, stdout: '', stderr: "paligemma probe: --max-tokens must be a positive integer, got '0'\n" });
  const withUsage = await captured(() =>
    runCommand(spec, [], async () => {
      throw new UsageError('expected <file>', true);
    }),
  );
  assert.equal(withUsage.stderr, `paligemma probe: expected <file>\n${USAGE}`);
  await assert.rejects(
    runCommand(spec, [], async () => {
      throw new Error('disk full');
    }),
    /disk full/,
  );
});

test('usageOnEveryError: a bad value prints the usage as well', async () => {
  const r = await captured(() => runCommand({ ...spec, usageOnEveryError: true }, ['--max-tokens', 'lots'], async (v) => integerOption(v['max-tokens'], 'max-tokens', 1) ?? 0));
  assert.deepEqual(r, { code: 2, stdout: '', stderr: `paligemma probe: --max-tokens must be a positive integer, got 'lots'\n${USAGE}` });
});

test('integerOption: integers from the minimum up, the fallback when absent', () => {
  assert.equal(integerOption('0', 'seed', 0), 0);
  assert.equal(integerOption('42', 'layers', 1), 42);
  assert.equal(integerOption(undefined, 'runs', 1), undefined);
  assert.equal(integerOption(undefined, 'runs', 1, 3), 3);
  for (const bad of ['-1', '1.5', 'abc', '', ' ', '1e400']) {
    assert.throws(
      () => integerOption(bad, 'seed', 0),
      (e) => e instanceof UsageError && e.message === `--seed must be a non-negative integer, got '${bad}'`,
    );
  }
  assert.throws(() => integerOption('1', 'batch', 2), /--batch must be an integer >= 2, got '1'/);
});

test('choiceOption: one of the listed values (strings or numbers), named in the error', () => {
  assert.equal(choiceOption('fp16', 'dtype', ['fp32', 'fp16', 'int4']), 'fp16');
  assert.equal(choiceOption('4', 'accuracy-level', [0, 1, 2, 3, 4] as const), 4);
  assert.equal(choiceOption(undefined, 'dtype', ['fp32']), undefined);
  assert.throws(
    () => choiceOption('int8', 'dtype', ['fp32', 'fp16', 'int4']),
    (e) => e instanceof UsageError && e.message === "--dtype must be fp32, fp16 or int4, got 'int8'",
  );
  assert.throws(() => choiceOption('5', 'accuracy-level', [0, 4]), /--accuracy-level must be 0 or 4, got '5'/);
});
