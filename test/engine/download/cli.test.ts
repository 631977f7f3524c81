import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { startHubServer, type HubServer } from './hub-server.js';

const main = fileURLToPath(new URL('../../../daemon/cli/main.js', import.meta.url));
let hub: HubServer;
let dir: string;

before(async () => {
  hub = await startHubServer({
    'acme/tiny': {
      commit: 'b'.repeat(40),
      files: {
        'config.json': { content: Buffer.from('{}') },
        'empty.json': { content: Buffer.alloc(0) },
        'onnx/vision_encoder_q4.onnx': { content: Buffer.alloc(3000, 1), lfs: true },
        'onnx/embed_tokens_q4.onnx': { content: Buffer.alloc(2000, 2), lfs: true },
        'onnx/decoder_model_merged_q4.onnx': { content: Buffer.alloc(1000, 3), lfs: true },
      },
    },
    'acme/gated': {
      commit: 'd'.repeat(40),
      files: { 'config.json': { content: Buffer.from('{}') }, 'model.safetensors': { content: Buffer.alloc(100), lfs: true } },
      gatedAllow: ['hf_x'],
    },
  });
  dir = mkdtempSync(join(tmpdir(), 'pg-dlcli-'));
});
after(async () => {
  await hub.close();
  rmSync(dir, { recursive: true, force: true });
});

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [main, ...args], { env: { ...process.env, HF_ENDPOINT: hub.url, HF_TOKEN: '' }, timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

test('paligemma download installs the only variant and prints its folder', async () => {
  const r = await run(['download', 'acme/tiny', '--models-dir', dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), join(dir, 'acme--tiny--q4'));
  assert.match(r.stderr, /installed acme\/tiny@bbbbbbbbbbbb/);
  assert.deepEqual(readdirSync(join(dir, 'acme--tiny--q4')).sort(), ['config.json', 'download.json', 'empty.json', 'onnx']);
});

test('paligemma download --json reports progress and the result as JSON lines', async () => {
  const other = join(dir, 'json');
  const r = await run(['download', 'acme/tiny', '--models-dir', other, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const last = lines.at(-1);
  assert.equal(last.result.path, join(other, 'acme--tiny--q4'));
  assert.equal(last.result.totalBytes, 6002);
  const progress = lines.filter((l) => l.progress).map((l) => l.progress);
  assert.ok(progress.some((p) => p.phase === 'download' && p.file === 'onnx/vision_encoder_q4.onnx' && p.fileBytes === 3000));
  const failed = await run(['download', 'acme/tiny', '--models-dir', other, '--json', '--variant', 'fp16']);
  assert.equal(failed.code, 1);
  assert.equal(JSON.parse(failed.stdout.trim().split('\n').at(-1)!).error.reason, 'no-variant');
});

test('paligemma download explains a gated repo and exits 1; bad usage exits 2', async () => {
  const r = await run(['download', 'acme/gated', '--models-dir', dir]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /accept its license at .*acme\/gated/);
  assert.equal((await run(['download'])).code, 2);
  assert.equal((await run(['download', 'acme/tiny', '--bogus'])).code, 2);
});
