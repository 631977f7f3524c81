// Connecting to the shared per-user daemon, starting it (detached) when nobody answers. The CLI
// uses this and so does the extension (its LanguageClient ServerOptions returns these streams),
// so it must never import vscode.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync, truncateSync } from 'node:fs';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createMessageConnection, type MessageConnection, SocketMessageReader } from 'vscode-jsonrpc/node';
import { type DaemonEndpoint, daemonEndpoint, dialIfRunning, ensureRuntimeDir, tryLock } from './endpoint.js';
import { LimitedMessageWriter } from './messageWriter.js';

export interface DaemonCommand {
  command: string;
  args: string[];
}

export interface ConnectOptions {
  endpoint?: DaemonEndpoint;
  /** How to start `paligemma serve --socket`; false: only connect to a running daemon. */
  start?: DaemonCommand | false;
  /** Extra `serve` arguments when starting (e.g. --model, --idle-exit-ms). */
  serveArgs?: string[];
  env?: NodeJS.ProcessEnv;
  /** Give up after this long (default 30 s). */
  timeoutMs?: number;
  /** Told once when this client starts a daemon. */
  onStarting?: (endpoint: DaemonEndpoint) => void;
}

export class DaemonUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DaemonUnavailableError';
  }
}

/**
 * `node out/daemon/cli/main.js`: the CLI that ships next to this file. In the esbuild bundle
 * (dist/daemon.mjs) this module is inlined into the CLI itself, so the bundle is the command.
 */
export function defaultDaemonCommand(): DaemonCommand {
  const self = fileURLToPath(import.meta.url);
  const cli = /[\\/]client[\\/]daemon\.[cm]?[jt]s$/.test(self) ? fileURLToPath(new URL('../cli/main.js', import.meta.url)) : self;
  return { command: process.execPath, args: [cli] };
}

/**
 * A socket connected to the shared daemon. Dials with backoff; when nothing answers, one client
 * (holding the spawn lock) starts the daemon detached and the others keep dialling.
 */
export async function connectSocket(o: ConnectOptions = {}): Promise<Socket> {
  const endpoint = o.endpoint ?? daemonEndpoint(o.env);
  const deadline = Date.now() + (o.timeoutMs ?? 30_000);
  await ensureRuntimeDir(endpoint.runtimeDir);
  let started: { exited?: { code: number | null; signal: string | null } } | undefined;
  let releaseSpawn: (() => Promise<void>) | undefined;
  try {
    for (let delay = 25; ; delay = Math.min(delay * 2, 400)) {
      const socket = await dialIfRunning(endpoint.socketPath);
      if (socket) return socket;
      if (o.start === false) {
        throw new DaemonUnavailableError(`no PaliGemma daemon is running (socket ${endpoint.socketPath})`);
      }
      if (started?.exited) {
        const { code, signal } = started.exited;
        throw new DaemonUnavailableError(`the daemon exited during start (${signal ?? `code ${code}`})${logTail(endpoint.logPath)}`);
      }
      if (!started && !releaseSpawn) {
        releaseSpawn = await tryLock(endpoint.spawnLockPath, 30_000);
        if (releaseSpawn) {
          o.onStarting?.(endpoint);
          started = startDetached(endpoint, o);
        }
      }
      if (Date.now() > deadline) {
        throw new DaemonUnavailableError(`timed out waiting for the daemon at ${endpoint.socketPath}${logTail(endpoint.logPath)}`);
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  } finally {
    await releaseSpawn?.();
  }
}

function startDetached(endpoint: DaemonEndpoint, o: ConnectOptions) {
  const cmd = o.start || defaultDaemonCommand();
  rotateLog(endpoint.logPath);
  const log = openSync(endpoint.logPath, 'a', 0o600);
  const state: { exited?: { code: number | null; signal: string | null } } = {};
  try {
    const child = spawn(cmd.command, [...cmd.args, 'serve', '--socket', '--runtime-dir', endpoint.runtimeDir, ...(o.serveArgs ?? [])], {
      detached: true,
      stdio: ['ignore', log, log],
      env: o.env ?? process.env,
    });
    child.on('error', () => (state.exited = { code: null, signal: 'spawn failed' }));
    child.on('exit', (code, signal) => {
      // Exit code 0 right away means another daemon won the race: keep dialling.
      if (code !== 0) state.exited = { code, signal };
    });
    child.unref();
  } finally {
    closeSync(log);
  }
  return state;
}

function rotateLog(path: string): void {
  try {
    if (statSync(path).size > 10 * 1024 * 1024) truncateSync(path, 0);
  } catch {
    // No log yet.
  }
}

function logTail(path: string): string {
  try {
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n').slice(-5);
    return `; last lines of ${path}:\n${lines.join('\n')}`;
  } catch {
    return '';
  }
}

export interface DaemonConnection {
  connection: MessageConnection;
  socket: Socket;
  close(): void;
}

/** A JSON-RPC connection over `connectSocket`'s socket; pending requests fail if the daemon dies. */
export async function connectDaemon(o: ConnectOptions = {}): Promise<DaemonConnection> {
  const socket = await connectSocket(o);
  socket.on('error', () => {});
  const reader = new SocketMessageReader(socket);
  // Off: on a message cut short (a daemon killed mid-write) vscode-jsonrpc's reader re-arms a 10 s
  // 'partial message' timer for ever, even once the socket has closed, so the client's process
  // would never exit. Nothing here listens for partial messages.
  reader.partialMessageTimeout = 0;
  const connection = createMessageConnection(reader, new LimitedMessageWriter(socket));
  // Disposing rejects the requests still waiting for an answer.
  connection.onClose(() => connection.dispose());
  connection.listen();
  return {
    connection,
    socket,
    close: () => {
      connection.dispose();
      socket.end();
    },
  };
}
