// The language server's line to the shared daemon (gopls' `-remote=auto` shape): this process owns
// no model; it connects to the per-user daemon, starting it when a model run needs it, and connects
// again after the daemon restarts. Cache lookups never start it. With a broker configured the image
// tasks go to the worker pool behind it instead (same requests, same errors).
import { ErrorCodes as RpcErrorCodes, ResponseError, type CancellationToken, type RequestType } from 'vscode-jsonrpc';
import { brokerFromEnv, connectBroker } from '../client/broker.js';
import { connectDaemon, type ConnectOptions, type DaemonConnection } from '../client/daemon.js';
import { serveArgs } from '../client/serveArgs.js';
import * as P from '../protocol.js';
import type { Settings } from './settings.js';

export type Connect = (options: Pick<ConnectOptions, 'start' | 'serveArgs' | 'timeoutMs'>) => Promise<DaemonConnection>;

/** The part of a broker connection the link uses. */
export interface PoolConnection {
  connection: { sendRequest<Params, Result>(type: RequestType<Params, Result, void>, params: Params): Promise<Result> };
  readonly gone: boolean;
  close(): unknown;
}
export type ConnectPool = (url: string) => Promise<PoolConnection>;

/** What a worker pool serves (workers choose their model when they start). */
const POOL_METHODS = new Set<string>([P.Caption.method, P.Ocr.method, P.Answer.method, P.Detect.method, P.Segment.method]);

export interface DaemonLinkOptions {
  /** How to reach the daemon (tests give their own); default: `connectDaemon`. */
  connect?: Connect;
  /** How to reach a broker's worker pool (tests give their own); default: `connectBroker`. */
  connectPool?: ConnectPool;
  log?: (message: string) => void;
}

export class DaemonLink {
  private conn: DaemonConnection | undefined;
  private connecting: Promise<DaemonConnection> | undefined;
  private modelChecked: { key: string; done: Promise<void> } | undefined;
  private readonly tokenListeners = new Set<(n: P.TokenNotification) => void>();
  private readonly connect: Connect;
  private readonly connectPool: ConnectPool;
  private pool: { url: string; conn: Promise<PoolConnection> } | undefined;
  private readonly log: (message: string) => void;

  constructor(
    private settings: () => Settings,
    options: DaemonLinkOptions = {},
  ) {
    this.connect = options.connect ?? ((o) => connectDaemon(o));
    this.connectPool = options.connectPool ?? ((url) => connectBroker({ url, ...brokerFromEnv() }));
    this.log = options.log ?? (() => undefined);
  }

  /**
   * Sends a request to the daemon. `start`: connect, starting the daemon when none runs (model
   * runs); otherwise only use one that is already running, else fail with DaemonNotRunning.
   * A request cut off by the daemon going away is sent once more to the next daemon.
   */
  async request<Params, Result>(type: RequestType<Params, Result, void>, params: Params, o: { start: boolean; token?: CancellationToken }): Promise<Result> {
    const broker = this.settings().broker || process.env.PALIGEMMA_BROKER || '';
    if (broker && POOL_METHODS.has(type.method)) return (await this.poolConnection(broker)).connection.sendRequest(type, params);
    for (let attempt = 0; ; attempt++) {
      const conn = await this.connection(o.start);
      try {
        const runsModel = !(params as P.CacheOnlyParams | undefined)?.cacheOnly && type.method !== P.Status.method;
        if (runsModel) await this.ensureModel(conn);
        return await conn.connection.sendRequest(type, params as never, o.token);
      } catch (err) {
        const lost = this.conn !== conn || (err instanceof ResponseError && err.code === RpcErrorCodes.PendingResponseRejected);
        if (!lost || attempt > 0 || o.token?.isCancellationRequested) throw err;
        this.log(`the daemon went away during ${type.method}; sending it again`);
        this.drop(conn);
      }
    }
  }

  onTokens(listener: (n: P.TokenNotification) => void): { dispose(): void } {
    this.tokenListeners.add(listener);
    return { dispose: () => this.tokenListeners.delete(listener) };
  }

  get connected(): boolean {
    return this.conn !== undefined;
  }

  /** The configured model or provider changed: load it before the next model run. */
  settingsChanged(): void {
    this.modelChecked = undefined;
  }

  dispose(): void {
    this.conn?.close();
    this.conn = undefined;
    void this.pool?.conn.then(
      (c) => c.close(),
      () => undefined,
    );
    this.pool = undefined;
  }

  /** The broker connection for `url`: one at a time, made again when the URL changed or it closed. */
  private async poolConnection(url: string): Promise<PoolConnection> {
    const current = this.pool;
    if (current && current.url === url) {
      const conn = await current.conn.catch(() => undefined);
      if (conn && !conn.gone) return conn;
      if (this.pool === current) this.pool = undefined;
    } else if (current) {
      void current.conn.then(
        (c) => c.close(),
        () => undefined,
      );
      this.pool = undefined;
    }
    if (!this.pool) {
      this.log(`sending model runs to the worker pool at ${url}`);
      this.pool = { url, conn: this.connectPool(url) };
    }
    return this.pool.conn;
  }

  private async connection(start: boolean): Promise<DaemonConnection> {
    if (this.conn) return this.conn;
    if (!start) {
      // Never starts a daemon: one that is not running has nothing cached.
      if (this.connecting) return this.connecting;
      const conn = await this.connect({ start: false, timeoutMs: 2000 }).catch(() => undefined);
      if (!conn) throw new DaemonNotRunning();
      return this.attach(conn);
    }
    this.connecting ??= (async () => {
      return this.attach(await this.connect({ serveArgs: serveArgs(this.settings()) }));
    })().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private attach(conn: DaemonConnection): DaemonConnection {
    if (this.conn) {
      // Another call connected first: keep one connection.
      conn.close();
      return this.conn;
    }
    this.conn = conn;
    this.modelChecked = undefined;
    conn.connection.onNotification(P.TokenStream.type, (n) => this.tokenListeners.forEach((l) => l(n)));
    conn.connection.onClose(() => {
      if (this.conn !== conn) return;
      this.log('the daemon connection closed; the next request connects again');
      this.drop(conn);
    });
    return conn;
  }

  private drop(conn: DaemonConnection): void {
    if (this.conn === conn) this.conn = undefined;
    this.modelChecked = undefined;
    conn.close();
  }

  /** Before a model run: load the configured model when the daemon serves another one. */
  private ensureModel(conn: DaemonConnection): Promise<void> {
    const s = this.settings();
    const key = `${s.modelPath}\n${s.executionProvider}`;
    if (this.modelChecked?.key === key) return this.modelChecked.done;
    const done = (async () => {
      if (!s.modelPath && s.executionProvider === 'auto') return;
      const { model } = await conn.connection.sendRequest(P.Status.type);
      const pathDiffers = s.modelPath !== '' && model.path !== s.modelPath;
      const epDiffers = s.executionProvider !== 'auto' && model.state === 'ready' && model.executionProvider !== s.executionProvider;
      const path = s.modelPath || model.path;
      if ((!pathDiffers && !epDiffers) || !path) return;
      this.log(`loading model ${path} (${s.executionProvider})`);
      await conn.connection.sendRequest(P.LoadModel.type, { path, executionProvider: s.executionProvider });
    })();
    this.modelChecked = { key, done };
    done.catch(() => {
      if (this.modelChecked?.done === done) this.modelChecked = undefined;
    });
    return done;
  }
}

export class DaemonNotRunning extends Error {
  constructor() {
    super('no PaliGemma daemon is running');
    this.name = 'DaemonNotRunning';
  }
}
