// Where the per-user shared daemon lives: a private runtime folder holding the socket, its lock
// and its log. Used by the daemon (to listen) and by clients (CLI, extension) to dial or start it,
// so nothing here may import vscode.
import { constants } from 'node:fs';
import { lstat, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
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

/**
 * Longest Unix socket path the platform binds (sun_path less its NUL: 108 on Linux, 104 on macOS).
 * A longer one is silently truncated by the kernel: the daemon would listen where nobody dials.
 */
export const MAX_SOCKET_PATH_BYTES = process.platform === 'linux' ? 107 : 103;

/**
 * The runtime folder: $PALIGEMMA_RUNTIME_DIR (tests), else $XDG_RUNTIME_DIR/paligemma, else a per-user
 * tmp folder. When the socket path there would be too long to bind, a short per-user folder under
 * /tmp is used instead; a too-long $PALIGEMMA_RUNTIME_DIR is an error, since it was asked for.
 */
export function daemonEndpoint(env: NodeJS.ProcessEnv = process.env, version = DAEMON_VERSION): DaemonEndpoint {
  const uid = process.getuid?.() ?? 0;
  const user = safeName(userName() ?? `uid${uid}`);
  const runtimeDir = env.PALIGEMMA_RUNTIME_DIR || (env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'paligemma') : join(tmpdir(), `paligemma-${uid}`));
  const endpoint = endpointIn(runtimeDir, `paligemma-${user}-${safeName(version)}`);
  if (socketPathFits(endpoint.socketPath)) return endpoint;
  if (env.PALIGEMMA_RUNTIME_DIR) checkSocketPathLength(endpoint.socketPath, 'PALIGEMMA_RUNTIME_DIR');
  const short = endpointIn(join('/tmp', `pg-${uid}`), `pg-${safeName(version)}`);
  checkSocketPathLength(short.socketPath, env.XDG_RUNTIME_DIR ? 'XDG_RUNTIME_DIR' : 'TMPDIR');
  return short;
}

function endpointIn(runtimeDir: string, name: string): DaemonEndpoint {
  const base = join(runtimeDir, name);
  return { runtimeDir, socketPath: `${base}.sock`, lockPath: `${base}.lock`, spawnLockPath: `${base}.spawn.lock`, logPath: `${base}.log` };
}

function socketPathFits(path: string): boolean {
  return Buffer.byteLength(path) <= MAX_SOCKET_PATH_BYTES;
}

/** Throws (naming the variable to shorten) when `path` is too long to bind as a Unix socket. */
export function checkSocketPathLength(path: string, variable = 'PALIGEMMA_RUNTIME_DIR'): void {
  if (socketPathFits(path)) return;
  throw new EndpointError(
    `the daemon's socket path ${path} is ${Buffer.byteLength(path)} bytes, longer than the ${MAX_SOCKET_PATH_BYTES} this system allows: set ${variable} to a shorter folder`,
  );
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

/**
 * Creates the runtime folder private to this user (mode 0700), and refuses an existing one that is
 * not: another user's folder, or one that group or others may enter, since whoever can reach the
 * socket can use (and stop) the daemon.
 */
export async function ensureRuntimeDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await lstat(dir);
  if (st.isSymbolicLink() || !st.isDirectory())
    throw new EndpointError(`refusing runtime folder ${dir}: it is not a directory; remove it, or set PALIGEMMA_RUNTIME_DIR to another folder`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new EndpointError(`refusing runtime folder ${dir}: it belongs to uid ${st.uid}, not to you (uid ${uid}); remove it, or set PALIGEMMA_RUNTIME_DIR to a folder of yours`);
  }
  if ((st.mode & 0o077) !== 0) {
    throw new EndpointError(
      `refusing runtime folder ${dir}: its mode is ${(st.mode & 0o777).toString(8).padStart(4, '0')}, so other users can reach the daemon's socket; fix it with \`chmod 700 ${dir}\``,
    );
  }
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
 * A connection to the daemon on `path`, or undefined when none answers. A socket file that refuses
 * is left in place: a killed daemon's socket refuses just like the one a starting daemon has bound
 * and does not listen on yet, and removing that one would leave the new daemon unreachable. The
 * daemon replaces a dead socket itself, holding the bind lock. Never dials another user's socket.
 */
export async function dialIfRunning(path: string, timeoutMs = 2000): Promise<Socket | undefined> {
  if (!(await checkSocketOwner(path))) return undefined;
  try {
    return await dial(path, timeoutMs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ECONNREFUSED' || code === 'ENOTSOCK' || code === 'ENOENT') return undefined;
    throw e;
  }
}

/** True when a daemon answers on `path` (the probe connection is closed again). */
export async function probeSocket(path: string): Promise<boolean> {
  const s = await dialIfRunning(path, 1000);
  s?.destroy();
  return s !== undefined;
}

/** A lock file older than this is broken, whoever holds it. */
export const STALE_LOCK_MS = 15_000;

/**
 * An exclusive lock file holding the owner's pid. A lock whose owner has died, or older than
 * `staleMs`, is broken. Returns a release function, or undefined when someone else holds it.
 */
export async function tryLock(path: string, staleMs = STALE_LOCK_MS): Promise<(() => Promise<void>) | undefined> {
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
