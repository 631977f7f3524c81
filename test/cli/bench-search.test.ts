// `paligemma bench --decode-loop search` as a real process on the tiny model: the row says which
// loop ran, and a request is two session runs (vision, then one GreedySearch run) where the host
// loop makes one per token.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, test } from 'node:test';
import { cleanupScratch, mainJs, tinyModel } from '../server/daemon.js';

function bench(model: string, loop: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const args = ['bench', '--model', model, '--ep', 'cpu', '--threads', '1', '--new-tokens', '4', '--runs', '1', '--decode-loop', loop, '--json'];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [mainJs, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

after(cleanupScratch);

test('bench --decode-loop search runs a request as one GreedySearch run', async () => {
  const model = await tinyModel();
  const rows: Record<string, { decode_loop: string; session_runs_per_request: number; new_tokens: number }> = {};
  for (const loop of ['search', 'host']) {
    const out = await bench(model, loop);
    assert.equal(out.code, 0, out.stderr);
    rows[loop] = JSON.parse(out.stdout.trim().split('\n').at(-1)!);
  }
  assert.equal(rows.search.decode_loop, 'search');
  assert.equal(rows.search.session_runs_per_request, 2);
  assert.equal(rows.host.decode_loop, 'host');
  assert.equal(rows.host.session_runs_per_request, 1 + rows.host.new_tokens);
});
