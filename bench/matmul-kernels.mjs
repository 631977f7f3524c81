// One linear layer of the 3B decoder's MLP shape (K 2048, N 16384) in each CPU kernel format,
// prefill-sized (M 262: 256 image tokens and a short prompt) and decode-sized (M 1): ms and GOPS,
// medians. Shows where the prefill's time goes on this machine: MatMulNBits (int4, accuracy levels
// 0 and 4, block 32 or 128), DynamicQuantizeMatMul (per-channel int8: onnxruntime's QGEMM, AMX
// where the CPU has it) and fp32 MatMul. Random weights; the graphs are written to a temp folder.
//   node bench/matmul-kernels.mjs [--json]       (after npm run build)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { GraphBuilder, MS_DOMAIN } from '../out/daemon/engine/onnx/builder.js';

const K = 2048;
const N = 16384;
const KINDS = ['int4-acc0-b32', 'int4-acc4-b32', 'int4-acc4-b128', 'int8-channel', 'fp32'];
const bytes = (n) => Uint8Array.from({ length: n }, () => (Math.random() * 256) | 0);

function build(kind, path) {
  const g = new GraphBuilder({ name: kind });
  const a = g.input('a', 'float32', ['M', K]);
  let y;
  if (kind.startsWith('int4')) {
    const [, acc, block] = kind.split('-');
    const bs = Number(block.slice(1));
    const kb = K / bs;
    const b = g.initializer('b', 'uint8', [N, kb, bs / 2], bytes(N * kb * (bs / 2)));
    const s = g.initializer('s', 'float32', [N * kb], new Float32Array(N * kb).fill(0.01));
    const z = g.initializer('z', 'uint8', [N * Math.ceil(kb / 2)], new Uint8Array(N * Math.ceil(kb / 2)).fill(0x88));
    y = g.op('MatMulNBits', [a, b, s, z], { K, N, bits: 4, block_size: bs, accuracy_level: Number(acc.slice(3)) }, { domain: MS_DOMAIN });
  } else if (kind === 'int8-channel') {
    const b = g.initializer('b', 'int8', [K, N], new Int8Array(bytes(K * N).buffer));
    const s = g.initializer('s', 'float32', [N], new Float32Array(N).fill(0.01));
    const z = g.initializer('z', 'int8', [N], new Int8Array(N));
    y = g.op('DynamicQuantizeMatMul', [a, b, s, z], {}, { domain: MS_DOMAIN });
  } else {
    y = g.op('MatMul', [
      a,
      g.initializer(
        'b',
        'float32',
        [K, N],
        new Float32Array(K * N).map(() => Math.random() - 0.5),
      ),
    ]);
  }
  g.output('y', y, 'float32', ['M', N]);
  g.save(path);
}

const dir = mkdtempSync(join(tmpdir(), 'pg-matmul-'));
const rows = [];
try {
  for (const kind of KINDS) {
    const path = join(dir, `${kind}.onnx`);
    build(kind, path);
    const session = await ort.InferenceSession.create(path, { executionProviders: ['cpu'], logSeverityLevel: 3 });
    const row = { kind };
    for (const M of [262, 1]) {
      const x = new ort.Tensor(
        'float32',
        Float32Array.from({ length: M * K }, () => Math.random() - 0.5),
        [M, K],
      );
      await session.run({ a: x });
      const times = [];
      for (let i = 0; i < (M === 1 ? 31 : 7); i++) {
        const t = performance.now();
        await session.run({ a: x });
        times.push(performance.now() - t);
      }
      const ms = times.sort((p, q) => p - q)[times.length >> 1];
      row[`m${M}_ms`] = Math.round(ms * 100) / 100;
      row[`m${M}_gops`] = Math.round((2 * M * K * N) / ms / 1e6);
    }
    await session.release();
    rows.push(row);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (process.argv.includes('--json')) console.log(JSON.stringify({ K, N, rows }));
else
  for (const r of rows)
    console.log(`${r.kind.padEnd(16)} M=262 ${String(r.m262_ms).padStart(7)} ms ${String(r.m262_gops).padStart(5)} GOPS   M=1 ${String(r.m1_ms).padStart(6)} ms`);
