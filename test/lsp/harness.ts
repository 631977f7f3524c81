// An in-memory LSP session: the server (daemon/lsp/) on one end of a pair of streams, a scripted
// client on the other, and a fake daemon (JSON-RPC, in memory) answering caption / OCR / status
// requests with a result cache, so the tests see exactly which model runs the server asked for.
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createMessageConnection, ResponseError, StreamMessageReader, StreamMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import type { ClientCapabilities, InitializeResult, PublishDiagnosticsParams } from 'vscode-languageserver-protocol';
import { type Connection, createConnection, StreamMessageReader as ServerReader, StreamMessageWriter as ServerWriter } from 'vscode-languageserver/node';
import type { DaemonConnection } from '../../daemon/client/daemon.js';
import type { Connect } from '../../daemon/lsp/daemonLink.js';
import { startServer } from '../../daemon/lsp/server.js';
import * as P from '../../daemon/protocol.js';

const FIXTURES = join(fileURLToPath(import.meta.url), '..', '..', '..', '..', 'test', 'fixtures', 'tiny-paligemma-224');

export interface DaemonCall {
  method: string;
  params: { image?: P.ImageRef; cacheOnly?: boolean; language?: string; decoding?: P.DecodingOptions; streamId?: string; path?: string };
}

/** A daemon that "captions" every image as `captions[path]`, caching what it computed. */
export class FakeDaemon {
  readonly calls: DaemonCall[] = [];
  readonly connects: { start: unknown }[] = [];
  readonly cache = new Map<string, string>();
  captions: Record<string, string> = {};
  ocr: Record<string, string> = {};
  running = true;
  modelPath = '/models/default';
  /** Set: the next caption waits for this before answering (or for its cancellation). */
  gate: Promise<void> | undefined;
  cancelled = 0;
  private server: { connection: MessageConnection; streams: PassThrough[] } | undefined;

  readonly connect: Connect = async (o) => {
    this.connects.push({ start: o.start });
    if (o.start === false && !this.running) throw new Error('no daemon');
    this.running = true;
    const a = new PassThrough();
    const b = new PassThrough();
    const server = createMessageConnection(new StreamMessageReader(a), new StreamMessageWriter(b));
    const client = createMessageConnection(new StreamMessageReader(b), new StreamMessageWriter(a));
    this.serve(server);
    server.listen();
    client.listen();
    this.server = { connection: server, streams: [a, b] };
    return { connection: client, socket: undefined as never, close: () => client.dispose() } satisfies DaemonConnection;
  };

  /** The daemon process goes away: its end of the connection closes. */
  crash(): void {
    this.running = false;
    this.server?.connection.dispose();
    this.server?.streams.forEach((s) => s.destroy());
    this.server = undefined;
  }

  private serve(c: MessageConnection): void {
    const text =
      (table: Record<string, string>, kind: string) =>
      async (params: DaemonCall['params'], token: { isCancellationRequested: boolean; onCancellationRequested(f: () => void): unknown }) => {
        const method = kind === 'caption' ? P.Caption.method : P.Ocr.method;
        this.calls.push({ method, params });
        const path = (params.image as { path: string }).path;
        const key = `${kind}\n${path}\n${params.language ?? ''}\n${params.decoding?.maxNewTokens}`;
        const cached = this.cache.get(key);
        if (cached !== undefined) return { text: cached, model: 'tiny-fake', cached: true } as P.TextResult;
        if (params.cacheOnly) throw new ResponseError(P.ErrorCodes.NotCached, 'not cached');
        if (kind === 'caption' && this.gate) {
          const gate = this.gate;
          await Promise.race([gate, new Promise<void>((r) => token.onCancellationRequested(() => r()))]);
          if (token.isCancellationRequested) {
            this.cancelled++;
            throw new ResponseError(P.ErrorCodes.Cancelled, 'cancelled');
          }
        }
        const answer = table[path];
        if (answer === undefined) throw new ResponseError(P.ErrorCodes.NotFound, `image not found: ${path}`);
        if (params.streamId) await c.sendNotification(P.TokenStream.type, { streamId: params.streamId, text: answer.slice(0, 3) } as P.TokenNotification);
        this.cache.set(key, answer);
        return { text: answer, model: 'tiny-fake' } as P.TextResult;
      };
    c.onRequest(P.Caption.type, text(this.captions, 'caption') as never);
    c.onRequest(P.Ocr.type, text(this.ocr, 'ocr') as never);
    c.onRequest(P.Status.type, () => {
      this.calls.push({ method: P.Status.method, params: {} });
      return { model: { state: 'ready', path: this.modelPath, executionProvider: 'cpu' } } as unknown as P.StatusResult;
    });
    c.onRequest(P.LoadModel.type, (params) => {
      this.calls.push({ method: P.LoadModel.method, params: { path: params.path } });
      this.modelPath = params.path;
      return { state: 'ready', path: params.path } as P.ModelStatus;
    });
  }

  modelRuns(method = P.Caption.method): DaemonCall[] {
    return this.calls.filter((c) => c.method === method && !c.params.cacheOnly);
  }
}

export interface ClientOptions {
  capabilities?: ClientCapabilities;
  initializationOptions?: P.LspInitializationOptions;
  /** The answer to `workspace/configuration` for the `paligemma` section (the client then advertises it). */
  configuration?: unknown;
  modelPath?: string;
}

export class TestClient {
  readonly diagnostics: PublishDiagnosticsParams[] = [];
  readonly progress: unknown[] = [];
  readonly messages: { type: number; message: string }[] = [];
  readonly appliedEdits: unknown[] = [];
  readonly registrations: { method: string; registerOptions?: { watchers?: { globPattern: unknown }[] } }[] = [];
  readonly daemon = new FakeDaemon();
  readonly dir: string;
  readonly connection: MessageConnection;
  initializeResult!: InitializeResult;
  private readonly serverConnection: Connection;
  private readonly waiters: (() => void)[] = [];

  constructor(private readonly o: ClientOptions = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'paligemma-lsp-'));
    const up = new PassThrough();
    const down = new PassThrough();
    this.serverConnection = createConnection(new ServerReader(up), new ServerWriter(down));
    startServer(this.serverConnection, { connectDaemon: this.daemon.connect, modelPath: o.modelPath });
    this.connection = createMessageConnection(new StreamMessageReader(down), new StreamMessageWriter(up));
    const changed = () => this.waiters.splice(0).forEach((w) => w());
    this.connection.onNotification('textDocument/publishDiagnostics', (p: PublishDiagnosticsParams) => {
      this.diagnostics.push(p);
      changed();
    });
    this.connection.onNotification('$/progress', (p: unknown) => {
      this.progress.push(p);
      changed();
    });
    this.connection.onNotification('window/showMessage', (p: { type: number; message: string }) => {
      this.messages.push(p);
      changed();
    });
    this.connection.onNotification('window/logMessage', () => undefined);
    this.connection.onRequest('window/workDoneProgress/create', () => null);
    this.connection.onRequest('client/registerCapability', (p: { registrations: TestClient['registrations'] }) => {
      this.registrations.push(...p.registrations);
      return null;
    });
    this.connection.onRequest('workspace/configuration', (p: { items: { section?: string }[] }) => p.items.map(() => o.configuration ?? null));
    this.connection.onRequest('workspace/applyEdit', (p: unknown) => {
      this.appliedEdits.push(p);
      changed();
      return { applied: true };
    });
    this.connection.listen();
  }

  async initialize(): Promise<InitializeResult> {
    const capabilities: ClientCapabilities = {
      ...this.o.capabilities,
      workspace: { ...this.o.capabilities?.workspace, ...(this.o.configuration !== undefined ? { configuration: true } : {}) },
    };
    this.initializeResult = await this.connection.sendRequest('initialize', {
      processId: null,
      rootUri: pathToFileURL(this.dir).href,
      workspaceFolders: [{ uri: pathToFileURL(this.dir).href, name: 'ws' }],
      capabilities,
      initializationOptions: this.o.initializationOptions,
    });
    await this.connection.sendNotification('initialized', {});
    return this.initializeResult;
  }

  /** Writes a file into the workspace (an image: a real one from the fixtures); returns its file: URI. */
  file(relative: string, content?: string | Buffer): string {
    content ??= /\.jpe?g$/i.test(relative) ? readFileSync(join(FIXTURES, 'wide.jpg')) : /\.png$/i.test(relative) ? readFileSync(join(FIXTURES, 'shapes.png')) : '';
    const path = join(this.dir, relative);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, content);
    return pathToFileURL(path).href;
  }

  path(relative: string): string {
    return join(this.dir, relative);
  }

  open(uri: string, languageId: string, text: string, version = 1): Promise<void> {
    return this.connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId, version, text } });
  }

  /** Waits until `check` holds (re-checked on every notification), failing after `ms`. */
  async until<T>(what: string, check: () => T | undefined, ms = 5000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = check();
      if (v !== undefined && v !== false) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  /** The last diagnostics published for `uri` at `version`. */
  published(uri: string, version?: number): PublishDiagnosticsParams | undefined {
    return [...this.diagnostics].reverse().find((d) => d.uri === uri && (version === undefined || d.version === version));
  }

  async dispose(): Promise<void> {
    // `shutdown` stops the server's timers; `exit` would end this process.
    await this.connection.sendRequest('shutdown').catch(() => undefined);
    this.connection.dispose();
    this.serverConnection.dispose();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Text after LSP text edits (non-overlapping, any order). */
export function applyTextEdits(text: string, edits: unknown[]): string {
  const list = edits as { range: { start: Pos; end: Pos }; newText: string }[];
  const lines = text.split('\n');
  const offset = (p: Pos) => lines.slice(0, p.line).reduce((n, l) => n + l.length + 1, 0) + p.character;
  const sorted = [...list].sort((a, b) => offset(b.range.start) - offset(a.range.start));
  let out = text;
  for (const e of sorted) out = out.slice(0, offset(e.range.start)) + e.newText + out.slice(offset(e.range.end));
  return out;
}
interface Pos {
  line: number;
  character: number;
}
