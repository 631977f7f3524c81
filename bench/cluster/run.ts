// `node out/bench/cluster/run.js [--delay-ms 50] [--jobs 400] [--out bench/results/<name>]`: what the
// NATS broker adds per job, and batch throughput with 1, 2, 4 and 8 worker processes whose engine
// is a SIMULATION (a fixed delay per model call, bench/cluster/simulatedEngine.ts), so the numbers
// show the broker and the worker loop, not a model. One nats-server with JetStream on a free
// 127.0.0.1 port; everything it starts is stopped at the end.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus, loadavg, totalmem } from 'node:os';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connectBroker } from '../../daemon/client/broker.js';
import * as protocol from '../../daemon/protocol.js';
import { natsServerVersion, startNats } from '../../test/cluster/processes.js';

const { values } = parseArgs({ options: { 'delay-ms': { type: 'string' }, jobs: { type: 'string' }, out: { type: 'string' }, machine: { type: 'string' } } });
const delayMs = Number(values['delay-ms'] ?? 50);
const jobs = Number(values.jobs ?? 400);
const workerJs = fileURLToPath(new URL('./simulatedWorker.js', import.meta.url));

/** CPU seconds (user + system) a process has used, from /proc. */
async function cpuSeconds(pid: number): Promise<number> {
  const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
const image = () => ({ data: randomBytes(2048).toString('base64') });

async function startWorkers(url: string, n: number): Promise<ChildProcess[]> {
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ChildProcess>((resolve, reject) => {
          const child = spawn(process.execPath, [workerJs, url, String(delayMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
          child.stdout!.once('data', () => resolve(child));
          child.once('exit', (code) => reject(new Error(`a simulated worker exited with ${code}`)));
        }),
    ),
  );
}

async function stopWorkers(ws: ChildProcess[]): Promise<void> {
  await Promise.all(
    ws.map(
      (w) =>
        new Promise<void>((r) => {
          if (w.exitCode !== null) return r();
          w.removeAllListeners('exit');
          w.once('exit', () => r());
          w.kill('SIGTERM');
        }),
    ),
  );
}

if (!natsServerVersion()) throw new Error('nats-server is not installed (bash .ci/install-cluster.sh)');
const loadBefore = loadavg()[0];
const dir = await mkdtemp(join(tmpdir(), 'pg-bench-nats-'));
const [node] = await startNats({ dir, nodes: 1 });
const rows: Array<{
  workers: number;
  jobs: number;
  seconds: number;
  jobsPerSecond: number;
  ideal: number;
  efficiency: number;
  natsCpu: number;
  clientCpu: number;
  workersCpu: number;
}> = [];
let overhead: { requestP50: number; requestP99: number; jobMs: number } | undefined;
try {
  for (const n of [1, 2, 4, 8]) {
    const ws = await startWorkers(node.url, n);
    const client = await connectBroker({ url: node.url });
    try {
      if (n === 1) {
        // Interactive: sequential requests, each a model call of delayMs.
        const ms: number[] = [];
        for (let i = 0; i < 100; i++) {
          const t0 = performance.now();
          await client.connection.sendRequest(protocol.Caption.type, { image: image() });
          ms.push(performance.now() - t0 - delayMs);
        }
        overhead = { requestP50: q(ms.slice(10), 0.5), requestP99: q(ms.slice(10), 0.99), jobMs: 0 };
      }
      const count = Math.max(jobs, 100 * n);
      const natsCpu0 = await cpuSeconds(node.child.pid!);
      const workersCpu0 = (await Promise.all(ws.map((w) => cpuSeconds(w.pid!)))).reduce((a, b) => a + b, 0);
      const clientCpu0 = process.cpuUsage();
      const t0 = performance.now();
      await client.runJobs(
        'caption',
        Array.from({ length: count }, () => ({ image: image() })),
        (o) => {
          if (!o.ok) throw o.error;
        },
      );
      const seconds = (performance.now() - t0) / 1000;
      const natsCpu = ((await cpuSeconds(node.child.pid!)) - natsCpu0) / seconds;
      const workersCpu = ((await Promise.all(ws.map((w) => cpuSeconds(w.pid!)))).reduce((a, b) => a + b, 0) - workersCpu0) / seconds;
      const c = process.cpuUsage(clientCpu0);
      const clientCpu = (c.user + c.system) / 1e6 / seconds;
      const ideal = (n * 1000) / delayMs;
      // One worker, steady state: wall time per job beyond the model's.
      if (n === 1) overhead!.jobMs = (seconds * 1000) / count - delayMs;
      rows.push({ workers: n, jobs: count, seconds, jobsPerSecond: count / seconds, ideal, efficiency: count / seconds / ideal, natsCpu, clientCpu, workersCpu });
      process.stderr.write(`${n} workers: ${(count / seconds).toFixed(1)} jobs/s (ideal ${ideal})\n`);
    } finally {
      await client.close();
      await stopWorkers(ws);
    }
  }
} finally {
  await node.stop();
  await rm(dir, { recursive: true, force: true });
}

const machine = values.machine ?? `${cpus().length}-core ${cpus()[0]?.model ?? ''}, ${(totalmem() / 2 ** 30).toFixed(0)} GB`;
const date = new Date().toISOString().slice(0, 10);
const md = [
  `# Cluster broker overhead and throughput (${date})`,
  '',
  `Machine: ${machine}; 1-minute load average ${loadBefore.toFixed(1)} before the run, ${loadavg()[0].toFixed(1)} after. ${natsServerVersion()} (one node, JetStream, R1), client, and worker processes all on this machine.`,
  `Workers are the real \`daemon/cluster/worker.ts\` and daemon service over a SIMULATED engine: every model call is a fixed ${delayMs} ms timer`,
  "(bench/cluster/simulatedEngine.ts), one model call at a time per worker (the daemon's scheduler; the worker takes two jobs, one running and one waiting),",
  `so a worker can do at most ${1000 / delayMs} jobs/s. Images are 2 KB of random bytes.`,
  '',
  '## Overhead per job (1 worker)',
  '',
  `- request/reply beyond the ${delayMs} ms model call: p50 ${overhead!.requestP50.toFixed(1)} ms, p99 ${overhead!.requestP99.toFixed(1)} ms (90 sequential requests after 10 warm-up)`,
  `- batch job (pull, shared-cache lookup and write, result publish, ack) beyond the model call: ${overhead!.jobMs.toFixed(1)} ms per job (wall time per job of the 1-worker run below, less the model call)`,
  '',
  '## Throughput of batch jobs (one client)',
  '',
  'CPU columns: cores used on average during the run by nats-server, by the one client process and by all worker processes together.',
  '',
  '| workers | jobs | seconds | jobs/s | ideal jobs/s | efficiency | nats-server CPU | client CPU | workers CPU |',
  '|---|---|---|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.workers} | ${r.jobs} | ${r.seconds.toFixed(2)} | ${r.jobsPerSecond.toFixed(1)} | ${r.ideal.toFixed(0)} | ${(r.efficiency * 100).toFixed(0)}% | ${r.natsCpu.toFixed(2)} | ${r.clientCpu.toFixed(2)} | ${r.workersCpu.toFixed(2)} |`,
  ),
  '',
];
const out = values.out ?? join('bench', 'results', `${date}-cluster-simulated.md`);
await writeFile(out, md.join('\n'));
await writeFile(out.replace(/\.md$/, '.json'), JSON.stringify({ date, machine, loadBefore, loadAfter: loadavg()[0], delayMs, overhead, rows }, null, 2) + '\n');
process.stdout.write(md.join('\n'));
