// `paligemma bench --peer transformers.js` on a tiny export: both sides run in their own processes
// and the one JSON line has each side's fields; `generate` on that layout says its attention is
// approximate, on stderr and in --json.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { medianRow, ratios, SIDE_FIELDS, type SideRow } from '../../daemon/cli/benchPeer.js';
import { convert } from '../../daemon/engine/convert/index.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const CLI = join(ROOT, 'out/daemon/cli/main.js');
const run = promisify(execFile);

let root: string;
let exported: string;
let native: string;
before(async () => {
  root = mkdtempSync(join(tmpdir(), 'pg-bench-peer-'));
  exported = join(root, 'tiny-tjs');
  native = join(root, 'tiny');
  await convert({ input: join(ROOT, 'test/fixtures/tiny-paligemma-224'), output: exported, dtype: 'fp32', layout: 'transformers.js' });
  await convert({ input: join(ROOT, 'test/fixtures/tiny-paligemma-224'), output: native, dtype: 'fp32' });
});

const peerArgs = (...more: string[]) => [
  CLI,
  'bench',
  '--peer',
  'transformers.js',
  '--model',
  exported,
  '--dtype',
  'fp32',
  '--ep',
  'cpu',
  '--threads',
  '1',
  '--new-tokens',
  '4',
  '--runs',
  '1',
  '--processes',
  '1',
  '--json',
  ...more,
];
after(() => rmSync(root, { recursive: true, force: true }));

const row = (v: number): SideRow => Object.fromEntries(SIDE_FIELDS.map((k) => [k, v])) as SideRow;

test('medians per field over processes; ratios are peer time over ours, memory ours over peer', () => {
  const m = medianRow([row(1), row(9), row(4)]);
  assert.deepEqual(m, row(4));
  const r = ratios({ ...row(2), peak_rss_mb: 100 }, { ...row(3), peak_rss_mb: 110 });
  assert.equal(r.cold, 1.5);
  assert.equal(r.request, 1.5);
  assert.equal(r.peak_rss_ours_over_peer, 0.909);
});

test('bench --peer transformers.js prints one line with both sides measured', async () => {
  const { stdout } = await run(process.execPath, peerArgs());
  const lines = stdout.trim().split('\n');
  const result = JSON.parse(lines.at(-1)!) as Record<string, unknown> & { ours: Record<string, unknown>; peer: Record<string, unknown>; ratios: Record<string, number> };
  for (const side of [result.ours, result.peer]) {
    for (const k of SIDE_FIELDS) assert.ok(typeof side[k] === 'number' && (side[k] as number) > 0, `${k}: ${side[k]}`);
    // cold: process start to the end of the first request, so more than the load alone
    assert.ok((side.cold_ms as number) > (side.load_ms as number));
  }
  assert.equal(result.peer.runtime, 'transformers.js');
  assert.equal(result.peer.onnxruntime, '1.30.0');
  assert.equal(result.ours.onnxruntime, '1.29.0');
  assert.ok(Array.isArray(result.ours.warnings) && /approximate attention/.test(String(result.ours.warnings[0])));
  assert.equal(result.ratios.cold, Math.round(((result.peer.cold_ms as number) / (result.ours.cold_ms as number)) * 1000) / 1000);
  assert.ok((result.decode_bytes_per_token as number) > (result.decode_weight_bytes as number));
  assert.ok((result.copy_gb_per_s as number) > 0);
});

test('bench --peer --ours-model: our side runs its own layout (exact attention), the peer its export', async () => {
  const { stdout } = await run(process.execPath, peerArgs('--ours-model', native));
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as { ours: Record<string, unknown>; peer: Record<string, unknown> };
  assert.equal(result.ours.layout, 'paligemma');
  assert.equal(result.ours.files, native);
  assert.equal(result.ours.vision_weights, 'fp32');
  assert.deepEqual(result.ours.warnings, []);
  for (const k of SIDE_FIELDS) assert.ok((result.peer[k] as number) > 0, `peer ${k}`);
});

test('--ours-* options need --peer, and --ours-layout needs --random', async () => {
  await assert.rejects(
    run(process.execPath, [CLI, 'bench', '--model', native, '--ours-model', native]),
    (e: { code: number; stderr: string }) => e.code === 2 && /apply only to --peer/.test(e.stderr),
  );
  await assert.rejects(run(process.execPath, peerArgs('--ours-layout', 'paligemma')), (e: { code: number; stderr: string }) => e.code === 2 && /--ours-model/.test(e.stderr));
  await assert.rejects(run(process.execPath, peerArgs('--ours-vision-dtype', 'int8')), (e: { code: number; stderr: string }) => e.code === 2 && /--ours-model/.test(e.stderr));
  await assert.rejects(run(process.execPath, peerArgs('--ours-vision-dtype', 'int4')), (e: { code: number; stderr: string }) => e.code === 2 && /ours-vision-dtype/.test(e.stderr));
});

test('bench --peer refuses another execution provider and a folder of another layout', async () => {
  await assert.rejects(run(process.execPath, [CLI, 'bench', '--peer', 'transformers.js', '--model', exported, '--ep', 'cuda', '--dtype', 'fp32']), (e: { stderr: string }) =>
    /--ep cpu/.test(e.stderr),
  );
  await assert.rejects(run(process.execPath, [CLI, 'bench', '--peer', 'transformers.js', '--model', root, '--ep', 'cpu', '--dtype', 'fp32']), (e: { stderr: string }) =>
    /not a transformers.js export/.test(e.stderr),
  );
});

test('generate on the export says its attention is approximate, on stderr and in --json', async () => {
  const image = join(ROOT, 'test/fixtures/tiny-paligemma-224/shapes.png');
  const { stdout, stderr } = await run(process.execPath, [
    CLI,
    'generate',
    '--model',
    exported,
    '--image',
    image,
    '--prompt',
    'caption en',
    '--max-tokens',
    '2',
    '--ep',
    'cpu',
    '--json',
  ]);
  assert.match(stderr, /warning: approximate attention/);
  const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as { warnings: string[] };
  assert.equal(out.warnings.length, 1);
  assert.match(out.warnings[0], /attends causally/);
});
