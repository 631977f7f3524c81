// Test helpers for the cluster: nats-server nodes (alone or as a JetStream cluster on 127.0.0.1
// ports) and `paligemma worker` processes, each stopped by the pid it was started with.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { mainJs, sleep, waitFor } from '../server/daemon.js';

export function natsServerVersion(): string | undefined {
  const r = spawnSync('nats-server', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface NatsNode {
  name: string;
  port: number;
  url: string;
  child: ChildProcess;
  /** SIGTERM (lame duck skipped), waits for the exit. */
  stop(): Promise<void>;
  start(): Promise<void>;
}

export interface NatsOptions {
  dir: string;
  /** 1: a single server; 3: a JetStream cluster with routes between all nodes. */
  nodes: number;
  maxPayload?: number;
  token?: string;
}

export async function startNats(o: NatsOptions): Promise<NatsNode[]> {
  const ports = await Promise.all(Array.from({ length: o.nodes }, async () => ({ client: await freePort(), cluster: await freePort() })));
  const nodes: NatsNode[] = [];
  for (let i = 0; i < o.nodes; i++) {
    const name = `n${i + 1}`;
    const store = join(o.dir, name);
    await mkdir(store, { recursive: true });
    const lines = [
      `server_name: ${name}`,
      `listen: 127.0.0.1:${ports[i].client}`,
      `max_payload: ${o.maxPayload ?? 8 * 1024 * 1024}`,
      `jetstream { store_dir: "${store}", max_memory_store: 64MB, max_file_store: 1GB }`,
    ];
    if (o.token) lines.push(`authorization { token: "${o.token}" }`);
    if (o.nodes > 1) {
      const routes = ports.filter((_, j) => j !== i).map((p) => `nats-route://127.0.0.1:${p.cluster}`);
      lines.push(`cluster { name: pg-test, listen: 127.0.0.1:${ports[i].cluster}, routes: [${routes.join(', ')}] }`);
    }
    const conf = join(o.dir, `${name}.conf`);
    await writeFile(conf, lines.join('\n') + '\n');
    const node: NatsNode = {
      name,
      port: ports[i].client,
      url: `nats://127.0.0.1:${ports[i].client}`,
      child: undefined as unknown as ChildProcess,
      async start() {
        const log = createWriteStream(join(o.dir, `${name}.log`), { flags: 'a' });
        const child = spawn('nats-server', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
        child.stdout!.pipe(log);
        child.stderr!.pipe(log);
        node.child = child;
        let ready = false;
        child.stderr!.on('data', (d: Buffer) => {
          if (d.toString().includes('Server is ready')) ready = true;
        });
        await waitFor(() => ready || child.exitCode !== null, 15_000, `nats-server ${name} to be ready`);
        if (child.exitCode !== null) throw new Error(`nats-server ${name} exited with ${child.exitCode} (log: ${join(o.dir, `${name}.log`)})`);
      },
      async stop() {
        const child = node.child;
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(10_000)]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      },
    };
    nodes.push(node);
  }
  await Promise.all(nodes.map((n) => n.start()));
  return nodes;
}

export interface WorkerProcess {
  child: ChildProcess;
  stderr: () => string;
  /** Waits for the exit; resolves with its code or signal. */
  exited: Promise<number | string | null>;
}

/** `paligemma worker` as a real process; resolves once it announced its subjects. */
export async function startWorker(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [mainJs, 'worker', ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | string | null>((r) => child.once('exit', (code, sig) => r(code ?? sig)));
  await waitFor(() => err.includes('paligemma worker: serving') || child.exitCode !== null, 60_000, 'the worker to start serving');
  if (child.exitCode !== null) throw new Error(`the worker exited with ${child.exitCode}:\n${err}`);
  return { child, stderr: () => err, exited };
}

export async function stopWorker(w: WorkerProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | string | null> {
  if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill(signal);
  const r = await Promise.race([w.exited, sleep(20_000).then(() => 'timeout')]);
  if (r === 'timeout') {
    w.child.kill('SIGKILL');
    return w.exited;
  }
  return r;
}
