// Where the per-user shared daemon lives: a private runtime folder holding the socket, its lock
// and its log. Used by the daemon (to listen) and by clients (CLI, extension) to dial or start it,
// so nothing here may import vscode.
import { constants } from 'node:fs';
import { chmod, lstat, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { DAEMON_VERSION } from './version.js';

export interface DaemonEndpoint {
  runtimeDir: string;
  socketPath: string;
  /** Held by the daemon while it checks for a live socket and binds, so two never both bind. */
  lockPath: string;
  /** Held by a client while it starts a daemon, so concurrent clients start only one. */
  spawnLockPath: string;
  /** Where an auto-started daemon's stderr goes. */
  logPath: string;
}

/** The runtime folder: $PALIGEMMA_RUNTIME_DIR (tests), else $XDG_RUNTIME_DIR/paligemma, else a per-user tmp folder. */
export function daemonEndpoint(env: NodeJS.ProcessEnv = process.env, version = DAEMON_VERSION): DaemonEndpoint {
  const uid = process.getuid?.() ?? 0;
  const user = safeName(userName() ?? `uid${uid}`);
  const runtimeDir =
    env.PALIGEMMA_RUNTIME_DIR || (env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'paligemma') : join(tmpdir(), `paligemma-${uid}`));
  const base = join(runtimeDir, `paligemma-${user}-${safeName(version)}`);
  return { runtimeDir, socketPath: `${base}.sock`, lockPath: `${base}.lock`, spawnLockPath: `${base}.spawn.lock`, logPath: `${base}.log` };
}

function userName(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER;
  }
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 32);
}

export class EndpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EndpointError';
  }
}

/** Creates the runtime folder private to this user, refusing one that another user owns. */
export async function ensureRuntimeDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await lstat(dir);
  if (st.isSymbolicLink() || !st.isDirectory()) throw new EndpointError(`${dir} is not a directory`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new EndpointError(`refusing runtime folder ${dir}: it belongs to uid ${st.uid}, not to you (uid ${uid})`);
  }
  if ((st.mode & 0o077) !== 0) await chmod(dir, 0o700);
}

/** Throws when `path` exists but is not a socket of ours (never dial or delete another user's socket). */
export async function checkSocketOwner(path: string): Promise<boolean> {
  let st;
  try {
    st = await lstat(path);
  } catch {
    return false;
  }
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new EndpointError(`refusing socket ${path}: it belongs to uid ${st.uid}, not to you (uid ${uid})`);
  }
  if (!st.isSocket()) throw new EndpointError(`${path} exists and is not a socket`);
  return true;
}

export function dial(path: string, timeoutMs = 2000): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error(`timed out connecting to ${path}`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/**
 * A connection to the daemon on `path`, or undefined when none answers; a socket file nobody
 * listens on (a daemon that was killed) is removed. Never dials another user's socket.
 */
export async function dialIfRunning(path: string, timeoutMs = 2000): Promise<Socket | undefined> {
  if (!(await checkSocketOwner(path))) return undefined;
  try {
    return await dial(path, timeoutMs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ECONNREFUSED' || code === 'ENOTSOCK') {
      await unlink(path).catch(() => {});
      return undefined;
    }
    if (code === 'ENOENT') return undefined;
    throw e;
  }
}

/** True when a daemon answers on `path` (the probe connection is closed again). */
export async function probeSocket(path: string): Promise<boolean> {
  const s = await dialIfRunning(path, 1000);
  s?.destroy();
  return s !== undefined;
}

/**
 * An exclusive lock file holding the owner's pid. A lock whose owner has died, or older than
 * `staleMs`, is broken. Returns a release function, or undefined when someone else holds it.
 */
export async function tryLock(path: string, staleMs = 15_000): Promise<(() => Promise<void>) | undefined> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return () => unlink(path).catch(() => {});
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    if (!(await lockIsStale(path, staleMs))) return undefined;
    await unlink(path).catch(() => {});
  }
  return undefined;
}

async function lockIsStale(path: string, staleMs: number): Promise<boolean> {
  try {
    const [text, st] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    if (Date.now() - st.mtimeMs > staleMs) return true;
    const pid = Number(text);
    if (!Number.isInteger(pid) || pid <= 0) return Date.now() - st.mtimeMs > 1000;
    try {
      process.kill(pid, 0);
      return false;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ESRCH';
    }
  } catch {
    return false;
  }
}
