#!/usr/bin/env node
// Markdown comparison of `paligemma bench --json` rows against bench/hf_baseline.py rows, one table
// per model configuration, with ratios against HF sdpa. Plain Node ESM without dependencies so it
// runs on the GPU machine from the checkout (bench/gpu/compare.sh) as well as here.
//
//   node bench/compare-table.mjs --hf hf.jsonl --ours ours.jsonl [--hf more.jsonl] [--ours more.jsonl]
//        [--out bench/results/<date>-<machine>.md] [--machine "one NVIDIA H100 ..."] [--date YYYY-MM-DD]
//
// Rows may carry a `command` field (compare.sh adds it) and failed configurations are rows with an
// `error` field; both are shown.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

/**
 * The JSON objects of a JSONL text. Lines that are not JSON (logs) are skipped. A JSON list (the
 * last line of hf_baseline.py repeats every row) contributes only the objects not already seen,
 * so a file holding just that list still works.
 */
export function parseJsonl(text) {
  const rows = [];
  const seen = new Set();
  const add = (o) => {
    if (o === null || typeof o !== 'object' || Array.isArray(o)) return;
    const key = JSON.stringify(o);
    if (seen.has(key)) return;
    seen.add(key);
    rows.push(o);
  };
  const lists = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t.startsWith('{') && !t.startsWith('[')) continue;
    let v;
    try {
      v = JSON.parse(t);
    } catch {
      continue;
    }
    if (Array.isArray(v)) lists.push(v);
    else add(v);
  }
  for (const list of lists) list.forEach(add);
  return rows;
}

// Decoder depth of each preset family (as daemon/engine/convert/presets.ts builds them): rows of a
// model cut with --layers are a different model and get their own table.
const FULL_DECODER_LAYERS = { 'paligemma-3b': 18, 'paligemma2-3b': 26, 'paligemma2-10b': 42, 'paligemma2-28b': 46 };
const EP_NAMES = { cuda: 'CUDA', webgpu: 'WebGPU', cpu: 'CPU', dml: 'DirectML', coreml: 'CoreML' };
const EP_ORDER = ['cuda', 'webgpu', 'cpu'];
const DTYPE_ORDER = ['bf16', 'fp16', 'int4', 'fp32'];
const LOOP_ORDER = ['host', 'graph', 'graph-concat', 'search'];

function presetFacts(preset) {
  const m = /^(.*)-(\d+)$/.exec(preset ?? '');
  return {
    imageSize: m ? Number(m[2]) : undefined,
    architecture: preset?.startsWith('paligemma2') ? 'paligemma2' : preset?.startsWith('paligemma') ? 'paligemma' : undefined,
    fullLayers: m ? FULL_DECODER_LAYERS[m[1]] : undefined,
  };
}

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/**
 * One row in a common shape. side: 'hf' or 'ours' (the file it came from). HF rows hold one batch
 * size each; ours hold batch 1 latencies plus an optional batch throughput.
 */
/** ", ORT_X=1" for the onnxruntime environment switches a row was measured with. */
function envLabel(env) {
  if (!env || typeof env !== 'object') return '';
  return Object.entries(env)
    .map(([k, v]) => `, ${k}=${v}`)
    .join('');
}

export function normalizeRow(row, side) {
  const preset = row.preset ?? (typeof row.model === 'string' ? row.model.replace(/-random$/, '') : undefined);
  const facts = presetFacts(preset);
  const layers = num(row.decoder_layers) ?? num(row.layers);
  const common = {
    side,
    preset: preset ?? '(unknown model)',
    imageSize: num(row.image_size) ?? facts.imageSize,
    architecture: row.architecture ?? facts.architecture,
    // undefined = the preset's full depth
    layers: layers !== undefined && layers !== facts.fullLayers ? layers : undefined,
    command: typeof row.command === 'string' ? row.command : undefined,
    error: row.error !== undefined ? String(row.error) : undefined,
    raw: row,
  };
  if (side === 'hf') {
    return {
      ...common,
      config: `HF transformers, ${row.attention ?? '?'}`,
      attention: row.attention,
      weights: row.dtype ?? 'bf16',
      version: row.version,
      device: row.device,
      newTokens: num(row.new_tokens),
      promptTokens: num(row.prompt_tokens),
      batch: num(row.batch) ?? 1,
      firstTokenMs: num(row.prefill_plus_1_ms),
      decodeMsPerToken: num(row.decode_ms_per_token),
      endToEndMs: num(row.end_to_end_ms),
      imagesPerSecond: num(row.images_per_s),
    };
  }
  const ep = row.execution_provider ?? row.ep;
  let weights = row.dtype ?? '?';
  // The converter's default vision tower: fp16 only for fp16 (int4 too before 2026-11-23, whose rows
  // have no graph_ops field).
  const defaultVision = weights === 'fp16' || (weights === 'int4' && !row.graph_ops) ? 'fp16' : 'fp32';
  if (row.vision_weights && row.vision_weights !== defaultVision) weights += `, vision ${row.vision_weights}`;
  if (row.activations === 'fp16') weights += ', fp16 activations';
  if (num(row.accuracy_level)) weights += `, accuracy ${row.accuracy_level}`;
  return {
    ...common,
    config: `ours, ${EP_NAMES[ep] ?? ep ?? '?'} EP${row.decode_loop ? `, ${row.decode_loop} loop` : ''}${row.graph_ops === 'standard' ? ', standard ops' : ''}${envLabel(row.ort_env)}`,
    ep,
    dtype: row.dtype,
    decodeLoop: row.decode_loop,
    weights,
    newTokens: num(row.new_tokens),
    batch: num(row.batch) ?? 1,
    firstTokenMs: num(row.first_token_ms),
    decodeMsPerToken: num(row.decode_ms_per_token),
    endToEndMs: num(row.request_ms),
    imagesPerSecond: num(row.images_per_second),
  };
}

/**
 * Rows grouped per model (preset, image size, architecture, decoder depth), each group with its
 * table lines: HF rows of the same attention are merged (batch 1 gives the latencies, a larger
 * batch the throughput), ours stay one line per measurement. Failed rows are kept apart.
 */
export function groupRows(hfRows, oursRows) {
  const all = [...hfRows.map((r) => normalizeRow(r, 'hf')), ...oursRows.map((r) => normalizeRow(r, 'ours'))];
  const groups = new Map();
  for (const r of all) {
    const key = [r.preset, r.imageSize, r.architecture, r.layers ?? 'full'].join('|');
    if (!groups.has(key)) {
      groups.set(key, { key, preset: r.preset, imageSize: r.imageSize, architecture: r.architecture, layers: r.layers, lines: [], failed: [], hf: [], ours: [] });
    }
    const g = groups.get(key);
    if (r.error !== undefined) g.failed.push(r);
    else g[r.side].push(r);
  }
  for (const g of groups.values()) {
    const byAttention = new Map();
    for (const r of g.hf) {
      const k = `${r.attention}|${r.weights}|${r.newTokens}`;
      if (!byAttention.has(k))
        byAttention.set(k, { ...r, batch: undefined, imagesPerSecond: undefined, firstTokenMs: undefined, decodeMsPerToken: undefined, endToEndMs: undefined, sources: [] });
      const line = byAttention.get(k);
      line.sources.push(r);
      if (r.batch === 1) Object.assign(line, { firstTokenMs: r.firstTokenMs, decodeMsPerToken: r.decodeMsPerToken, endToEndMs: r.endToEndMs });
      else Object.assign(line, { batch: r.batch, imagesPerSecond: r.imagesPerSecond });
    }
    const hfLines = [...byAttention.values()].sort((a, b) => (a.attention === 'eager' ? 0 : 1) - (b.attention === 'eager' ? 0 : 1));
    const rank = (list, v) => (list.indexOf(v) < 0 ? list.length : list.indexOf(v));
    const oursLines = g.ours
      .map((r, i) => ({ ...r, i }))
      .sort(
        (a, b) =>
          rank(EP_ORDER, a.ep) - rank(EP_ORDER, b.ep) ||
          rank(DTYPE_ORDER, a.dtype) - rank(DTYPE_ORDER, b.dtype) ||
          rank(LOOP_ORDER, a.decodeLoop) - rank(LOOP_ORDER, b.decodeLoop) ||
          a.i - b.i,
      );
    // A configuration measured twice is shown twice, numbered, rather than one picked silently.
    const count = new Map();
    for (const l of oursLines) {
      const k = `${l.config}|${l.weights}`;
      count.set(k, (count.get(k) ?? 0) + 1);
      if (count.get(k) > 1) l.config += ` (measurement ${count.get(k)})`;
    }
    g.lines = [...hfLines, ...oursLines];
    g.sdpa = hfLines.find((l) => l.attention === 'sdpa');
    g.newTokens = mostCommon(g.lines.map((l) => l.newTokens));
    g.batch = mostCommon(g.lines.map((l) => (l.batch > 1 ? l.batch : undefined)));
    g.promptTokens = mostCommon(g.hf.map((r) => r.promptTokens));
  }
  return [...groups.values()];
}

function mostCommon(values) {
  const counts = new Map();
  for (const v of values) if (v !== undefined) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best;
  for (const [v, c] of counts) if (best === undefined || c > counts.get(best)) best = v;
  return best;
}

/** Milliseconds and rates the way the hand-written tables print them. */
export function formatNumber(v) {
  if (v === undefined || v === null || !Number.isFinite(v)) return '-';
  // Rounded on the decimal value (30.45 -> 30.5), not on its binary neighbour as toFixed does.
  const tenths = Math.round(v * 10) / 10;
  if (Math.abs(tenths) >= 1000) return String(Math.round(v));
  if (Math.abs(tenths) >= 1) return tenths.toFixed(1);
  if (v === 0) return '0';
  return String(Number(v.toPrecision(2)));
}

export function formatRatio(r) {
  return r === undefined || !Number.isFinite(r) ? '-' : `${r.toFixed(2)}x`;
}

/**
 * Ratios of one line against HF sdpa of the same model: speed-up = sdpa end to end / ours end to end
 * (batch 1, same token count), throughput = ours images/s / sdpa images/s (same batch size).
 */
export function ratios(line, sdpa) {
  const speedUp = sdpa && line.endToEndMs && sdpa.endToEndMs && line.newTokens === sdpa.newTokens ? sdpa.endToEndMs / line.endToEndMs : undefined;
  const throughput = sdpa && line.imagesPerSecond && sdpa.imagesPerSecond && line.batch === sdpa.batch ? line.imagesPerSecond / sdpa.imagesPerSecond : undefined;
  return { speedUp, throughput };
}

const TITLES = { paligemma: 'PaliGemma', paligemma2: 'PaliGemma 2' };

function groupTitle(g) {
  const m = /^paligemma2?-(\w+)-\d+$/.exec(g.preset);
  const name = m ? `${TITLES[g.architecture] ?? g.architecture} ${m[1].toUpperCase()}` : g.preset;
  const parts = [`${name}${g.imageSize ? ` ${g.imageSize} px` : ''}`];
  if (g.layers !== undefined) parts.push(`decoder cut to ${g.layers} layer${g.layers === 1 ? '' : 's'}`);
  return `${parts.join(', ')} (\`${g.preset}\`)`;
}

function renderGroup(g) {
  const out = [`## ${groupTitle(g)}`, ''];
  const n = g.newTokens ?? 'N';
  const b = g.batch ? `batch ${g.batch}` : 'batched';
  if (g.lines.length) {
    const facts = [];
    if (g.promptTokens) facts.push(`${g.promptTokens}-token prompt`);
    if (g.newTokens) facts.push(`${g.newTokens} new tokens forced (eos ignored)`);
    facts.push('random weights, medians');
    out.push(`${facts.join(', ')}.`, '');
    out.push(
      `| runtime | weights | first token (ms) | decode (ms/token) | ${n} tokens end to end (ms) | ${b} (images/s) | speed-up vs HF sdpa (batch 1) | throughput vs HF sdpa (${b}) |`,
    );
    out.push('|---|---|---|---|---|---|---|---|');
    for (const l of g.lines) {
      const { speedUp, throughput } = ratios(l, g.sdpa);
      let e2e = formatNumber(l.endToEndMs);
      if (l.endToEndMs !== undefined && l.newTokens !== g.newTokens) e2e += ` (${l.newTokens} tokens)`;
      let ips = formatNumber(l.imagesPerSecond);
      if (l.imagesPerSecond !== undefined && l.batch !== g.batch) ips += ` (batch ${l.batch})`;
      out.push(
        `| ${l.config} | ${l.weights} | ${formatNumber(l.firstTokenMs)} | ${formatNumber(l.decodeMsPerToken)} | ${e2e} | ${ips} | ${formatRatio(speedUp)} | ${formatRatio(throughput)} |`,
      );
    }
    out.push('');
    if (!g.sdpa) out.push('No HF sdpa row for this model: no ratios.', '');
  }
  if (g.failed.length) {
    out.push('Failed configurations:', '');
    for (const f of g.failed) {
      const what = f.side === 'hf' ? `HF transformers${f.raw.attention ? `, ${f.raw.attention}` : ''}` : describeFailedOurs(f.raw);
      const msg = f.error.replace(/\s+/g, ' ').trim().slice(0, 400);
      out.push(`- ${what}${f.command ? ` (\`${f.command}\`)` : ''}: ${msg || 'failed'}`);
    }
    out.push('');
  }
  return out;
}

function describeFailedOurs(raw) {
  const ep = raw.execution_provider ?? raw.ep;
  const parts = [`ours, ${EP_NAMES[ep] ?? ep ?? '?'} EP`];
  if (raw.decode_loop) parts.push(`${raw.decode_loop} loop`);
  if (raw.graph_ops === 'standard') parts.push('standard ops');
  if (raw.dtype) parts.push(raw.dtype);
  if (num(raw.batch) > 1) parts.push(`batch ${raw.batch}`);
  return parts.join(', ');
}

/**
 * The whole document. sources: { hf: [file names], ours: [file names] } for the provenance lines
 * when rows carry no `command`.
 */
export function renderMarkdown(groups, { date, machine, sources = { hf: [], ours: [] } } = {}) {
  const all = groups.flatMap((g) => [...g.hf, ...g.ours, ...g.failed]);
  const device = mostCommon(all.map((r) => r.raw.device));
  const out = [`# ${date ?? '(undated)'}, ${machine ?? device ?? 'unknown machine'}`, ''];
  out.push('Produced by `bench/compare-table.mjs`. Ratios are against HF transformers with sdpa attention on the');
  out.push('same model: speed-up = HF sdpa end to end / this end to end (batch 1, above 1 = faster than HF),');
  out.push('throughput = this images/s / HF sdpa images/s at the same batch size. `-`: not measured.', '');
  const versions = [...new Set(all.filter((r) => r.side === 'hf' && r.version).map((r) => r.version))];
  for (const side of ['hf', 'ours']) {
    const rows = all.filter((r) => r.side === side);
    const commands = [...new Set(rows.map((r) => r.command).filter(Boolean))];
    const who = side === 'hf' ? `HF${versions.length ? ` (transformers ${versions.join(', ')}, bf16)` : ''}` : 'ours (onnxruntime-node)';
    const files = (sources[side] ?? []).map((f) => `\`${basename(f)}\``).join(', ');
    if (commands.length) {
      out.push(`${who}, from ${files || 'the rows given'}:`, '', '```', ...commands, '```', '');
    } else if (rows.length) {
      const how =
        side === 'hf'
          ? '`python3 bench/hf_baseline.py --preset <preset> ...` (the rows record no command line)'
          : '`paligemma bench --random <preset> ... --json` (the rows record no command line)';
      out.push(`${who}: ${how}, from ${files || 'the rows given'}.`, '');
    }
  }
  for (const g of groups) out.push(...renderGroup(g));
  return `${out.join('\n').trimEnd()}\n`;
}

export function main(argv = process.argv.slice(2)) {
  const { values } = parseArgs({
    args: argv,
    options: {
      hf: { type: 'string', multiple: true, default: [] },
      ours: { type: 'string', multiple: true, default: [] },
      out: { type: 'string' },
      machine: { type: 'string' },
      date: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || (!values.hf.length && !values.ours.length)) {
    process.stderr.write('usage: node bench/compare-table.mjs --hf <hf.jsonl> --ours <ours.jsonl> [--out <file.md>] [--machine <text>] [--date YYYY-MM-DD]\n');
    return values.help ? 0 : 2;
  }
  const read = (files) => files.flatMap((f) => parseJsonl(readFileSync(f, 'utf8')));
  const groups = groupRows(read(values.hf), read(values.ours));
  const md = renderMarkdown(groups, {
    date: values.date ?? new Date().toISOString().slice(0, 10),
    machine: values.machine,
    sources: { hf: values.hf, ours: values.ours },
  });
  if (values.out) {
    mkdirSync(dirname(values.out), { recursive: true });
    writeFileSync(values.out, md);
    process.stderr.write(`wrote ${values.out}\n`);
  } else {
    process.stdout.write(md);
  }
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main();
