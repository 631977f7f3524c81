// bench/gpu/record-rows.mjs: what compare.sh appends for one step, the rows a command printed with
// its command line, or a failed configuration the table lists.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const SCRIPT = join(ROOT, 'bench/gpu/record-rows.mjs');
const BENCH_ROW = '{"model":"paligemma-3b-224-random","execution_provider":"cuda","dtype":"int4","request_ms":561.33}';

describe('record-rows', () => {
  const dir = mkdtempSync(join(tmpdir(), 'record-rows-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const record = (...args: string[]) => {
    const r = spawnSync(process.execPath, [SCRIPT, ...args], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  };
  const config = '{"execution_provider":"cuda","dtype":"fp16","decode_loop":"graph","batch":8}';

  it('passes the printed rows on, each with its command, and nothing else when the command succeeded', () => {
    const rows = record('--stdout', file('ok.out', `converting ...\n${BENCH_ROW}\n`), '--rc', '0', '--command', 'paligemma bench --json', '--preset', 'paligemma-3b-224');
    assert.deepEqual(rows, [{ ...JSON.parse(BENCH_ROW), command: 'paligemma bench --json' }]);
  });

  it('records a timeout with the configuration asked for and the end of stderr, progress lines left out', () => {
    const rows = record(
      '--stdout',
      file('t.out', ''),
      '--stderr',
      file('t.err', 'converting\n[ 40%] vision layer 11/27\n'),
      '--rc',
      '124',
      '--timeout',
      '120',
      '--command',
      'paligemma bench --dtype fp16',
      '--preset',
      'paligemma-3b-224',
      '--config',
      config,
    );
    assert.deepEqual(rows, [
      {
        side: 'ours',
        preset: 'paligemma-3b-224',
        execution_provider: 'cuda',
        dtype: 'fp16',
        decode_loop: 'graph',
        batch: 8,
        command: 'paligemma bench --dtype fp16',
        error: 'timed out after 120 s: converting',
      },
    ]);
  });

  it('keeps the rows printed before a crash and adds the failure', () => {
    const rows = record(
      '--stdout',
      file('p.out', '{"attention":"eager","batch":1}\n'),
      '--stderr',
      file('p.err', 'Traceback\ntorch.OutOfMemoryError: CUDA out of memory\n'),
      '--rc',
      '1',
      '--side',
      'hf',
      '--preset',
      'paligemma2-3b-896',
      '--command',
      'python3 bench/hf_baseline.py',
    );
    assert.equal(rows.length, 2);
    assert.equal(rows[0].attention, 'eager');
    assert.equal(rows[1].error, 'exit 1: Traceback / torch.OutOfMemoryError: CUDA out of memory (after 1 rows)');
  });

  it('calls a successful exit without a result a failure, and says why a skipped step did not run', () => {
    assert.equal(record('--stdout', file('e.out', 'no json here\n'), '--rc', '0', '--preset', 'p')[0].error, 'printed no result');
    assert.equal(record('--error', 'skipped: deadline', '--preset', 'p')[0].error, 'skipped: deadline');
  });
});
