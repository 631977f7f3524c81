// What the CLI says when something is wrong: in the user's words, once, without onnxruntime's
// native log lines or internal error codes. Real processes, real tiny model.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { crc32, deflateSync } from 'node:zlib';
import { aboutImage } from '../../daemon/cli/tasks.js';
import { cleanupScratch, fixtureDir, images, mainJs, runCli, tempDir, tinyModel } from '../server/daemon.js';

let env: NodeJS.ProcessEnv;
let model: string;
let dir: string;

before(async () => {
  model = await tinyModel();
  dir = await tempDir('pg-text-');
  env = { ...process.env, PALIGEMMA_RUNTIME_DIR: await tempDir('pg-cli-'), PALIGEMMA_MODEL: '' };
});

after(async () => {
  await runCli(['stop'], env);
  await cleanupScratch();
});

const NATIVE = /\[[EWI]:onnxruntime|\.cc:\d+|onnxruntime::|\x1b\[/;
const CODES = /\((not-found|model-missing|model-invalid|corrupt-image|provider-unavailable)\)|\[(convert-failed|model-missing|model-invalid|invalid-params)\]/;

function png(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type), data])));
    return Buffer.concat([len, Buffer.from(type), data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(0))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

test('generate checks the image before loading the model, and names no internal code', async () => {
  const r = await runCli(['generate', '--model', join(dir, 'no-model-here'), '--image', join(dir, 'missing.png'), '--prompt', 'caption en'], env);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /missing\.png/);
  assert.doesNotMatch(r.stderr, /no-model-here/, 'the model was not looked at');
  assert.doesNotMatch(r.stderr, CODES);
});

test('a 0 x 0 PNG says so', async () => {
  const zero = join(dir, 'zero.png');
  await writeFile(zero, png(0, 0));
  const r = await runCli(['generate', '--model', model, '--image', zero, '--prompt', 'caption en'], env);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /zero\.png is 0 x 0 pixels/);
});

test('an unavailable provider is one readable line: no native onnxruntime log lines on stderr', async (t) => {
  if (existsSync('/dev/nvidiactl')) return t.skip('this machine has an NVIDIA GPU');
  const r = await runCli(['generate', '--model', model, '--image', images.shapes, '--prompt', 'caption en', '--ep', 'cuda'], env);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /the CUDA execution provider could not be loaded/);
  assert.doesNotMatch(r.stderr, NATIVE, r.stderr);
  assert.doesNotMatch(r.stderr, CODES);
});

test('convert failures carry no internal code', async () => {
  const r = await runCli(['convert', join(dir, 'no-checkpoint'), join(dir, 'out')], env);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /paligemma convert: .*no-checkpoint: no such checkpoint folder/);
  assert.doesNotMatch(r.stderr, CODES, r.stderr);
});

test('download --json reports a network failure as network', async () => {
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const r = await runCli(['download', 'onnx-community/paligemma2-3b-pt-224', '--json'], {
    ...env,
    HF_ENDPOINT: `http://127.0.0.1:${port}`,
    PALIGEMMA_MODELS_DIR: join(dir, 'models'),
  });
  assert.equal(r.code, 1);
  const last = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  assert.equal(last.error.reason, 'network');
  assert.equal(last.error.code, 'network');
});

test("relative image paths are resolved against the CLI's working directory, and an error names the image once", async () => {
  const run = (args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [mainJs, ...args], { env, cwd: fixtureDir, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  const ok = await run(['caption', 'shapes.png', '--json', '--model', model, '--max-tokens', '3', '--quiet']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(JSON.parse(ok.stdout).image, 'shapes.png');
  const bad = await run(['caption', 'nope.png', '--model', model, '--quiet']);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr.split('nope.png').length - 1, 1, bad.stderr);
  assert.match(bad.stderr, /^paligemma caption: image not found: nope\.png\n$/);
});

test('aboutImage names the image once, as typed', () => {
  assert.equal(aboutImage('a.png', `image not found: ${join(process.cwd(), 'a.png')}`), 'image not found: a.png');
  assert.equal(aboutImage('a.png', 'the daemon is busy'), 'a.png: the daemon is busy');
});
