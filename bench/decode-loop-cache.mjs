#!/usr/bin/env node
// The greedy loop's cost per step against cache length, on one converted model: decoder-loop.onnx
// (the prefill's cache read where the prefill left it, the generated tokens' keys and values in
// preallocated loop-carried buffers) against decoder-loop-concat.onnx (the whole cache carried and
// grown by Concat every step). One prompt of random image features (what a request feeds after
// its vision run), then the whole loop with eos banned (min_new_tokens = steps), for each token
// count; both graphs alternated in one process. ms per step = (run with S steps - run with 0
// steps) / S, medians of --runs. With --profile, onnxruntime's profiler then times the loop body's
// nodes in one more run per graph and count: microseconds per step by op type (the cache writes:
// ScatterElements or Concat), each node's median over the steps. One JSON object per line. Run after `npm run build`:
//   node bench/decode-loop-cache.mjs --model <converted-dir> [--tokens 32,256] [--runs 3] [--threads 2] [--profile]
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { median } from '../out/daemon/cli/benchCommon.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    tokens: { type: 'string', default: '32,256' },
    runs: { type: 'string', default: '3' },
    threads: { type: 'string', default: '2' },
    profile: { type: 'boolean', default: false },
  },
});
if (!values.model) {
  console.error('usage: node bench/decode-loop-cache.mjs --model <converted-dir> [--tokens 32,256] [--runs 3] [--threads 2] [--profile]');
  process.exit(2);
}
const dir = values.model;
const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
const counts = values.tokens.split(',').map(Number);
const runs = Number(values.runs);
const threads = Number(values.threads);
const VARIANTS = [
  ['buffer', manifest.files.decoderLoop],
  ['concat', manifest.files.decoderLoopConcat],
];
for (const [name, file] of VARIANTS) {
  if (!file) {
    console.error(`${dir}: manifest.json names no ${name} loop graph (convert the model again)`);
    process.exit(1);
  }
}

const { text, image, tokens, kvDtype } = manifest;
const promptIds = [tokens.bos, 1000, 1001, 1002, tokens.newline];
const prefill = image.numImageTokens + promptIds.length;
const int64 = (values, dims) => new ort.Tensor('int64', BigInt64Array.from(values, BigInt), dims);
const features = new Float32Array(image.numImageTokens * text.hiddenSize);
let seed = 12345;
for (let i = 0; i < features.length; i++) {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  features[i] = (seed / 2 ** 32 - 0.5) * 0.1;
}

function feeds(steps) {
  // The prompt attends bidirectionally and has no pads: both biases are zeros.
  const bias = new ort.Tensor('float32', new Float32Array(prefill * prefill), [1, 1, prefill, prefill]);
  const emptyKv = () => new ort.Tensor(kvDtype, kvDtype === 'float16' ? new Uint16Array(0) : new Float32Array(0), [1, text.numKvHeads, 0, text.headDim]);
  const f = {
    input_ids: int64(promptIds, [1, promptIds.length]),
    image_features: new ort.Tensor('float32', features, [1, image.numImageTokens, text.hiddenSize]),
    position_ids: int64(
      Array.from({ length: prefill }, (_, i) => i + 1),
      [1, prefill],
    ),
    attention_bias: bias,
    greedy_steps: int64([steps], []),
    min_new_tokens: int64([steps + 1], []),
    next_position: int64([prefill + 1], [1, 1]),
    slot_positions: int64(
      Array.from({ length: prefill }, (_, i) => i + 1),
      [1, prefill],
    ),
  };
  if (text.layerTypes.includes('sliding')) f.attention_bias_sliding = bias;
  for (let i = 0; i < text.numLayers; i++) {
    f[`past_key.${i}`] = emptyKv();
    f[`past_value.${i}`] = emptyKv();
  }
  return f;
}

async function timed(session, steps) {
  const t0 = performance.now();
  const out = await session.run(feeds(steps), ['generated_ids']);
  const ms = performance.now() - t0;
  const generated = out.generated_ids.dims[1];
  if (generated !== steps + 1) throw new Error(`${generated} tokens for ${steps} steps (eos was not banned?)`);
  return ms;
}

const options = { executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: threads, logSeverityLevel: 3 };

// Timed runs (none with --runs 0), the two graphs alternated so that load on a shared machine hits
// both alike.
const sessions = [];
if (runs > 0) {
  for (const [name, file] of VARIANTS) sessions.push([name, await ort.InferenceSession.create(join(dir, file), options)]);
  for (const [, s] of sessions) await timed(s, 2); // warm-up
}
for (const steps of sessions.length > 0 ? counts : []) {
  const times = Object.fromEntries(sessions.map(([name]) => [name, { base: [], full: [] }]));
  for (let r = 0; r < runs; r++) {
    for (const [name, s] of sessions) {
      times[name].base.push(await timed(s, 0));
      times[name].full.push(await timed(s, steps));
    }
  }
  for (const [name] of sessions) {
    const { base, full } = times[name];
    const perStep = full.map((ms, i) => (ms - base[i]) / steps);
    console.log(
      JSON.stringify({
        variant: name,
        model: manifest.name,
        layers: text.numLayers,
        dtype: manifest.dtype,
        threads,
        prefill_len: prefill,
        steps,
        cache_len_at_end: prefill + steps,
        ms_per_step: +median(perStep).toFixed(2),
        ms_per_step_runs: perStep.map((x) => +x.toFixed(2)),
        prefill_ms: +median(base).toFixed(1),
      }),
    );
  }
}
for (const [, s] of sessions) await s.release();

if (values.profile) {
  // One session at a time, one run per count, profiled: the profiler records every node run. The
  // optimized model (saved by the same session) names the loop body's nodes, so per step: the Loop
  // node's time / S (no prefill in it) and each op type's time in the body per step.
  for (const [name, file] of VARIANTS) {
    const folder = mkdtempSync(join(tmpdir(), 'loop-profile-'));
    const optimized = join(folder, 'optimized.onnx');
    const s = await ort.InferenceSession.create(join(dir, file), { ...options, enableProfiling: true, profileFilePrefix: join(folder, 'p'), optimizedModelFilePath: optimized });
    for (const steps of counts) await timed(s, steps);
    s.endProfiling();
    await s.release();
    const model = onnxProto.onnx.ModelProto.decode(readFileSync(optimized));
    const body = model.graph.node.find((n) => n.opType === 'Loop').attribute.find((a) => a.name === 'body').g;
    const bodyNodes = new Set(body.node.map((n) => `${n.name}_kernel_time`));
    const profileFile = readdirSync(folder).find((f) => f.endsWith('.json'));
    const events = JSON.parse(readFileSync(join(folder, profileFile), 'utf8'));
    rmSync(folder, { recursive: true, force: true });
    const runsSeen = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').sort((a, b) => a.ts - b.ts);
    if (runsSeen.length !== counts.length) throw new Error(`${runsSeen.length} profiled runs for ${counts.length}`);
    runsSeen.forEach((run, r) => {
      const steps = counts[r];
      const ops = {};
      let loopUs = 0;
      for (const e of events) {
        if (e.cat !== 'Node' || e.ts < run.ts || e.ts > run.ts + run.dur) continue;
        if (e.args?.op_name === 'Loop' && e.name.endsWith('_kernel_time')) loopUs += e.dur;
        else if (bodyNodes.has(e.name)) ((ops[e.args.op_name] ??= {})[e.name] ??= []).push(e.dur);
      }
      // Per op type: the sum over its nodes of each node's median time (a body node runs once per
      // step), robust to the preemptions of a shared machine (a sum of all runs would carry them).
      const usPerStep = (op) => Object.values(ops[op] ?? {}).reduce((us, durs) => us + median(durs), 0);
      // The loop condition's own nodes (Not, ReduceMax; its two Casts are counted with the others').
      const condNodes = usPerStep('Not') + usPerStep('ReduceMax');
      const perStep = Object.keys(ops)
        .map((op) => [op, usPerStep(op)])
        .sort((a, b) => b[1] - a[1])
        .map(([op, us]) => [op, +us.toFixed(1)]);
      console.log(
        JSON.stringify({
          variant: name,
          profile: true,
          steps,
          prefill_len: prefill,
          cache_len_at_end: prefill + steps,
          // Under the profiler, which costs the Loop more per iteration than the nodes take: not a step time.
          profiled_loop_ms_per_step: +(loopUs / 1000 / steps).toFixed(2),
          cond_nodes_us_per_step: +condNodes.toFixed(1),
          body_nodes_ms_per_step: +(Object.keys(ops).reduce((us, op) => us + usPerStep(op), 0) / 1000).toFixed(2),
          us_per_step_by_op: Object.fromEntries(perStep),
        }),
      );
    });
  }
}
