// The two ways to serve: the shared per-user daemon on a Unix socket (many clients, exits after
// the last one has been gone idleExitMs), and a single client over stdio.
import { chmod, stat, unlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { MAX_MESSAGE_BYTES } from '../protocol.js';
import { serveConnection } from './connection.js';
import { checkSocketOwner, checkSocketPathLength, type DaemonEndpoint, ensureRuntimeDir, probeSocket, STALE_LOCK_MS, tryLock } from '../client/endpoint.js';
import type { Logger } from './log.js';
import { PaliGemmaService, type ServiceOptions } from './service.js';

export const DEFAULT_MAX_MESSAGE_BYTES = MAX_MESSAGE_BYTES;

/** How long a daemon waits for the bind lock: longer than a lock takes to go stale, so a lock left by a hung process is broken, not waited out. */
export const BIND_LOCK_WAIT_MS = STALE_LOCK_MS + 5_000;

export interface SocketDaemonOptions extends Omit<ServiceOptions, 'transport' | 'socketPath' | 'log'> {
  endpoint: DaemonEndpoint;
  /** Exit this long after the last client disconnected (or after start, if none connects). */
  idleExitMs: number;
  log: Logger;
  maxMessageBytes?: number;
  /** Age at which the bind lock is broken (tests shorten it); the wait for it is longer. */
  staleLockMs?: number;
}

export interface RunningDaemon {
  service: PaliGemmaService;
  server: Server;
  /** Resolves when the daemon has shut down. */
  closed: Promise<void>;
  shutdown(reason: string): Promise<void>;
}

export type StartResult = { kind: 'started'; daemon: RunningDaemon } | { kind: 'already-running' };

export async function startSocketDaemon(o: SocketDaemonOptions): Promise<StartResult> {
  const { endpoint, log } = o;
  checkSocketPathLength(endpoint.socketPath);
  await ensureRuntimeDir(endpoint.runtimeDir);
  const release = await waitForLock(endpoint.lockPath, o.staleLockMs ?? STALE_LOCK_MS);
  let server: Server;
  // Clients may connect as soon as the socket listens, before the handler below is attached (the
  // ownership checks and the service set-up await in between): hold those sockets, serve them later.
  const early: Socket[] = [];
  const holdEarly = (socket: Socket) => early.push(socket);
  try {
    if (await probeSocket(endpoint.socketPath)) return { kind: 'already-running' };
    // Nobody answers, and no other daemon binds while this one holds the lock: a socket file
    // still there was left by a daemon that died.
    if (await checkSocketOwner(endpoint.socketPath)) {
      await unlink(endpoint.socketPath).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      });
    }
    server = await listenPrivately(endpoint.socketPath, holdEarly);
  } catch (e) {
    early.forEach((s) => s.destroy());
    throw e;
  } finally {
    await release();
  }
  const inode = (await stat(endpoint.socketPath)).ino;

  const service = new PaliGemmaService({ ...o, transport: 'socket', socketPath: endpoint.socketPath });
  const sockets = new Set<Socket>();
  let idleTimer: NodeJS.Timeout | undefined;
  let stopping: Promise<void> | undefined;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));

  const armIdle = () => {
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = setTimeout(() => void shutdown(`no clients for ${o.idleExitMs} ms`), o.idleExitMs);
  };

  const shutdown = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      log.info('daemon stopping', { reason });
      if (idleTimer) clearTimeout(idleTimer);
      server.close();
      // Only remove the socket file if it is still ours (a newer daemon may have replaced it).
      const st = await stat(endpoint.socketPath).catch(() => undefined);
      if (st?.ino === inode) await unlink(endpoint.socketPath).catch(() => {});
      await service.dispose();
      // Let the replies of the requests that dispose() failed be written out first.
      await new Promise((r) => setImmediate(r));
      // end(), not destroy(): answers already written (the reply to `stop`) still reach clients.
      await Promise.all(
        [...sockets].map(
          (s) =>
            new Promise<void>((resolve) => {
              const timer = setTimeout(() => s.destroy(), 2000);
              s.once('close', () => {
                clearTimeout(timer);
                resolve();
              });
              s.end();
            }),
        ),
      );
      log.info('daemon stopped');
      resolveClosed();
    })();
    return stopping;
  };

  const onConnection = (socket: Socket) => {
    if (stopping) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    service.clients++;
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = undefined;
    socket.on('error', (e) => log.debug('socket error', { error: e.message }));
    serveConnection(service, socket, socket, {
      log,
      maxMessageBytes: o.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      onStop: () => void shutdown('a client asked it to stop'),
      onClose: () => {
        sockets.delete(socket);
        service.clients--;
        if (service.clients === 0 && !stopping) armIdle();
      },
    });
  };
  server.off('connection', holdEarly);
  server.on('connection', onConnection);
  // A client that came and went while the daemon was starting is neither counted nor waited for.
  for (const socket of early.splice(0)) if (!socket.destroyed) onConnection(socket);
  server.on('error', (e) => log.error('server error', { error: e.message }));
  if (service.clients === 0) armIdle();
  log.info('daemon listening', {
    socket: endpoint.socketPath,
    pid: process.pid,
    idleExitMs: o.idleExitMs,
    keepAliveMs: o.keepAliveMs,
    model: o.modelPath,
  });
  return { kind: 'started', daemon: { service, server, closed, shutdown } };
}

async function waitForLock(path: string, staleMs: number): Promise<() => Promise<void>> {
  const deadline = Date.now() + staleMs + (BIND_LOCK_WAIT_MS - STALE_LOCK_MS);
  for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
    const release = await tryLock(path, staleMs);
    if (release) return release;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for the lock ${path}: another daemon is starting and has not finished; try again, or remove the lock if no paligemma process runs`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** Listens with the socket created mode 0600 (umask), then re-checks it is ours. */
async function listenPrivately(path: string, onConnection: (socket: Socket) => void): Promise<Server> {
  const server = createServer(onConnection);
  const old = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(old);
  }
  try {
    await chmod(path, 0o600);
    await checkSocketOwner(path);
  } catch (e) {
    // Not serving on a socket that is not ours, nor listening on where nobody can dial.
    server.close();
    throw e;
  }
  return server;
}

export interface StdioOptions extends Omit<ServiceOptions, 'transport' | 'log'> {
  log: Logger;
  maxMessageBytes?: number;
}

/** Serves one client on stdin/stdout; resolves when it disconnects or sends `exit`. */
export async function runStdio(o: StdioOptions): Promise<void> {
  const service = new PaliGemmaService({ ...o, transport: 'stdio' });
  service.clients = 1;
  await new Promise<void>((resolve) => {
    serveConnection(service, process.stdin, process.stdout, {
      log: o.log,
      maxMessageBytes: o.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      onStop: resolve,
      onClose: resolve,
    });
  });
  service.clients = 0;
  await service.dispose();
}
