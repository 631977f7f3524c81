// The extension's connection to the shared PaliGemma daemon: plain vscode-jsonrpc over the daemon's
// Unix socket, connected (and the daemon auto-started, detached) by daemon/cli/client.ts.
//
// Why not vscode-languageclient: the daemon is not a language server (no documents, no LSP
// features), the protocol types are already vscode-jsonrpc RequestTypes, and LanguageClient's
// restart would send `shutdown`/`exit` for what is a shared process. The connection is made lazily
// on first use, so opening a Markdown file never starts a model.
import { existsSync } from 'node:fs';
import * as vscode from 'vscode';
import { ResponseError, type CancellationToken, type MessageConnection, type RequestType } from 'vscode-jsonrpc';
import { connectDaemon, type DaemonConnection } from '../daemon/client/daemon.js';
import * as P from '../daemon/protocol.js';
import { daemonEndpoint } from '../daemon/client/endpoint.js';
import { serveArgs } from '../daemon/client/serveArgs.js';
import { readConfig } from './config.js';

export type DaemonState =
  | { kind: 'stopped' }
  | { kind: 'starting' }
  | { kind: 'loading'; message: string; fraction?: number }
  | { kind: 'ready' }
  /** `message` is the raw text (for the log); `error` what the status bar turns into user text. */
  | { kind: 'error'; message: string; error?: unknown };

/** Requests that run the model (as opposed to status / cache-only lookups). */
const MODEL_METHODS = new Set([P.Caption.method, P.Ocr.method, P.Detect.method, P.Answer.method, P.Segment.method, P.Generate.method]);
/** What a worker pool serves (workers choose their model when they start; no free-form generate). */
const POOL_METHODS = new Set([P.Caption.method, P.Ocr.method, P.Detect.method, P.Answer.method, P.Segment.method]);

export class DaemonClient implements vscode.Disposable {
  private conn: DaemonConnection | undefined;
  private connecting: Promise<DaemonConnection> | undefined;
  private modelChecked: Promise<void> | undefined;
  private restarting: Promise<void> | undefined;
  private restartQueued = false;
  private inFlight = 0;
  private _state: DaemonState = { kind: 'stopped' };
  private _model: P.ModelStatus | undefined;
  private loggedModel: string | undefined;
  private readonly stateEmitter = new vscode.EventEmitter<void>();
  private readonly tokenEmitter = new vscode.EventEmitter<P.TokenNotification>();
  /** Fires when the state, the model or the number of requests in flight changes. */
  readonly onDidChange = this.stateEmitter.event;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  get state(): DaemonState {
    return this._state;
  }
  get model(): P.ModelStatus | undefined {
    return this._model;
  }
  get busy(): number {
    return this.inFlight;
  }
  get logPath(): string {
    return daemonEndpoint().logPath;
  }

  onTokens(listener: (n: P.TokenNotification) => void): vscode.Disposable {
    return this.tokenEmitter.event(listener);
  }

  /** A worker pool that serves the image tasks instead of the local daemon while it has a URL (`paligemma.broker`). */
  pool?: { readonly url: string; sendRequest<Params, Result>(type: RequestType<Params, Result, void>, params: Params): Promise<Result> };

  /** Sends a request, connecting (and starting the daemon) first when needed. */
  async sendRequest<Params, Result>(type: RequestType<Params, Result, void>, params: Params, token?: vscode.CancellationToken): Promise<Result> {
    if (this.pool?.url && POOL_METHODS.has(type.method)) return this.pool.sendRequest(type, params);
    const conn = await this.connection();
    const runsModel = MODEL_METHODS.has(type.method) && !(params as P.CacheOnlyParams | undefined)?.cacheOnly;
    if (runsModel) await this.ensureModel(conn);
    this.inFlight++;
    this.stateEmitter.fire();
    try {
      // RequestParam<Params> is a conditional type TypeScript cannot resolve for a generic Params.
      return await conn.sendRequest(type, params as never, token as CancellationToken | undefined);
    } finally {
      this.inFlight--;
      this.stateEmitter.fire();
      // The daemon loads its model lazily on the first run: learn which one and where it runs.
      if (runsModel && this._model?.state !== 'ready' && this.conn?.connection === conn) {
        conn.sendRequest(P.Status.type).then(
          (s) => this.updateModel(s.model),
          () => undefined,
        );
      }
    }
  }

  /** The connection if one is open; never starts the daemon. */
  get connected(): boolean {
    return this.conn !== undefined;
  }

  async connection(): Promise<MessageConnection> {
    if (this.conn) return this.conn.connection;
    this.connecting ??= this.connect().finally(() => (this.connecting = undefined));
    return (await this.connecting).connection;
  }

  /**
   * Restarts the shared daemon (stop, then start with the current settings). Restarts are
   * coalesced: a burst of calls while one runs gives exactly one more restart.
   */
  restart(): Promise<void> {
    if (this.restarting) {
      this.restartQueued = true;
      return this.restarting;
    }
    this.restarting = (async () => {
      do {
        this.restartQueued = false;
        await this.stopDaemon();
        await this.connection();
      } while (this.restartQueued);
    })().finally(() => (this.restarting = undefined));
    return this.restarting;
  }

  /** Loads the configured model now if the daemon is running (after a settings change). */
  async reloadModel(): Promise<void> {
    this.modelChecked = undefined;
    if (this.conn) await this.ensureModel(this.conn.connection);
  }

  dispose(): void {
    // Only this window's connection closes; the daemon serves other windows and exits when idle.
    this.conn?.close();
    this.conn = undefined;
    this.stateEmitter.dispose();
    this.tokenEmitter.dispose();
  }

  private setState(state: DaemonState): void {
    this._state = state;
    this.stateEmitter.fire();
  }

  private daemonCommand(): { command: string; args: string[]; env: NodeJS.ProcessEnv } {
    // The extension host's own executable is Electron on the desktop: run it as plain Node.
    return { command: readConfig().nodePath || process.execPath, args: [daemonProgram(this.extensionUri)], env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' } };
  }

  private async connect(): Promise<DaemonConnection> {
    this.setState({ kind: 'starting' });
    const cfg = readConfig();
    try {
      const { command, args, env } = this.daemonCommand();
      const daemonArgs = serveArgs(cfg);
      const conn = await connectDaemon({
        start: { command, args },
        serveArgs: daemonArgs,
        env,
        onStarting: (endpoint) => this.log.info(`starting the daemon: ${command} ${args.join(' ')} serve ${daemonArgs.join(' ')} (its log: ${endpoint.logPath})`),
      });
      this.attach(conn);
      const status = await conn.connection.sendRequest(P.Status.type);
      this.log.info(
        `connected to daemon ${status.version} (pid ${status.pid}, ${status.clients} client(s)), model ${status.model.state}${status.model.path ? ` ${status.model.path}` : ''}`,
      );
      this.updateModel(status.model);
      return conn;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.log.error(`could not connect to the daemon: ${message}`);
      this.setState({ kind: 'error', message, error: err });
      throw err;
    }
  }

  private attach(conn: DaemonConnection): void {
    this.conn = conn;
    this.modelChecked = undefined;
    const c = conn.connection;
    c.onNotification(P.Progress.type, (p) => {
      this.log.debug(`progress ${p.kind}: ${p.message}${p.fraction !== undefined ? ` ${Math.round(p.fraction * 100)}%` : ''}`);
      if (p.kind === 'loadModel' && !p.done) this.setState({ kind: 'loading', message: p.message, fraction: p.fraction });
    });
    c.onNotification(P.ModelChanged.type, (s) => this.updateModel(s));
    c.onNotification(P.TokenStream.type, (n) => this.tokenEmitter.fire(n));
    c.onClose(() => {
      if (this.conn !== conn) return;
      this.conn = undefined;
      this.modelChecked = undefined;
      this.log.warn('the daemon connection closed; it reconnects (restarting the daemon) on the next request');
      this.setState({ kind: 'stopped' });
    });
  }

  private updateModel(model: P.ModelStatus): void {
    this._model = model;
    if (model.state === 'loading') this.setState({ kind: 'loading', message: `Loading ${model.name ?? model.path ?? 'model'}` });
    else if (model.state === 'error') {
      const message = model.error ?? 'the model failed to load';
      this.log.error(`model ${model.path ?? ''}: ${message}`);
      this.setState({ kind: 'error', message, error: new ResponseError(P.ErrorCodes.ModelInvalid, message) });
    } else this.setState({ kind: 'ready' });
    // Once per loaded model: its warnings and how `auto` chose the provider, in the loader's own
    // words (the status bar says it in one line).
    const loaded = model.state === 'ready' ? `${model.id ?? model.path}@${model.executionProvider}` : undefined;
    if (loaded && loaded !== this.loggedModel) {
      this.loggedModel = loaded;
      for (const w of model.warnings ?? []) this.log.warn(`model: ${w}`);
      for (const n of model.providerNotes ?? []) this.log.info(`execution provider: ${n}`);
    }
  }

  /** Before the first model run: load the configured model when the daemon serves another one. */
  private ensureModel(conn: MessageConnection | DaemonConnection): Promise<void> {
    const c = 'connection' in conn ? conn.connection : conn;
    this.modelChecked ??= (async () => {
      const cfg = readConfig();
      const model = this._model;
      const pathDiffers = cfg.modelPath !== '' && model?.path !== cfg.modelPath;
      const epDiffers = cfg.executionProvider !== 'auto' && model?.state === 'ready' && model.executionProvider !== cfg.executionProvider;
      if (!pathDiffers && !epDiffers) return;
      this.log.info(`loading model ${cfg.modelPath || model?.path} (${cfg.executionProvider})`);
      this.setState({ kind: 'loading', message: 'Loading model' });
      const path = cfg.modelPath || model?.path;
      if (!path) return;
      const status = await c.sendRequest(P.LoadModel.type, { path, executionProvider: cfg.executionProvider });
      this.updateModel(status);
    })().catch((err: unknown) => {
      this.modelChecked = undefined;
      const message = err instanceof Error ? err.message : String(err);
      this.setState({ kind: 'error', message, error: err });
      throw err;
    });
    return this.modelChecked;
  }

  private async stopDaemon(): Promise<void> {
    let conn = this.conn;
    if (!conn) {
      conn = await connectDaemon({ start: false, timeoutMs: 2000 }).catch(() => undefined);
      if (!conn) return;
    }
    try {
      const { pid } = await conn.connection.sendRequest(P.Stop.type);
      this.log.info(`asked daemon ${pid} to stop`);
      await waitForExit(pid, 15_000);
    } catch (err) {
      this.log.warn(`stopping the daemon: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      if (this.conn === conn) this.conn = undefined;
      conn.close();
      this.setState({ kind: 'stopped' });
    }
  }
}

/** The daemon / `paligemma` CLI program: the bundle in a packaged extension, the tsc output in development. */
export function daemonProgram(extensionUri: vscode.Uri): string {
  const bundled = vscode.Uri.joinPath(extensionUri, 'dist', 'daemon.mjs').fsPath;
  const compiled = vscode.Uri.joinPath(extensionUri, 'out', 'daemon', 'cli', 'main.js').fsPath;
  if (existsSync(bundled)) return bundled;
  if (existsSync(compiled)) return compiled;
  throw new Error(`the daemon program is missing (looked for ${bundled} and ${compiled})`);
}

async function waitForExit(pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`daemon ${pid} still running after ${timeoutMs} ms`);
}
