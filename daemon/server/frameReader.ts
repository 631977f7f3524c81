// A MessageReader for `Content-Length` framed JSON-RPC that survives junk. vscode-jsonrpc's
// StreamMessageReader buffers without bound while it waits for a header end, and after junk
// bytes it reads the next real header as part of the junk and stays out of step. This reader
// bounds headers and bodies, resynchronises on the next `Content-Length:` and reports each
// problem (so the server can answer a JSON-RPC error with id null) instead of giving up.
import type { Readable } from 'node:stream';
import { AbstractMessageReader, type DataCallback, type Disposable, type Message } from 'vscode-jsonrpc/node';

export interface FrameProblem {
  /** -32700 parse error or -32600 invalid request. */
  code: number;
  message: string;
  /** The request id, when a well-formed JSON object carried one. */
  id?: number | string | null;
}

export interface GuardedReaderOptions {
  maxHeaderBytes?: number;
  maxMessageBytes: number;
  onProblem: (p: FrameProblem) => void;
}

const HEADER_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /content-length:/i;

export class GuardedMessageReader extends AbstractMessageReader {
  private head: Buffer = Buffer.alloc(0);
  private body: Buffer[] = [];
  private bodyHave = 0;
  /** Bytes still expected for the current body, or -1 while reading headers. */
  private bodyNeed = -1;
  /** Bytes of an oversized body still to throw away. */
  private skip = 0;
  private inJunk = false;
  private readonly maxHeaderBytes: number;

  constructor(
    private readonly readable: Readable,
    private readonly options: GuardedReaderOptions,
  ) {
    super();
    this.maxHeaderBytes = options.maxHeaderBytes ?? 8192;
  }

  listen(callback: DataCallback): Disposable {
    const onData = (chunk: Buffer) => {
      try {
        this.onData(chunk, callback);
      } catch (e) {
        this.fireError(e);
      }
    };
    const onError = (e: Error) => this.fireError(e);
    const onClose = () => this.fireClose();
    this.readable.on('data', onData);
    this.readable.on('error', onError);
    this.readable.on('close', onClose);
    this.readable.on('end', onClose);
    return {
      dispose: () => {
        this.readable.off('data', onData);
        this.readable.off('error', onError);
        this.readable.off('close', onClose);
        this.readable.off('end', onClose);
      },
    };
  }

  private onData(chunk: Buffer, callback: DataCallback): void {
    while (chunk.length > 0) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length);
        this.skip -= n;
        chunk = chunk.subarray(n);
        continue;
      }
      if (this.bodyNeed >= 0) {
        const n = Math.min(this.bodyNeed - this.bodyHave, chunk.length);
        this.body.push(chunk.subarray(0, n));
        this.bodyHave += n;
        chunk = chunk.subarray(n);
        if (this.bodyHave === this.bodyNeed) {
          const body = Buffer.concat(this.body);
          this.body = [];
          this.bodyHave = 0;
          this.bodyNeed = -1;
          this.deliver(body, callback);
        }
        continue;
      }
      this.head = this.head.length ? Buffer.concat([this.head, chunk]) : chunk;
      chunk = Buffer.alloc(0);
      this.parseHeaders();
      // parseHeaders moved to body or skip mode: feed it what followed the header.
      if (this.bodyNeed >= 0 || this.skip > 0) {
        chunk = this.head;
        this.head = Buffer.alloc(0);
      }
    }
  }

  /** Consumes header blocks from `head` until a valid one switches to body mode, or more bytes are needed. */
  private parseHeaders(): void {
    for (;;) {
      const end = this.head.indexOf(HEADER_END);
      if (end < 0) {
        if (this.head.length > this.maxHeaderBytes) this.junk('header too long or missing its blank line');
        else return;
        continue;
      }
      const length = contentLength(this.head.subarray(0, end).toString('latin1'));
      if (length === undefined) {
        this.junk('malformed header (expected "Content-Length: <bytes>")');
        continue;
      }
      this.inJunk = false;
      this.head = this.head.subarray(end + HEADER_END.length);
      if (length > this.options.maxMessageBytes) {
        this.options.onProblem({ code: -32600, message: `message of ${length} bytes exceeds the limit of ${this.options.maxMessageBytes}`, id: null });
        this.skip = length;
      } else {
        this.bodyNeed = length;
        if (length === 0) {
          this.bodyNeed = -1;
          this.options.onProblem({ code: -32700, message: 'empty message body', id: null });
          continue;
        }
      }
      return;
    }
  }

  /** Drops bytes up to the next plausible header, reporting the junk once per run of it. */
  private junk(reason: string): void {
    if (!this.inJunk) this.options.onProblem({ code: -32700, message: `parse error: ${reason}`, id: null });
    this.inJunk = true;
    const text = this.head.toString('latin1');
    const next = text.slice(1).search(CONTENT_LENGTH);
    if (next >= 0) {
      this.head = this.head.subarray(next + 1);
    } else {
      // Keep a tail in case "Content-Length:" is split across chunks; it holds no line break,
      // so it cannot hold a header end and be parsed (and dropped) again.
      const lastBreak = this.head.lastIndexOf(0x0a);
      this.head = this.head.subarray(Math.max(lastBreak + 1, this.head.length - 15));
    }
  }

  private deliver(body: Buffer, callback: DataCallback): void {
    let msg: unknown;
    try {
      msg = JSON.parse(body.toString('utf8'));
    } catch {
      // Not JSON.parse's message: it quotes the input, which may be image data.
      this.options.onProblem({ code: -32700, message: `parse error: the ${body.length}-byte message body is not valid JSON`, id: null });
      return;
    }
    if (Array.isArray(msg)) {
      this.options.onProblem({ code: -32600, message: 'invalid request: batches are not supported', id: null });
      return;
    }
    if (typeof msg !== 'object' || msg === null) {
      this.options.onProblem({ code: -32600, message: 'invalid request: a message must be a JSON object', id: null });
      return;
    }
    const m = msg as Record<string, unknown>;
    const id = typeof m.id === 'number' || typeof m.id === 'string' ? m.id : null;
    const isRequestOrNotification = typeof m.method === 'string';
    const isResponse = 'id' in m && ('result' in m || 'error' in m) && !('method' in m);
    if (!isRequestOrNotification && !isResponse) {
      this.options.onProblem({ code: -32600, message: 'invalid request: expected a "method" string', id });
      return;
    }
    if (isRequestOrNotification && 'id' in m && id === null) {
      this.options.onProblem({ code: -32600, message: 'invalid request: "id" must be a number or a string', id: null });
      return;
    }
    if ('params' in m && m.params !== null && typeof m.params !== 'object') {
      if (id !== null) this.options.onProblem({ code: -32602, message: 'invalid params: "params" must be an object or an array', id });
      return;
    }
    callback(m as unknown as Message);
  }
}

function contentLength(header: string): number | undefined {
  let length: number | undefined;
  for (const line of header.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) return undefined;
    const key = line.slice(0, colon).trim();
    if (!/^[A-Za-z0-9-]+$/.test(key)) return undefined;
    if (key.toLowerCase() === 'content-length') {
      const v = line.slice(colon + 1).trim();
      if (!/^\d{1,12}$/.test(v)) return undefined;
      length = Number(v);
    }
  }
  return length;
}
