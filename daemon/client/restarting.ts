// A daemon client that outlives one daemon crash: when the connection drops while requests are in
// flight (the daemon was killed, or crashed), it starts the daemon again once and sends those
// requests again (the daemon's methods are idempotent: the same image and task give the same
// answer). Past that one restart, a request fails with "the daemon stopped while answering" and
// where its log is, instead of vscode-jsonrpc's "Pending response rejected since connection got
// disposed". Not for requests with side effects beyond the daemon (paligemma/stop).
import {
  type CancellationToken,
  ConnectionError,
  ErrorCodes as RpcErrorCodes,
  type MessageConnection,
  type NotificationHandler,
  type NotificationType,
  type RequestType,
  type RequestType0,
  ResponseError,
} from 'vscode-jsonrpc/node';
import { Status } from '../protocol.js';
import { type ConnectOptions, connectDaemon, type DaemonConnection } from './daemon.js';
import { daemonEndpoint } from './endpoint.js';

export class DaemonStoppedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DaemonStoppedError';
  }
}

export interface RestartOptions extends ConnectOptions {
  /** Restarts allowed over the client's life (default 1). */
  maxRestarts?: number;
  /** Told before each restart, with how many requests will be sent again. */
  onRestart?: (message: string) => void;
}

export class RestartingDaemonClient {
  private restarts = 0;
  private reconnecting: Promise<DaemonConnection> | undefined;
  private readonly subscriptions: Array<(c: MessageConnection) => void> = [];
  private inFlight = 0;
  private closed = false;
  /** Why the restart failed: every request that lost the connection after it is told the same. */
  private restartFailure: DaemonStoppedError | undefined;

  private constructor(
    private readonly o: RestartOptions,
    private current: DaemonConnection,
  ) {}

  static async connect(o: RestartOptions = {}): Promise<RestartingDaemonClient> {
    return new RestartingDaemonClient(o, await connectDaemon(o));
  }

  /** The connection in use now (it changes after a restart). */
  get connection(): DaemonConnection {
    return this.current;
  }

  onNotification<P>(type: NotificationType<P>, handler: NotificationHandler<P>): void {
    const subscribe = (c: MessageConnection) => void c.onNotification(type, handler);
    this.subscriptions.push(subscribe);
    subscribe(this.current.connection);
  }

  request<R>(type: RequestType0<R, unknown>, token?: CancellationToken): Promise<R>;
  request<P, R>(type: RequestType<P, R, unknown>, params: P, token?: CancellationToken): Promise<R>;
  async request(type: RequestType0<unknown, unknown> | RequestType<unknown, unknown, unknown>, ...rest: unknown[]): Promise<unknown> {
    this.inFlight++;
    try {
      for (;;) {
        const conn = this.current;
        try {
          return await (conn.connection.sendRequest as (t: unknown, ...a: unknown[]) => Promise<unknown>)(type, ...rest);
        } catch (e) {
          if (this.closed || !lostConnection(e, conn)) throw e;
          await this.restart(conn);
        }
      }
    } finally {
      this.inFlight--;
    }
  }

  close(): void {
    this.closed = true;
    this.current.close();
  }

  /** Resolves once a fresh daemon is connected (one restart shared by every request that lost `lost`). */
  private async restart(lost: DaemonConnection): Promise<void> {
    if (this.current !== lost) return;
    if (this.restartFailure) throw this.restartFailure;
    if (!this.reconnecting) {
      const log = (this.o.endpoint ?? daemonEndpoint(this.o.env)).logPath;
      if (this.restarts >= (this.o.maxRestarts ?? 1)) {
        throw new DaemonStoppedError(`the PaliGemma daemon stopped while answering${this.restarts ? ', again after a restart' : ''} (its log: ${log})`);
      }
      this.restarts++;
      this.o.onRestart?.(`the PaliGemma daemon stopped while answering (its log: ${log}); starting it again and retrying ${this.inFlight} request(s)`);
      this.reconnecting = connectAnswering(this.o).then(
        (fresh) => {
          for (const s of this.subscriptions) s(fresh.connection);
          lost.close();
          this.current = fresh;
          this.reconnecting = undefined;
          return fresh;
        },
        (e: unknown) => {
          this.reconnecting = undefined;
          this.restartFailure = new DaemonStoppedError(`the PaliGemma daemon stopped while answering and could not be started again: ${(e as Error).message}`);
          throw this.restartFailure;
        },
      );
    }
    await this.reconnecting;
  }
}

/**
 * A connection to a daemon that answers. Right after a kill the dying daemon's socket can still
 * take a connection (the kernel closes its descriptors one by one) and then drop it unanswered:
 * such a connection is dialled again, not taken for a second crash.
 */
async function connectAnswering(o: ConnectOptions, attempts = 20): Promise<DaemonConnection> {
  for (let attempt = 1; ; attempt++) {
    const c = await connectDaemon(o);
    try {
      await c.connection.sendRequest(Status.type);
      return c;
    } catch (e) {
      c.close();
      if (attempt >= attempts || !lostConnection(e, c)) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** The request failed because the connection went away, not because the daemon answered an error. */
function lostConnection(e: unknown, conn: DaemonConnection): boolean {
  if (e instanceof ConnectionError) return true;
  if (!(e instanceof ResponseError)) return false;
  if (e.code === RpcErrorCodes.PendingResponseRejected || e.code === RpcErrorCodes.ConnectionInactive) return true;
  // A write that failed on a closed socket (not one refused for its size: the socket is still open).
  return e.code === RpcErrorCodes.MessageWriteError && conn.socket.destroyed;
}
