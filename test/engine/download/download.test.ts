import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, beforeEach, test } from 'node:test';
import { downloadModel, DownloadError, type DownloadOptions } from '../../../daemon/engine/download/index.js';
import type { DownloadProgress } from '../../../daemon/protocol.js';
import { startHubServer, type FixtureRepo, type HubServer } from './hub-server.js';

// Deterministic pseudo-random bytes, so that a wrong offset shows up as wrong content.
function bytes(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
const text = (s: string) => ({ content: Buffer.from(s) });
const lfs = (n: number, seed: number) => ({ content: bytes(n, seed), lfs: true });

const COMMIT = 'a'.repeat(8) + createHash('sha1').update('onnx').digest('hex').slice(8);
const onnxRepo: FixtureRepo = {
  commit: COMMIT,
  files: {
    '.gitattributes': text('*.onnx filter=lfs\n'),
    'README.md': text('# tiny\n'),
    'config.json': text('{"model_type":"paligemma"}\n'),
    'tokenizer.json': text('{"model":{}}\n'),
    'onnx/vision_encoder.onnx': lfs(30_000, 1),
    'onnx/embed_tokens.onnx': lfs(20_000, 2),
    'onnx/decoder_model_merged.onnx': lfs(10_000, 3),
    'onnx/decoder_model_merged.onnx_data': lfs(400_000, 4),
    'onnx/vision_encoder_fp16.onnx': lfs(15_000, 5),
    'onnx/embed_tokens_fp16.onnx': lfs(10_000, 6),
    'onnx/decoder_model_merged_fp16.onnx': lfs(5_000, 7),
    'onnx/decoder_model_merged_fp16.onnx_data': lfs(200_000, 8),
  },
};
const ckptRepo: FixtureRepo = {
  commit: 'c'.repeat(40),
  files: {
    'config.json': text('{"model_type":"paligemma"}\n'),
    'model.safetensors': lfs(120_000, 9),
    'tokenizer.json': text('{}\n'),
    'README.md': text('gated\n'),
  },
  gatedAllow: ['hf_allowed'],
};
const FP16 = [
  'config.json',
  'onnx/decoder_model_merged_fp16.onnx',
  'onnx/decoder_model_merged_fp16.onnx_data',
  'onnx/embed_tokens_fp16.onnx',
  'onnx/vision_encoder_fp16.onnx',
  'tokenizer.json',
];

let hub: HubServer;
let root: string;
let models: string;

before(async () => {
  delete process.env.HF_TOKEN;
  delete process.env.HF_ENDPOINT;
  hub = await startHubServer({ 'onnx-community/tiny-pg': onnxRepo, 'google/tiny-gated': ckptRepo });
  root = mkdtempSync(join(tmpdir(), 'pg-dl-'));
});
after(async () => {
  await hub.close();
  rmSync(root, { recursive: true, force: true });
});
beforeEach(() => {
  models = mkdtempSync(join(root, 'models-'));
  hub.requests.length = 0;
  hub.cutOnce.clear();
  hub.corrupt.clear();
  hub.ignoreRange.clear();
});

const opts = (extra: Partial<DownloadOptions> = {}): DownloadOptions => ({
  repo: 'onnx-community/tiny-pg',
  variant: 'fp16',
  modelsDir: models,
  hubUrl: hub.url,
  retries: 0,
  retryDelayMs: 1,
  convert: null,
  ...extra,
});

function tree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

/** The models folder holds complete models only; in-progress state stays under .downloads. */
function installedModels(): string[] {
  return readdirSync(models)
    .filter((n) => n !== '.downloads')
    .sort();
}

test('downloads one variant through the redirect, verifies it and installs it in one rename', async () => {
  const events: DownloadProgress[] = [];
  const result = await downloadModel(opts({ onProgress: (p) => events.push(p) }));
  const target = join(models, 'onnx-community--tiny-pg--fp16');
  assert.equal(result.path, target);
  assert.equal(result.commit, COMMIT);
  assert.equal(result.layout, 'onnx-community');
  assert.equal(result.converted, true);
  const total = FP16.reduce((a, p) => a + onnxRepo.files[p].content.length, 0);
  assert.equal(result.totalBytes, total);
  assert.equal(result.downloadedBytes, total);
  assert.deepEqual(tree(target), [...FP16, 'download.json'].sort());
  for (const p of FP16) assert.ok(readFileSync(join(target, p)).equals(onnxRepo.files[p].content), p);
  const record = JSON.parse(readFileSync(join(target, 'download.json'), 'utf8'));
  assert.equal(record.commit, COMMIT);
  assert.equal(record.variant, 'fp16');
  assert.deepEqual(tree(join(models, '.downloads')), []);
  // LFS files came from the CDN path the resolve route redirected to; pinned to the commit.
  assert.ok(hub.requests.some((r) => r.path.startsWith('/cdn/')));
  assert.ok(hub.requests.filter((r) => r.path.includes('/resolve/')).every((r) => r.path.includes(`/resolve/${COMMIT}/`)));
  // Progress: overall bytes never go down and end at the total; per-file totals are the sizes.
  const dl = events.filter((e) => e.phase === 'download');
  for (let i = 1; i < dl.length; i++) assert.ok(dl[i].bytes >= dl[i - 1].bytes);
  assert.equal(dl.at(-1)!.bytes, total);
  assert.ok(dl.every((e) => e.total === total && e.fileTotal === onnxRepo.files[e.file!].content.length));
  assert.equal(events.at(-1)!.phase, 'done');

  // Again: nothing is fetched, the installed copy is reported.
  hub.requests.length = 0;
  const again = await downloadModel(opts());
  assert.equal(again.alreadyInstalled, true);
  assert.ok(!hub.requests.some((r) => r.path.includes('/resolve/') || r.path.startsWith('/cdn/')));
});

test('a connection cut mid-file leaves only a .part, and the next run resumes from it', async () => {
  const file = 'onnx/decoder_model_merged_fp16.onnx_data';
  hub.cutOnce.set(`onnx-community/tiny-pg/${file}`, 70_000);
  await assert.rejects(downloadModel(opts()), (e) => e instanceof DownloadError && e.reason === 'network');
  assert.deepEqual(installedModels(), []);
  const parts = tree(join(models, '.downloads')).filter((p) => p.endsWith('.part'));
  assert.equal(parts.length, 1);
  const partSize = statSync(join(models, '.downloads', parts[0])).size;
  assert.ok(partSize > 0 && partSize <= 70_000, `kept ${partSize} bytes`);

  hub.requests.length = 0;
  const result = await downloadModel(opts());
  const resumed = hub.requests.find((r) => r.path.startsWith('/cdn/') && r.range && r.range !== 'bytes=0-0');
  assert.equal(resumed?.range, `bytes=${partSize}-`);
  // The other files (listed before it) were complete after the first run: only the rest of this one is fetched.
  assert.equal(result.downloadedBytes, onnxRepo.files[file].content.length - partSize);
  assert.ok(readFileSync(join(result.path, file)).equals(onnxRepo.files[file].content));
  assert.deepEqual(tree(join(models, '.downloads')), []);
});

test('with retries, a cut connection resumes within the same call', async () => {
  hub.cutOnce.set('onnx-community/tiny-pg/onnx/vision_encoder_fp16.onnx', 4_000);
  const messages: string[] = [];
  const result = await downloadModel(opts({ retries: 2, onProgress: (p) => p.message && messages.push(p.message) }));
  assert.ok(messages.some((m) => /resuming \(1\/2\)/.test(m)));
  assert.ok(readFileSync(join(result.path, 'onnx/vision_encoder_fp16.onnx')).equals(onnxRepo.files['onnx/vision_encoder_fp16.onnx'].content));
});

test('a server that ignores the range on resume is downloaded again from byte 0', async () => {
  const file = 'onnx/decoder_model_merged_fp16.onnx_data';
  hub.cutOnce.set(`onnx-community/tiny-pg/${file}`, 50_000);
  await assert.rejects(downloadModel(opts()));
  hub.ignoreRange.add(`onnx-community/tiny-pg/${file}`);
  const result = await downloadModel(opts());
  assert.ok(readFileSync(join(result.path, file)).equals(onnxRepo.files[file].content));
});

test('a sha256 mismatch deletes the corrupt download and installs nothing', async () => {
  hub.corrupt.add('onnx-community/tiny-pg/onnx/embed_tokens_fp16.onnx');
  await assert.rejects(downloadModel(opts()), (e) => e instanceof DownloadError && e.reason === 'integrity' && /sha256 mismatch/.test(e.message));
  assert.deepEqual(installedModels(), []);
  assert.ok(!tree(join(models, '.downloads')).some((p) => p.includes('embed_tokens')));
});

test('a git file whose blob sha1 does not match is refused too', async () => {
  hub.corrupt.add('onnx-community/tiny-pg/config.json');
  await assert.rejects(downloadModel(opts()), (e) => e instanceof DownloadError && e.reason === 'integrity' && /sha1 mismatch/.test(e.message));
  assert.deepEqual(installedModels(), []);
});

test('not enough disk space stops before any byte is written', async () => {
  const statfs = async () => ({ bavail: 10, bsize: 4096 });
  await assert.rejects(downloadModel(opts({ statfs })), (e) => e instanceof DownloadError && e.reason === 'disk-space' && /needs .* free/.test(e.message));
  assert.ok(!hub.requests.some((r) => r.path.startsWith('/cdn/')));
  assert.deepEqual(installedModels(), []);
  assert.deepEqual(
    tree(join(models, '.downloads')).filter((p) => !p.endsWith('.lock')),
    [],
  );
});

test('gated repo: 401 without a token and 403 without access explain what to do', async () => {
  const gated = { repo: 'google/tiny-gated', variant: undefined };
  await assert.rejects(
    downloadModel(opts(gated)),
    (e) =>
      e instanceof DownloadError &&
      e.reason === 'unauthorized' &&
      e.message.includes(`${hub.url}/google/tiny-gated`) &&
      /accept its license/.test(e.message) &&
      /HF_TOKEN/.test(e.message),
  );
  await assert.rejects(
    downloadModel(opts({ ...gated, token: 'hf_not_on_the_list' })),
    (e) => e instanceof DownloadError && e.reason === 'gated' && /accept the license/.test(e.message),
  );
  assert.deepEqual(installedModels(), []);
  await assert.rejects(downloadModel(opts({ ...gated, token: 'sk-foo' })), /must start with hf_/);
});

test('a checkpoint is installed unconverted while no converter is given, then converted when one is', async () => {
  const base = { repo: 'google/tiny-gated', variant: undefined, token: 'hf_allowed' };
  const raw = await downloadModel(opts(base));
  assert.equal(raw.layout, 'checkpoint');
  assert.equal(raw.converted, false);
  assert.equal(raw.pending, 'convert');
  assert.deepEqual(tree(raw.path), ['config.json', 'download.json', 'model.safetensors', 'tokenizer.json']);
  // The token goes with every request to the Hub's resolve route.
  assert.ok(hub.requests.filter((r) => r.path.includes('/resolve/')).every((r) => r.authorization === 'Bearer hf_allowed'));

  const seen: string[][] = [];
  const convert = async (input: string, output: string) => {
    seen.push(tree(input));
    mkdirSync(output, { recursive: true });
    writeFileSync(join(output, 'manifest.json'), '{}');
  };
  const done = await downloadModel(opts({ ...base, convert, force: true }));
  assert.equal(done.converted, true);
  assert.deepEqual(seen, [['config.json', 'model.safetensors', 'tokenizer.json']]);
  assert.deepEqual(tree(done.path), ['download.json', 'manifest.json']);
  assert.deepEqual(tree(join(models, '.downloads')), []);
});

test('a failed conversion keeps the download for the next try and installs nothing', async () => {
  const base = { repo: 'google/tiny-gated', variant: undefined, token: 'hf_allowed' };
  const broken = async (_in: string, out: string) => {
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'half.onnx'), 'x');
    throw new Error('unsupported architecture');
  };
  await assert.rejects(
    downloadModel(opts({ ...base, convert: broken })),
    (e) => e instanceof DownloadError && e.reason === 'convert' && /unsupported architecture/.test(e.message),
  );
  assert.deepEqual(installedModels(), []);
  assert.deepEqual(
    tree(join(models, '.downloads')).map((p) => p.split('/').slice(1).join('/')),
    ['config.json', 'model.safetensors', 'tokenizer.json'],
  );
  hub.requests.length = 0;
  const ok = await downloadModel(
    opts({
      ...base,
      convert: async (_i, out) => {
        mkdirSync(out);
        writeFileSync(join(out, 'manifest.json'), '{}');
      },
    }),
  );
  assert.equal(ok.downloadedBytes, 0);
  assert.ok(!hub.requests.some((r) => r.path.startsWith('/cdn/')));
});

test('404s: unknown repo, unknown revision', async () => {
  await assert.rejects(downloadModel(opts({ repo: 'nobody/nothing' })), (e) => e instanceof DownloadError && e.reason === 'not-found' && e.code === 'not-found');
  await assert.rejects(downloadModel(opts({ revision: 'v9' })), (e) => e instanceof DownloadError && e.reason === 'not-found');
  await assert.rejects(downloadModel(opts({ repo: '../etc' })), (e) => e instanceof DownloadError && e.reason === 'bad-repo');
});

test('an occupied install folder is left alone unless forced', async () => {
  const target = join(models, 'onnx-community--tiny-pg--fp16');
  mkdirSync(target);
  writeFileSync(join(target, 'mine.txt'), 'keep');
  await assert.rejects(downloadModel(opts()), (e) => e instanceof DownloadError && e.reason === 'exists');
  assert.deepEqual(tree(target), ['mine.txt']);
  const forced = await downloadModel(opts({ force: true }));
  assert.deepEqual(tree(forced.path), [...FP16, 'download.json'].sort());
  assert.deepEqual(installedModels(), ['onnx-community--tiny-pg--fp16']);
});

test('cancelling stops the download and keeps what arrived for a resume', async () => {
  const controller = new AbortController();
  const p = downloadModel(
    opts({
      signal: controller.signal,
      onProgress: (e) => {
        if (e.file?.endsWith('.onnx_data') && (e.fileBytes ?? 0) > 0) controller.abort();
      },
    }),
  );
  await assert.rejects(p, (e) => e instanceof DownloadError && e.reason === 'cancelled');
  assert.deepEqual(installedModels(), []);
  assert.ok(tree(join(models, '.downloads')).some((f) => f.endsWith('.onnx_data.part')));
  const result = await downloadModel(opts());
  assert.ok(readFileSync(join(result.path, 'onnx/decoder_model_merged_fp16.onnx_data')).equals(onnxRepo.files['onnx/decoder_model_merged_fp16.onnx_data'].content));
});

test('a real checkpoint (the tiny PaliGemma fixture) is downloaded and converted into a model folder', async () => {
  const fixture = fileURLToPath(new URL('../../../../test/fixtures/tiny-paligemma-224/', import.meta.url));
  const files: FixtureRepo['files'] = {};
  for (const name of readdirSync(fixture)) {
    files[name] = { content: readFileSync(join(fixture, name)), lfs: name.endsWith('.safetensors') || name.endsWith('.png') || name.endsWith('.jpg') };
  }
  const local = await startHubServer({ 'tiny/paligemma-224': { commit: 'e'.repeat(40), files } });
  try {
    const phases = new Set<string>();
    const r = await downloadModel({ repo: 'tiny/paligemma-224', modelsDir: models, hubUrl: local.url, retries: 0, onProgress: (p) => phases.add(p.phase) });
    assert.equal(r.converted, true);
    assert.equal(r.path, join(models, 'tiny--paligemma-224--fp32'));
    assert.ok(phases.has('convert'));
    const manifest = JSON.parse(readFileSync(join(r.path, 'manifest.json'), 'utf8'));
    assert.equal(manifest.name, 'tiny/paligemma-224');
    assert.equal(manifest.dtype, 'fp32');
    for (const f of Object.values(manifest.files as Record<string, string>)) assert.ok(existsSync(join(r.path, f)), f);
    // Images and golden.json are not part of a checkpoint download; the downloaded checkpoint is gone.
    assert.ok(!local.requests.some((q) => /\.(png|jpg)$/.test(q.path)));
    assert.deepEqual(tree(join(models, '.downloads')), []);
    // int4-cpu: int4 with int8 compute (accuracy level 4), installed beside the fp32 conversion
    const cpu = await downloadModel({ repo: 'tiny/paligemma-224', modelsDir: models, hubUrl: local.url, retries: 0, dtype: 'int4-cpu' });
    assert.equal(cpu.path, join(models, 'tiny--paligemma-224--int4-cpu'));
    const m4 = JSON.parse(readFileSync(join(cpu.path, 'manifest.json'), 'utf8'));
    assert.equal(m4.dtype, 'int4');
    assert.equal(m4.converter.int4.accuracyLevel, 4);
    assert.ok(existsSync(join(r.path, 'manifest.json')), 'the fp32 conversion is still there');
    // int4-cpu-v8: int4-cpu with an int8 vision tower
    const v8 = await downloadModel({ repo: 'tiny/paligemma-224', modelsDir: models, hubUrl: local.url, retries: 0, dtype: 'int4-cpu-v8' });
    assert.equal(v8.path, join(models, 'tiny--paligemma-224--int4-cpu-v8'));
    const m8 = JSON.parse(readFileSync(join(v8.path, 'manifest.json'), 'utf8'));
    assert.deepEqual([m8.dtype, m8.converter.int4.accuracyLevel, m8.converter.weights.vision], ['int4', 4, 'int8']);
    // int8: the converter's int8 (layers, vision tower and table)
    const i8 = await downloadModel({ repo: 'tiny/paligemma-224', modelsDir: models, hubUrl: local.url, retries: 0, dtype: 'int8' });
    const mi8 = JSON.parse(readFileSync(join(i8.path, 'manifest.json'), 'utf8'));
    assert.deepEqual([mi8.dtype, mi8.converter.weights, mi8.converter.int8], ['int8', { vision: 'int8', decoder: 'int8' }, { tableBlockSize: 32, accuracyLevel: 4 }]);
  } finally {
    await local.close();
  }
});

test('the token goes to the Hub but not to the storage host a redirect leads to', async () => {
  const cdn = await startHubServer({ 'google/tiny-gated': ckptRepo });
  const origin = await startHubServer({ 'google/tiny-gated': ckptRepo }, { cdnBase: cdn.url });
  try {
    const r = await downloadModel(opts({ repo: 'google/tiny-gated', variant: undefined, token: 'hf_allowed', hubUrl: origin.url }));
    assert.ok(readFileSync(join(r.path, 'model.safetensors')).equals(ckptRepo.files['model.safetensors'].content));
    const fromCdn = cdn.requests.filter((q) => q.path.startsWith('/cdn/'));
    assert.ok(fromCdn.length > 0);
    assert.ok(
      fromCdn.every((q) => q.authorization === undefined),
      JSON.stringify(fromCdn),
    );
    assert.ok(origin.requests.filter((q) => q.path.includes('/resolve/')).every((q) => q.authorization === 'Bearer hf_allowed'));
  } finally {
    await origin.close();
    await cdn.close();
  }
});
