// `npm run test:cluster`: a 3-node JetStream cluster on 127.0.0.1 ports and 3 workers with the tiny
// model. 300 caption jobs from 3 clients; one worker is kill -9'd and one NATS node stopped midway.
// Every job completes, each result is handed over exactly once and equals what the local daemon
// returns for that image; then request/reply latency through the broker is measured against the
// local socket. Everything started here is stopped at the end. Runs only when PALIGEMMA_TEST_CLUSTER=1
// (npm run test:cluster): it takes minutes, and needs nats-server (.ci/install-cluster.sh).
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { type BrokerConnection, connectBroker } from '../../daemon/client/broker.js';
import * as protocol from '../../daemon/protocol.js';
import type { TextResult } from '../../daemon/protocol.js';
import { cleanupScratch, repoRoot, tempDir, testDaemon, tinyModel, type TestDaemon } from '../server/daemon.js';
import { type NatsNode, natsServerVersion, startNats, startWorker, stopWorker, type WorkerProcess } from './processes.js';

const skip =
  process.env.PALIGEMMA_TEST_CLUSTER !== '1'
    ? 'the cluster scenario runs with npm run test:cluster'
    : natsServerVersion()
      ? false
      : 'nats-server is not installed (bash .ci/install-cluster.sh)';

const JOBS = Number(process.env.PALIGEMMA_CLUSTER_JOBS ?? 300);
/** Phases on stderr as they happen (the test's diagnostics print only at its end). */
const phase = (m: string) => process.stderr.write(`[cluster ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
const CLIENTS = 3;
const decoding = { maxNewTokens: 4 };

let nats: NatsNode[] = [];
let workers: WorkerProcess[] = [];
let clients: BrokerConnection[] = [];
let local: TestDaemon | undefined;
let paths: string[] = [];
let model: string;

before(async () => {
  if (skip) return;
  model = await tinyModel();
  const dir = await tempDir('pg-cl-img-');
  // Distinct images (a colour and a bar per index), so every job is a model run.
  paths = await Promise.all(
    Array.from({ length: JOBS }, async (_, i) => {
      const p = join(dir, `img-${i}.png`);
      const bar = await sharp({ create: { width: 8, height: 32, channels: 3, background: { r: (i * 7) % 256, g: 255 - (i % 256), b: (i * 13) % 256 } } })
        .png()
        .toBuffer();
      await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: i % 256, g: (i * 3) % 256, b: 128 } } })
        .composite([{ input: bar, left: i % 24, top: 0 }])
        .png()
        .toFile(p);
      return p;
    }),
  );
  nats = await startNats({ dir: await tempDir('pg-cl-nats-'), nodes: 3 });
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  for (const w of workers) await stopWorker(w);
  await local?.stop();
  for (const n of nats) await n.stop();
  await cleanupScratch();
});

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

test('300 jobs from 3 clients survive a killed worker and a stopped NATS node, each answered once and as the local daemon answers', { skip, timeout: 600_000 }, async (t) => {
  // What the local daemon says for each image: the reference, and local request/reply timings.
  local = await testDaemon(['--model', model, '--ep', 'cpu']);
  const c = await local.connect();
  const reference: string[] = [];
  try {
    for (const p of paths) reference.push((await c.connection.sendRequest(protocol.Caption.type, { image: { path: p }, decoding })).text);
  } finally {
    c.close();
  }

  phase(`reference captions from the local daemon: ${reference.length}`);
  const urls = nats.map((n) => n.url);
  for (let i = 0; i < 3; i++) {
    // Each worker knows every node (it reconnects to another when its node stops).
    const list = [...urls.slice(i), ...urls.slice(0, i)].join(',');
    workers.push(await startWorker(['--broker', list, '--model', model, '--ep', 'cpu', '--ack-wait-ms', '3000', '--log-level', 'warn']));
  }
  clients = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => connectBroker({ url: [...urls.slice(i), ...urls.slice(0, i)].join(',') })));

  phase('3 workers serving; enqueueing');
  const handed = new Array<number>(JOBS).fill(0);
  const texts = new Array<string | undefined>(JOBS);
  const failures: string[] = [];
  let done = 0;
  let killed = false;
  let stopped: Promise<void> | undefined;
  const t0 = performance.now();
  const perClient = JOBS / CLIENTS;
  await Promise.all(
    clients.map((client, k) =>
      client
        .runJobs<TextResult>(
          'caption',
          paths.slice(k * perClient, (k + 1) * perClient).map((p) => ({ image: { path: p }, decoding })),
          (o, i) => {
            const index = k * perClient + i;
            handed[index]++;
            if (o.ok) texts[index] = o.value.text;
            else failures.push(`${index}: ${(o.error as Error).message}`);
            done++;
            if (done % 50 === 0) phase(`${done} results`);
            if (done >= 60 && !killed) {
              killed = true;
              workers[0].child.kill('SIGKILL');
              phase(`kill -9 worker ${workers[0].child.pid}`);
              t.diagnostic(`kill -9 worker ${workers[0].child.pid} after ${done} results`);
            }
            if (done >= 150 && !stopped) {
              phase(`stopping NATS node ${nats[1].name}`);
              t.diagnostic(`stopping NATS node ${nats[1].name} after ${done} results`);
              stopped = nats[1].stop();
            }
          },
        )
        .then(() => phase(`client ${k} has all its results`)),
    ),
  );
  const seconds = (performance.now() - t0) / 1000;
  await stopped;
  t.diagnostic(`${JOBS} jobs in ${seconds.toFixed(1)} s (${(JOBS / seconds).toFixed(1)} jobs/s) on ${workers.length} workers, one killed`);
  assert.deepEqual(failures, []);
  assert.ok(killed && stopped, 'the worker was killed and the node stopped while jobs ran');
  assert.equal(await workers[0].exited, 'SIGKILL');
  assert.deepEqual(handed, new Array(JOBS).fill(1), 'each result handed over exactly once');
  for (let i = 0; i < JOBS; i++) assert.equal(texts[i], reference[i], `image ${i}`);
  // The killed worker's unacknowledged jobs went to the others, which logged why.
  assert.ok(
    workers.slice(1).some((w) => /"msg":"job delivered again".*"reason":"the previous delivery failed or was not acknowledged in time/.test(w.stderr())),
    'a surviving worker logged a redelivery with its reason',
  );

  // Request/reply latency, broker against the local socket, on requests that run the model
  // (a decoding not used above, so neither side has them cached).
  const latency = { maxNewTokens: 3 };
  const sample = paths.slice(0, 60);
  const lc = await local.connect();
  const msLocal: number[] = [];
  const msBroker: number[] = [];
  try {
    // Alternating, so both see the same load on this (shared) machine.
    for (const p of sample) {
      let s = performance.now();
      await lc.connection.sendRequest(protocol.Caption.type, { image: { path: p }, decoding: latency });
      msLocal.push(performance.now() - s);
      s = performance.now();
      await clients[0].connection.sendRequest(protocol.Caption.type, { image: { path: p }, decoding: latency });
      msBroker.push(performance.now() - s);
    }
  } finally {
    lc.close();
  }
  const viaLocal = { p50: quantile(msLocal, 0.5), p99: quantile(msLocal, 0.99) };
  const viaBroker = { p50: quantile(msBroker, 0.5), p99: quantile(msBroker, 0.99) };
  const line = `request/reply ms, ${sample.length} sequential captions (model runs): local socket p50 ${viaLocal.p50.toFixed(1)} p99 ${viaLocal.p99.toFixed(1)}; broker p50 ${viaBroker.p50.toFixed(1)} p99 ${viaBroker.p99.toFixed(1)}`;
  t.diagnostic(line);
  const out = join(repoRoot, 'test-results', 'cluster');
  await mkdir(out, { recursive: true });
  await writeFile(
    join(out, 'summary.json'),
    JSON.stringify({ jobs: JOBS, seconds, jobsPerSecond: JOBS / seconds, latencyMs: { local: viaLocal, broker: viaBroker } }, null, 2) + '\n',
  );

  // Everything stops: the remaining workers drain and exit 0, every NATS node exits.
  for (const w of workers.slice(1)) assert.equal(await stopWorker(w), 0, w.stderr());
  workers = [];
  for (const n of nats) await n.stop();
  for (const n of nats) assert.ok(n.child.exitCode !== null || n.child.signalCode !== null, `${n.name} stopped`);
});
