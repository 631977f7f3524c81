// The CLI for people and scripts, run as a real process against a daemon it starts itself on a
// per-test runtime folder ($PALIGEMMA_RUNTIME_DIR), with the real tiny model.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cleanupScratch, images, isAlive, runCli, tempDir, tinyModel, waitFor } from '../server/daemon.js';

let env: NodeJS.ProcessEnv;
let model: string;

before(async () => {
  model = await tinyModel();
  env = { ...process.env, PALIGEMMA_RUNTIME_DIR: await tempDir('pg-cli-'), PALIGEMMA_MODEL: '' };
});

after(async () => {
  await runCli(['stop'], env);
  await cleanupScratch();
});

const lines = (s: string) =>
  s
    .trim()
    .split('\n')
    .filter((l) => l)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

test('status says "not running" (exit 3) before any daemon exists', async () => {
  const r = await runCli(['status'], env);
  assert.equal(r.code, 3);
  assert.match(r.stdout, /^not running/);
});

test('caption starts the daemon, prints progress on stderr and JSON lines on stdout', async () => {
  const r = await runCli(['caption', images.shapes, images.wide, '--json', '--model', model, '--max-tokens', '6'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /starting the PaliGemma daemon/);
  assert.match(r.stderr, /\[1\/2\] .*shapes\.png\n(.*\n)*\[2\/2\] .*wide\.jpg/);
  const out = lines(r.stdout);
  assert.deepEqual(
    out.map((o) => o.image),
    [images.shapes, images.wide],
  );
  for (const o of out) {
    assert.equal(o.model, 'tiny-paligemma-224');
    assert.equal(typeof o.text, 'string');
    assert.equal(o.cached, false);
  }
});

test('ocr, ask, detect and segment go through the same daemon', async () => {
  const before = JSON.parse((await runCli(['status', '--json'], env)).stdout) as { pid: number };
  const runs: Array<[string[], string]> = [
    [['ocr', images.gradient, '--json', '--max-tokens', '6'], 'text'],
    [['ask', images.gradient, '--question', 'what color is the circle?', '--json', '--max-tokens', '6'], 'text'],
    [['detect', images.wide, '--object', 'circle', '--object', 'red square', '--json'], 'objects'],
    [['segment', images.wide, '--object', 'circle', '--json'], 'objects'],
  ];
  for (const [args, field] of runs) {
    const r = await runCli(args, env);
    assert.equal(r.code, 0, `${args[0]}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /starting/);
    const [o] = lines(r.stdout);
    assert.ok(field in o, `${args[0]} prints ${field}`);
  }
  const afterStatus = JSON.parse((await runCli(['status', '--json'], env)).stdout) as { pid: number; cache: { entries: number } };
  assert.equal(afterStatus.pid, before.pid);
  assert.ok(afterStatus.cache.entries >= 6);
});

test('plain output prints the text; a second identical call is cached', async () => {
  const first = await runCli(['caption', images.shapes, '--max-tokens', '6'], env);
  assert.equal(first.code, 0, first.stderr);
  const json = lines((await runCli(['caption', images.shapes, '--max-tokens', '6', '--json'], env)).stdout)[0];
  assert.equal(first.stdout, `${json.text}\n`);
  assert.equal(json.cached, true);
});

test('a bad image fails with its message and exit 1; the other images are still answered', async () => {
  const missing = join(images.shapes, '..', 'no-such.png');
  const r = await runCli(['ocr', missing, images.shapes, '--json', '--max-tokens', '6'], env);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /paligemma ocr: image not found: .*no-such\.png\n/);
  const [bad, good] = lines(r.stdout);
  assert.equal((bad.error as { code: number }).code, -32001);
  assert.equal(typeof good.text, 'string');
});

test('usage errors exit 2 without touching the daemon', async () => {
  for (const args of [
    ['detect', images.shapes],
    ['ask', images.shapes],
    ['caption'],
    ['segment', images.shapes, '--object', 'a', '--object', 'b'],
    ['ocr', images.shapes, '--max-tokens', 'lots'],
  ]) {
    const r = await runCli(args, env);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, /usage: paligemma/);
  }
});

test('after the daemon is killed, the next command starts a fresh one; stop stops it', async () => {
  const { pid } = JSON.parse((await runCli(['status', '--json'], env)).stdout) as { pid: number };
  process.kill(pid, 'SIGKILL');
  await waitFor(() => !isAlive(pid), 5000, 'the daemon to die');
  const r = await runCli(['caption', images.gradient, '--json', '--model', model, '--max-tokens', '4'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /starting the PaliGemma daemon/);
  const s = JSON.parse((await runCli(['status', '--json'], env)).stdout) as { pid: number; running: boolean };
  assert.equal(s.running, true);
  assert.notEqual(s.pid, pid);
  const stop = await runCli(['stop'], env);
  assert.equal(stop.code, 0);
  assert.equal(stop.stdout, `stopped (pid ${s.pid})\n`);
  assert.equal((await runCli(['status'], env)).code, 3);
});
