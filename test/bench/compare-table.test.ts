// bench/compare-table.mjs on the 2026-11-22 H100 rows (copies in test/bench/fixtures): the numbers
// land in the right cells, ratios against HF sdpa are computed from the right rows, missing values
// and failed configurations show as such.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as CompareTable from '../../bench/compare-table.mjs';

// Run from out/test/bench/: the script is not compiled, it stays in the repository's bench/.
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SCRIPT = join(ROOT, 'bench/compare-table.mjs');
const FIXTURES = join(ROOT, 'test/bench/fixtures');
const { parseJsonl, groupRows, renderMarkdown, formatNumber } = (await import(pathToFileURL(SCRIPT).href)) as typeof CompareTable;

const hfText = readFileSync(join(FIXTURES, 'h100-hf-baseline.jsonl'), 'utf8');
const oursText = readFileSync(join(FIXTURES, 'h100-paligemma-bench.jsonl'), 'utf8');

/** The section of one model (from its `## ` heading to the next). */
function section(md: string, preset: string): string {
  const s = md.split('\n## ').find((part) => part.includes(`(\`${preset}\`)`));
  assert.ok(s, `no section for ${preset} in\n${md}`);
  return s;
}

/** The cells of the table line that starts with `| config | weights |`. */
function cells(md: string, config: string, weights: string): string[] {
  const line = md.split('\n').find((l) => l.startsWith(`| ${config} | ${weights} |`));
  assert.ok(line, `no line '${config} | ${weights}' in\n${md}`);
  return line
    .split('|')
    .slice(1, -1)
    .map((c) => c.trim());
}

const COLUMNS = ['runtime', 'weights', 'first', 'decode', 'e2e', 'batch', 'speedUp', 'throughput'] as const;
function row(md: string, config: string, weights: string): Record<(typeof COLUMNS)[number], string> {
  const c = cells(md, config, weights);
  assert.equal(c.length, COLUMNS.length, `columns of ${config}`);
  return Object.fromEntries(COLUMNS.map((k, i) => [k, c[i]])) as Record<(typeof COLUMNS)[number], string>;
}

function render(hf: string, ours: string): string {
  return renderMarkdown(groupRows(parseJsonl(hf), parseJsonl(ours)), { date: '2026-11-22', machine: 'one NVIDIA H100 80GB HBM3' });
}

describe('parseJsonl', () => {
  it('takes each object once: hf_baseline.py repeats all rows as a JSON list on its last line', () => {
    const rows = parseJsonl(hfText);
    assert.equal(rows.length, 4);
    assert.deepEqual(
      rows.map((r) => [r.attention, r.batch]),
      [
        ['sdpa', 1],
        ['sdpa', 8],
        ['eager', 1],
        ['eager', 8],
      ],
    );
  });

  it('reads a file holding only that list, and skips log lines and broken JSON', () => {
    const list = hfText.trim().split('\n').at(-1)!;
    assert.ok(list.startsWith('['));
    assert.equal(parseJsonl(`loading...\n${list}\n{"broken": \n`).length, 4);
    assert.equal(parseJsonl('converting paligemma-3b-224 (int4) ...\n{"a":1}\n\n').length, 1);
  });
});

describe('compare table of the 2026-11-22 H100 rows', () => {
  const md = render(hfText, oursText);
  const s224 = section(md, 'paligemma-3b-224');

  it('puts the numbers of each configuration in its cells', () => {
    assert.deepEqual(row(s224, 'HF transformers, sdpa', 'bf16'), {
      runtime: 'HF transformers, sdpa',
      weights: 'bf16',
      first: '52.7',
      decode: '16.1',
      e2e: '550.8',
      batch: '15.9',
      speedUp: '1.00x',
      throughput: '1.00x',
    });
    assert.deepEqual(row(s224, 'HF transformers, eager', 'bf16'), {
      runtime: 'HF transformers, eager',
      weights: 'bf16',
      first: '59.3',
      decode: '18.9',
      e2e: '644.0',
      batch: '13.1',
      speedUp: '0.86x',
      throughput: '0.82x',
    });
    assert.deepEqual(row(s224, 'ours, CUDA EP', 'fp16'), {
      runtime: 'ours, CUDA EP',
      weights: 'fp16',
      first: '67.5',
      decode: '16.9',
      e2e: '592.3',
      batch: '4.8',
      speedUp: '0.93x',
      throughput: '0.30x',
    });
    // sdpa 550.8 ms against ours 561.33 ms end to end; 3.779 against 15.9 images/s at batch 8
    assert.deepEqual(row(s224, 'ours, CUDA EP', 'int4'), {
      runtime: 'ours, CUDA EP',
      weights: 'int4',
      first: '87.8',
      decode: '15.3',
      e2e: '561.3',
      batch: '3.8',
      speedUp: '0.98x',
      throughput: '0.24x',
    });
    assert.match(s224, /261-token prompt, 32 new tokens forced/);
    assert.match(s224, /\| 32 tokens end to end \(ms\) \| batch 8 \(images\/s\) \|/);
  });

  it('shows missing values as - and keeps both measurements of a configuration measured twice', () => {
    const webgpu = row(s224, 'ours, WebGPU EP', 'int4');
    assert.deepEqual([webgpu.first, webgpu.e2e, webgpu.batch, webgpu.speedUp, webgpu.throughput], ['165.2', '1109', '-', '0.50x', '-']);
    const again = row(s224, 'ours, WebGPU EP (measurement 2)', 'int4');
    assert.deepEqual([again.e2e, again.speedUp], ['3443', '0.16x']);
    // batch 4 on the CPU is not compared with HF's batch 8
    const cpu = row(s224, 'ours, CPU EP', 'int4');
    assert.deepEqual([cpu.first, cpu.batch, cpu.throughput], ['13583', '0.065 (batch 4)', '-']);
  });

  it('gives another model its own table, without ratios when HF did not run it', () => {
    const s896 = section(md, 'paligemma2-3b-896');
    assert.match(s896, /^PaliGemma 2 3B 896 px/);
    assert.match(s896, /\| 16 tokens end to end \(ms\) \|/);
    const cuda = row(s896, 'ours, CUDA EP', 'int4');
    assert.deepEqual([cuda.first, cuda.decode, cuda.e2e, cuda.speedUp], ['1034', '425.3', '7413', '-']);
    assert.match(s896, /No HF sdpa row/);
    assert.doesNotMatch(s896, /HF transformers, sdpa/);
  });

  it('says where the rows came from when they record no command', () => {
    assert.match(md, /^# 2026-11-22, one NVIDIA H100 80GB HBM3\n/);
    assert.match(md, /transformers 5\.17\.0/);
    assert.match(md, /the rows record no command line/);
  });
});

describe('rows written by bench/gpu/compare.sh', () => {
  const cmdHf = 'python3 bench/hf_baseline.py --preset paligemma-3b-224 --batch 1 8 --attn eager sdpa --repeats 3';
  const cmdOurs = 'paligemma bench --random paligemma-3b-224 --dtype int4 --ep cuda --new-tokens 32 --decode-loop graph --batch 8 --json';
  const tagged = hfText
    .trim()
    .split('\n')
    .slice(0, 4)
    .map((l) => JSON.stringify({ ...JSON.parse(l), command: cmdHf }))
    .join('\n');
  const cudaInt4 = parseJsonl(oursText).find((r) => r.execution_provider === 'cuda' && r.dtype === 'int4' && r.image_size === 224);
  assert.ok(cudaInt4);
  const graphRow = { ...cudaInt4, decode_loop: 'graph', request_ms: 459, first_token_ms: 60, command: cmdOurs };
  const failed = [
    {
      side: 'ours',
      preset: 'paligemma-3b-224',
      execution_provider: 'cuda',
      dtype: 'fp16',
      decode_loop: 'graph',
      batch: 8,
      command: 'paligemma bench --random paligemma-3b-224 --dtype fp16 --decode-loop graph',
      error: 'exit 124: timed out after 120 s',
    },
    { side: 'hf', preset: 'paligemma2-3b-448', command: 'python3 bench/hf_baseline.py --preset paligemma2-3b-448', error: 'exit 1: CUDA out of memory' },
  ];
  const md = render(`${tagged}\n${JSON.stringify(failed[1])}`, `${JSON.stringify(graphRow)}\n${JSON.stringify(failed[0])}`);

  it('lists the exact commands, failed ones included', () => {
    const blocks = [...md.matchAll(/```\n([^`]*)```/g)].map((m) => m[1].trim().split('\n'));
    assert.deepEqual(blocks, [
      [cmdHf, failed[1].command],
      [cmdOurs, failed[0].command],
    ]);
  });

  it('names the decode loop and computes the ratio from that row', () => {
    const graph = row(section(md, 'paligemma-3b-224'), 'ours, CUDA EP, graph loop', 'int4');
    assert.deepEqual([graph.first, graph.e2e, graph.speedUp], ['60.0', '459.0', (550.8 / 459).toFixed(2) + 'x']);
  });

  it('lists failed configurations under their model instead of as table lines', () => {
    const s224 = section(md, 'paligemma-3b-224');
    assert.match(
      s224,
      /Failed configurations:\n\n- ours, CUDA EP, graph loop, fp16, batch 8 \(`paligemma bench --random paligemma-3b-224 --dtype fp16 --decode-loop graph`\): exit 124: timed out after 120 s/,
    );
    assert.equal(s224.split('\n').filter((l) => l.startsWith('| ours')).length, 1);
    const s448 = section(md, 'paligemma2-3b-448');
    assert.match(s448, /- HF transformers \(`python3 bench\/hf_baseline.py --preset paligemma2-3b-448`\): exit 1: CUDA out of memory/);
    assert.doesNotMatch(s448, /\| runtime \|/);
  });

  it('keeps a model cut to fewer decoder layers apart from the full one', () => {
    const cut = { ...graphRow, decoder_layers: 2, command: undefined };
    const groups = groupRows(parseJsonl(tagged), [cut]);
    assert.deepEqual(
      groups.map((g) => [g.preset, g.layers ?? 'full', g.lines.length]),
      [
        ['paligemma-3b-224', 'full', 2],
        ['paligemma-3b-224', 2, 1],
      ],
    );
    assert.match(renderMarkdown(groups), /## PaliGemma 3B 224 px, decoder cut to 2 layers/);
  });
});

describe('formatNumber', () => {
  it('prints ms like the hand-written tables', () => {
    assert.deepEqual([30.45, 644, 13583.41, 0.065, 999.96, 0, undefined].map(formatNumber), ['30.5', '644.0', '13583', '0.065', '1000', '0', '-']);
  });
});

describe('command line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'compare-table-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the dated table where --out says', () => {
    const out = join(dir, 'results', '2026-11-22-h100.md');
    const r = spawnSync(
      process.execPath,
      [
        SCRIPT,
        '--hf',
        join(FIXTURES, 'h100-hf-baseline.jsonl'),
        '--ours',
        join(FIXTURES, 'h100-paligemma-bench.jsonl'),
        '--out',
        out,
        '--machine',
        'one NVIDIA H100 80GB HBM3 (16 cores)',
        '--date',
        '2026-11-22',
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    const md = readFileSync(out, 'utf8');
    assert.match(md, /^# 2026-11-22, one NVIDIA H100 80GB HBM3 \(16 cores\)\n/);
    assert.match(md, /`h100-hf-baseline\.jsonl`/);
    assert.equal(row(md, 'ours, CUDA EP', 'int4').speedUp, '0.98x');
  });

  it('refuses to run without inputs', () => {
    const r = spawnSync(process.execPath, [SCRIPT], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /usage: node bench\/compare-table\.mjs/);
  });
});

describe('labels of the converter options', () => {
  it('names standard-op runs and the vision tower only where it differs from the default of its time', async () => {
    const { normalizeRow } = (await import(pathToFileURL(SCRIPT).href)) as typeof CompareTable;
    const base = { model: 'paligemma-3b-224-random', architecture: 'paligemma', image_size: 224, decoder_layers: 18, execution_provider: 'cuda', new_tokens: 32 };
    const fusedInt4 = normalizeRow({ ...base, dtype: 'int4', vision_weights: 'fp32', graph_ops: 'fused', decode_loop: 'graph' }, 'ours');
    assert.equal(fusedInt4.config, 'ours, CUDA EP, graph loop');
    assert.equal(fusedInt4.weights, 'int4');
    const standard = normalizeRow({ ...base, dtype: 'int4', vision_weights: 'fp32', graph_ops: 'standard', decode_loop: 'host' }, 'ours');
    assert.equal(standard.config, 'ours, CUDA EP, host loop, standard ops');
    // Rows from before graph_ops existed: int4 then had an fp16 tower by default.
    assert.equal(normalizeRow({ ...base, dtype: 'int4', vision_weights: 'fp32' }, 'ours').weights, 'int4, vision fp32');
    assert.equal(normalizeRow({ ...base, dtype: 'fp16', vision_weights: 'fp16', graph_ops: 'fused' }, 'ours').weights, 'fp16');
    // int4h in compare.sh: int4 weights computing in fp16, fp16 vision tower
    const half = normalizeRow({ ...base, dtype: 'int4', vision_weights: 'fp16', graph_ops: 'fused', activations: 'fp16', kv_dtype: 'float16' }, 'ours');
    assert.equal(half.weights, 'int4, vision fp16, fp16 activations');
    assert.equal(normalizeRow({ ...base, dtype: 'int4', vision_weights: 'fp32', graph_ops: 'fused', activations: 'fp32' }, 'ours').weights, 'int4');
    // onnxruntime switches from the environment (bench's ort_env) name the run
    const cutlass = normalizeRow({ ...base, dtype: 'int4', graph_ops: 'fused', decode_loop: 'graph', ort_env: { ORT_FPA_INTB_GEMM: '1' } }, 'ours');
    assert.equal(cutlass.config, 'ours, CUDA EP, graph loop, ORT_FPA_INTB_GEMM=1');
  });
});
