// One JSON-RPC connection (a socket client, or stdio) bound to the shared service. Each
// connection has its own LSP lifecycle: `exit` closes only this connection, and everything it
// asked for is cancelled when it goes away.
import type { Readable, Writable } from 'node:stream';
import { type CancellationToken, createMessageConnection, type MessageConnection, ResponseError, type ResponseMessage, StreamMessageWriter } from 'vscode-jsonrpc/node';
import * as protocol from '../protocol.js';
import { ErrorCodes } from '../protocol.js';
import { toResponseError } from './errors.js';
import { GuardedMessageReader } from './frameReader.js';
import type { Logger } from './log.js';
import type { PaliGemmaService, RequestContext } from './service.js';
import { DAEMON_VERSION } from '../client/version.js';

export interface ConnectionOptions {
  log: Logger;
  /** Called once when the connection has closed, whatever closed it. */
  onClose: () => void;
  /** A client asked the whole daemon to stop (paligemma/stop). */
  onStop: () => void;
  /** Largest accepted frame: inline images travel as base64 inside one message. */
  maxMessageBytes: number;
}

type Handler = (params: unknown, ctx: RequestContext) => unknown;

let nextConnectionId = 1;

export function serveConnection(service: PaliGemmaService, input: Readable, output: Writable, o: ConnectionOptions): MessageConnection {
  const cid = nextConnectionId++;
  const log = o.log;
  const writer = new StreamMessageWriter(output);
  const reader = new GuardedMessageReader(input, {
    maxMessageBytes: o.maxMessageBytes,
    onProblem: (p) => {
      log.warn(p.fatal ? 'closing the connection: its framing cannot be trusted' : 'bad message from client', { connection: cid, code: p.code, problem: p.message });
      const reply: ResponseMessage = { jsonrpc: '2.0', id: p.id ?? null, error: { code: p.code, message: p.message } };
      const written = writer.write(reply).catch(() => {});
      // Closing fails the client's other pending requests, instead of leaving them unanswered.
      if (p.fatal) void written.then(() => close());
    },
  });
  const connection = createMessageConnection(reader, writer, {
    error: (m) => log.error(m, { connection: cid }),
    warn: (m) => log.warn(m, { connection: cid }),
    info: (m) => log.debug(m, { connection: cid }),
    log: (m) => log.trace(m, { connection: cid }),
  });

  const live = new Set<AbortController>();
  let shutdownRequested = false;
  let closed = false;

  const handlers: Record<string, Handler> = {
    [protocol.Caption.method]: (p, ctx) => service.caption(p, ctx),
    [protocol.Ocr.method]: (p, ctx) => service.ocr(p, ctx),
    [protocol.Detect.method]: (p, ctx) => service.detect(p, ctx),
    [protocol.Answer.method]: (p, ctx) => service.answer(p, ctx),
    [protocol.Segment.method]: (p, ctx) => service.segment(p, ctx),
    [protocol.Generate.method]: (p, ctx) => service.generate(p, ctx),
    [protocol.Status.method]: (p) => service.status(p),
    [protocol.LoadModel.method]: (p, ctx) => service.loadModel(p, ctx),
    [protocol.UnloadModel.method]: (p, ctx) => service.unloadModel(p, ctx),
    [protocol.Stop.method]: () => {
      // Answer first, then stop: the reply must reach the client.
      setImmediate(o.onStop);
      return { pid: process.pid };
    },
    [protocol.Initialize.method]: (): protocol.InitializeResult => ({
      capabilities: {},
      serverInfo: { name: 'paligemma-daemon', version: DAEMON_VERSION },
    }),
    [protocol.Shutdown.method]: () => {
      shutdownRequested = true;
      for (const c of live) c.abort();
      return null;
    },
  };

  connection.onRequest(async (method: string, params: unknown, token: CancellationToken) => {
    const handler = handlers[method];
    if (!handler) {
      throw new ResponseError(ErrorCodes.MethodNotFound, `unknown method '${method}' (known: ${Object.keys(handlers).join(', ')})`);
    }
    if (shutdownRequested && method !== protocol.Shutdown.method) {
      throw new ResponseError(ErrorCodes.InvalidRequest, `'${method}' after 'shutdown': this connection only accepts 'exit' now`);
    }
    const controller = new AbortController();
    live.add(controller);
    const sub = token.onCancellationRequested(() => controller.abort());
    const t0 = performance.now();
    try {
      const result = await handler(params, {
        signal: controller.signal,
        sendToken: (n) => {
          if (!closed) connection.sendNotification(protocol.TokenStream.type, n).catch(() => {});
        },
      });
      log.debug('request done', { connection: cid, method, ms: Math.round(performance.now() - t0) });
      return result;
    } catch (e) {
      const err = toResponseError(e);
      const level = err.code === ErrorCodes.InternalError ? 'error' : 'info';
      log[level]('request failed', { connection: cid, method, code: err.code, error: err.message });
      throw err;
    } finally {
      sub.dispose();
      live.delete(controller);
    }
  });

  connection.onNotification(protocol.Initialized.type, () => {});
  connection.onNotification(protocol.Exit.type, () => {
    log.info('client sent exit', { connection: cid });
    close();
  });

  const offModel = service.on('modelChanged', (s) => {
    if (!closed) connection.sendNotification(protocol.ModelChanged.type, s).catch(() => {});
  });
  const offProgress = service.on('progress', (p) => {
    if (!closed) connection.sendNotification(protocol.Progress.type, p).catch(() => {});
  });

  function close(): void {
    if (closed) return;
    closed = true;
    for (const c of live) c.abort();
    offModel();
    offProgress();
    connection.dispose();
    input.destroy?.();
    if (output !== process.stdout) output.end?.();
    log.info('client disconnected', { connection: cid });
    o.onClose();
  }

  connection.onClose(close);
  connection.onError(([err]) => log.warn('connection error', { connection: cid, error: err.message }));
  connection.listen();
  log.info('client connected', { connection: cid });
  return connection;
}
