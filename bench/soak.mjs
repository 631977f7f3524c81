#!/usr/bin/env node
// Load and memory probes against a real daemon (the tiny test model, CPU), repeating the ones that
// found the daemon's weak spots: 24 concurrent requests, 3 clients x 100 concurrent, 500 clients at
// once, 16 PNGs that decode large at once (peak RSS against the memory budget), 1,000 cached and 300
// uncached requests (RSS before and after). Not run in CI: it takes minutes and its numbers depend on
// the machine. Needs `npm run build` first.
//
//   node bench/soak.mjs [--out bench/results/<date>-<machine>-soak] [--note "what else ran"]
//
// Writes <out>.json (every number) and <out>.md (the table), and prints the table.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = (p) => join(root, 'out', p);
const { convert } = await import(out('daemon/engine/convert/index.js'));
const { connectDaemon } = await import(out('daemon/client/daemon.js'));
const { daemonEndpoint } = await import(out('daemon/client/endpoint.js'));
const protocol = await import(out('daemon/protocol.js'));
const { DEFAULT_MEMORY_BUDGET_BYTES } = await import(out('daemon/server/memoryBudget.js'));

const { values } = parseArgs({ options: { out: { type: 'string' }, note: { type: 'string' } } });
const MB = 1024 * 1024;
const mb = (b) => Math.round((b / MB) * 10) / 10;
const decoding = { maxNewTokens: 3 };

const scratch = await mkdtemp(join(tmpdir(), 'pg-soak-'));
const runtimeDir = join(scratch, 'run');
const env = { ...process.env, PALIGEMMA_RUNTIME_DIR: runtimeDir, PALIGEMMA_LOG_LEVEL: 'warn' };
const endpoint = daemonEndpoint(env);
const model = join(scratch, 'model');
process.stderr.write('converting the tiny model ...\n');
await convert({ input: join(root, 'test/fixtures/tiny-paligemma-224'), output: model });

const connect = () =>
  connectDaemon({
    endpoint,
    env,
    start: { command: process.execPath, args: [out('daemon/cli/main.js')] },
    serveArgs: ['--model', model, '--ep', 'cpu', '--idle-exit-ms', '600000'],
    timeoutMs: 60_000,
  });

const main = await connect();
const rpc = main.connection;
const status = () => rpc.sendRequest(protocol.Status.type);
const results = { date: new Date().toISOString(), machine: machineNote(), note: values.note ?? null, probes: {} };

/** A distinct small PNG per index, base64 (every one is a cache miss). */
async function smallPng(i) {
  const png = await sharp({ create: { width: 48 + (i % 17), height: 40 + (i % 13), channels: 3, background: { r: i % 256, g: (i * 37) % 256, b: (i * 91) % 256 } } })
    .png()
    .toBuffer();
  return { data: png.toString('base64'), mimeType: 'image/png' };
}

async function timed(name, fn) {
  process.stderr.write(`${name} ...\n`);
  const t0 = performance.now();
  const r = await fn();
  results.probes[name] = { ms: Math.round(performance.now() - t0), ...r };
  process.stderr.write(`  ${JSON.stringify(results.probes[name])}\n`);
}

function outcomes(settled) {
  const errors = {};
  for (const s of settled) {
    if (s.status === 'rejected') {
      const code = s.reason?.code ?? 'thrown';
      errors[code] = (errors[code] ?? 0) + 1;
    }
  }
  return { ok: settled.filter((s) => s.status === 'fulfilled').length, failed: settled.length - settled.filter((s) => s.status === 'fulfilled').length, errors };
}

await rpc.sendRequest(protocol.Caption.type, { image: { path: join(root, 'test/fixtures/tiny-paligemma-224/shapes.png') }, decoding });

await timed('24 concurrent (distinct images)', async () => {
  const imgs = await Promise.all(Array.from({ length: 24 }, (_, i) => smallPng(10_000 + i)));
  const settled = await Promise.allSettled(imgs.map((image) => rpc.sendRequest(protocol.Caption.type, { image, decoding })));
  return outcomes(settled);
});

await timed('3 clients x 100 concurrent', async () => {
  const clients = await Promise.all([0, 1, 2].map(() => connect()));
  const imgs = await Promise.all(Array.from({ length: 20 }, (_, i) => smallPng(20_000 + i)));
  const prompts = ['caption en', 'ocr', 'caption de', 'caption es', 'answer en what is this?'];
  // The answer for each (image, prompt) once, then everyone asks them all at once: each answer
  // must be the one for its own question (nothing crossed between requests or clients).
  const expected = new Map();
  for (let k = 0; k < 100; k++) {
    const [img, prompt] = [k % imgs.length, prompts[k % prompts.length]];
    const key = `${img}|${prompt}`;
    if (!expected.has(key)) expected.set(key, (await rpc.sendRequest(protocol.Generate.type, { image: imgs[img], prompt, decoding })).text);
  }
  const settled = await Promise.allSettled(
    clients.flatMap((c) =>
      Array.from({ length: 100 }, (_, k) =>
        c.connection.sendRequest(protocol.Generate.type, { image: imgs[k % imgs.length], prompt: prompts[k % prompts.length], decoding }).then((r) => {
          if (r.text !== expected.get(`${k % imgs.length}|${prompts[k % prompts.length]}`)) throw Object.assign(new Error('crossed'), { code: 'crossed' });
          return r;
        }),
      ),
    ),
  );
  clients.forEach((c) => c.close());
  return outcomes(settled);
});

await timed('500 clients at once', async () => {
  const settled = await Promise.allSettled(
    Array.from({ length: 500 }, async () => {
      const c = await connect();
      try {
        await c.connection.sendRequest(protocol.Status.type);
        return await c.connection.sendRequest(protocol.Caption.type, { image: { path: join(root, 'test/fixtures/tiny-paligemma-224/shapes.png') }, decoding });
      } finally {
        c.close();
      }
    }),
  );
  return { ...outcomes(settled), clientsAfter: (await status()).clients };
});

await timed('16 large-decoding PNGs at once', async () => {
  // 7000 x 7000 in one colour: a few hundred KB of PNG, 147 MB of RGB each once decoded.
  const files = [];
  for (let i = 0; i < 16; i++) {
    const f = join(scratch, `large-${i}.png`);
    await sharp({ create: { width: 7000, height: 7000, channels: 3, background: { r: 10 * i, g: 200, b: 30 } } })
      .png({ compressionLevel: 9 })
      .toFile(f);
    files.push(f);
  }
  const before = (await status()).memory.rssBytes;
  let peak = before;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, (await status()).memory.rssBytes);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const settled = await Promise.allSettled(files.map((f) => rpc.sendRequest(protocol.Caption.type, { image: { path: f }, decoding })));
  sampling = false;
  await sampler;
  const busy = settled.find((s) => s.status === 'rejected' && s.reason?.code === protocol.ErrorCodes.Busy);
  return {
    ...outcomes(settled),
    budgetMB: mb(DEFAULT_MEMORY_BUDGET_BYTES),
    rssBeforeMB: mb(before),
    peakRssMB: mb(peak),
    peakOverBeforeMB: mb(peak - before),
    busyMessage: busy?.reason?.message,
  };
});

await timed('1,000 cached + 300 uncached', async () => {
  const cached = () => rpc.sendRequest(protocol.Caption.type, { image: { path: join(root, 'test/fixtures/tiny-paligemma-224/gradient.png') }, decoding });
  await cached();
  const before = (await status()).memory;
  for (let b = 0; b < 10; b++) await Promise.all(Array.from({ length: 100 }, cached));
  const afterCached = (await status()).memory;
  const imgs = await Promise.all(Array.from({ length: 300 }, (_, i) => smallPng(30_000 + i)));
  for (let i = 0; i < 300; i += 10) await Promise.all(imgs.slice(i, i + 10).map((image) => rpc.sendRequest(protocol.Caption.type, { image, decoding })));
  const end = await status();
  return {
    rssBeforeMB: mb(before.rssBytes),
    rssAfterCachedMB: mb(afterCached.rssBytes),
    rssAfterUncachedMB: mb(end.memory.rssBytes),
    heapBeforeMB: mb(before.heapUsedBytes),
    heapAfterMB: mb(end.memory.heapUsedBytes),
    cacheEntries: end.cache.entries,
    imageEntries: end.cache.imageEntries,
  };
});

await rpc.sendRequest(protocol.Stop.type).catch(() => {});
main.close();
await rm(scratch, { recursive: true, force: true });

const table = [
  `# Daemon soak, ${results.date.slice(0, 10)}`,
  '',
  `Machine: ${results.machine}.${results.note ? ` ${results.note}` : ''}`,
  'Tiny test model (test/fixtures/tiny-paligemma-224), CPU, 3 new tokens per request; `node bench/soak.mjs`.',
  '',
  '| probe | ms | result |',
  '|---|---:|---|',
  ...Object.entries(results.probes).map(
    ([name, { ms, ...r }]) =>
      `| ${name} | ${ms} | ${Object.entries(r)
        .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`)
        .join('; ')} |`,
  ),
  '',
].join('\n');
process.stdout.write(`${table}\n`);
if (values.out) {
  await writeFile(`${values.out}.json`, `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(`${values.out}.md`, table);
}

function machineNote() {
  return `${process.platform} ${process.arch}, ${cpus().length} cores (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 1024 ** 3)} GB, Node ${process.version}`;
}
