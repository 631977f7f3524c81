// Test helpers: the tiny model converted once per test process, per-test runtime folders (so a
// test never touches a real user's daemon), spawned daemons and raw JSON-RPC clients.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { convert } from '../../daemon/engine/convert/index.js';
import { connectDaemon, type DaemonConnection } from '../../daemon/client/daemon.js';
import { daemonEndpoint, type DaemonEndpoint } from '../../daemon/client/endpoint.js';
import type { Backend } from '../../daemon/server/backend.js';
import { silentLogger } from '../../daemon/server/log.js';
import { type RunningDaemon, startSocketDaemon } from '../../daemon/server/server.js';
import * as protocol from '../../daemon/protocol.js';

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const fixtureDir = join(repoRoot, 'test', 'fixtures', 'tiny-paligemma-224');
export const mainJs = join(repoRoot, 'out', 'daemon', 'cli', 'main.js');
export const images = {
  shapes: join(fixtureDir, 'shapes.png'),
  gradient: join(fixtureDir, 'gradient.png'),
  wide: join(fixtureDir, 'wide.jpg'),
};

let converted: Promise<string> | undefined;
const scratch: string[] = [];

/** A short temp folder (Unix socket paths are limited to about 107 bytes). */
export async function tempDir(prefix = 'pg-'): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  scratch.push(d);
  return d;
}

/** test/fixtures/tiny-paligemma-224 converted with the real converter, once per process. */
export function tinyModel(): Promise<string> {
  converted ??= (async () => {
    const out = join(await tempDir('pg-model-'), 'tiny-paligemma-224');
    await convert({ input: fixtureDir, output: out });
    return out;
  })();
  return converted;
}

export async function cleanupScratch(): Promise<void> {
  await Promise.all(scratch.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

export interface TestDaemon {
  endpoint: DaemonEndpoint;
  env: NodeJS.ProcessEnv;
  runtimeDir: string;
  /** Connects (starting the daemon with `serveArgs` if needed), like the CLI and extension do. */
  connect(): Promise<DaemonConnection>;
  /** Stops the daemon if one runs (stop request, then SIGKILL by pid if it lingers). */
  stop(): Promise<void>;
}

export async function testDaemon(serveArgs: string[] = []): Promise<TestDaemon> {
  const runtimeDir = await tempDir('pg-run-');
  const env = { ...process.env, PALIGEMMA_RUNTIME_DIR: runtimeDir, PALIGEMMA_LOG_LEVEL: process.env.PALIGEMMA_TEST_LOG_LEVEL ?? 'info' };
  const endpoint = daemonEndpoint(env);
  const connect = () => connectDaemon({ endpoint, env, start: { command: process.execPath, args: [mainJs] }, serveArgs, timeoutMs: 20_000 });
  const stop = async () => {
    if (!existsSync(endpoint.socketPath)) return;
    let pid: number | undefined;
    try {
      const c = await connectDaemon({ endpoint, start: false, timeoutMs: 2000 });
      pid = (await c.connection.sendRequest(protocol.Status.type)).pid;
      await c.connection.sendRequest(protocol.Stop.type).catch(() => {});
      c.close();
    } catch {
      return;
    }
    for (let i = 0; i < 100 && isAlive(pid); i++) await sleep(50);
    if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  };
  return { endpoint, env, runtimeDir, connect, stop };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** Runs the CLI (`node out/daemon/cli/main.js ...`) and collects its output. */
export function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [mainJs, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A socket daemon in this process on a per-test runtime folder, serving the tiny model with `backend`. */
export async function inProcessDaemon(backend: Backend, extra: { queueCapacity?: number; keepAliveMs?: number; maxBatch?: number; memoryBudgetBytes?: number } = {}) {
  const runtimeDir = await tempDir('pg-q-');
  const endpoint = daemonEndpoint({ PALIGEMMA_RUNTIME_DIR: runtimeDir });
  const started = await startSocketDaemon({
    backend,
    log: silentLogger,
    modelPath: await tinyModel(),
    executionProvider: 'cpu',
    endpoint,
    idleExitMs: 60_000,
    ...extra,
  });
  assert.equal(started.kind, 'started');
  const daemon = (started as { daemon: RunningDaemon }).daemon;
  const clients: DaemonConnection[] = [];
  const connect = async () => {
    const c = await connectDaemon({ endpoint, start: false });
    clients.push(c);
    return c;
  };
  const stop = async () => {
    clients.forEach((c) => c.close());
    await daemon.shutdown('test over');
  };
  return { daemon, connect, stop };
}

/** One Content-Length frame around `body`. */
export const frame = (body: string) => `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

/** A raw socket to a daemon: writes bytes, collects every JSON-RPC message it sends back. */
export async function rawSocket(socketPath: string) {
  const socket = connect(socketPath);
  await new Promise<void>((r) => socket.once('connect', () => r()));
  // Bytes, not characters: Content-Length counts bytes, and messages may hold non-ASCII text.
  let buf = Buffer.alloc(0);
  let closed = false;
  const messages: Array<{ id: number | string | null; result?: unknown; error?: { code: number; message: string } }> = [];
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      const m = /^Content-Length: (\d+)\r\n\r\n/.exec(buf.toString('latin1', 0, Math.min(buf.length, 64)));
      if (!m || buf.length < m[0].length + Number(m[1])) break;
      messages.push(JSON.parse(buf.toString('utf8', m[0].length, m[0].length + Number(m[1]))));
      buf = buf.subarray(m[0].length + Number(m[1]));
    }
  });
  socket.on('close', () => (closed = true));
  /** Waits (up to 3 s) until `cond` holds. */
  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 300 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  };
  const waitFor = async (n: number) => {
    await until(() => messages.length >= n);
    return messages;
  };
  return { socket, frame, messages, until, waitFor, isClosed: () => closed };
}
