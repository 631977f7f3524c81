// A MessageReader for `Content-Length` framed JSON-RPC that survives junk. vscode-jsonrpc's
// StreamMessageReader buffers without bound while it waits for a header end, and after junk
// bytes it reads the next real header as part of the junk and stays out of step. This reader
// bounds headers and bodies, resynchronises on the next `Content-Length:` and reports each
// problem (so the server can answer a JSON-RPC error) instead of giving up. A frame over the size
// limit is answered with its own id (read from the first bytes of its body while the rest is thrown
// away), so the client's request does not wait forever. Where the framing itself cannot be trusted
// (a declared length far beyond any real message, or one that swallowed the next frame) the problem
// is `fatal`: the connection is closed, which fails the client's pending requests instead of
// dropping them silently.
import type { Readable } from 'node:stream';
import { AbstractMessageReader, type DataCallback, type Disposable, type Message } from 'vscode-jsonrpc/node';

export interface FrameProblem {
  /** -32700 parse error or -32600 invalid request. */
  code: number;
  message: string;
  /** The request id, when a well-formed JSON object carried one. */
  id?: number | string | null;
  /** The framing is lost: nothing more is read, and the connection should close after the reply. */
  fatal?: boolean;
}

export interface GuardedReaderOptions {
  maxHeaderBytes?: number;
  maxMessageBytes: number;
  onProblem: (p: FrameProblem) => void;
}

const HEADER_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /content-length:/i;
/** Where an oversized body's id is looked for: vscode-jsonrpc writes `jsonrpc`, `id`, `method` before `params`. */
const ID_PREFIX_BYTES = 4096;
/** A declared length this many times the limit is no real message: the framing is not trusted. */
const IMPLAUSIBLE_FACTOR = 4;
/** A frame header inside a body: the previous Content-Length was larger than its message. */
const EMBEDDED_HEADER = /Content-Length: *\d+\r\n(?:[A-Za-z0-9-]+: *[^\r\n]*\r\n)*\r\n/i;

export class GuardedMessageReader extends AbstractMessageReader {
  private head: Buffer = Buffer.alloc(0);
  private body: Buffer[] = [];
  private bodyHave = 0;
  /** Bytes still expected for the current body, or -1 while reading headers. */
  private bodyNeed = -1;
  /** Bytes of an oversized body still to throw away. */
  private skip = 0;
  /** The first bytes of the oversized body being skipped, until its id has been read. */
  private skipHead: Buffer[] | undefined;
  private skipHeadBytes = 0;
  private skipLength = 0;
  /** A fatal problem was reported: every later byte is ignored. */
  private stopped = false;
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
    while (chunk.length > 0 && !this.stopped) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length);
        this.skip -= n;
        if (this.skipHead) {
          const keep = chunk.subarray(0, Math.min(n, ID_PREFIX_BYTES - this.skipHeadBytes));
          this.skipHead.push(keep);
          this.skipHeadBytes += keep.length;
          if (this.skipHeadBytes >= ID_PREFIX_BYTES || this.skip === 0) this.refuseOversized();
        }
        chunk = chunk.subarray(n);
        continue;
      }
      if (this.bodyNeed >= 0) {
        const n = Math.min(this.bodyNeed - this.bodyHave, chunk.length);
        const tail = this.body.length ? this.body[this.body.length - 1].subarray(-24) : Buffer.alloc(0);
        this.body.push(chunk.subarray(0, n));
        this.bodyHave += n;
        chunk = chunk.subarray(n);
        // Checked as the bytes come, so a short frame does not wait forever for bytes that never follow.
        if (CONTENT_LENGTH.test(Buffer.concat([tail, this.body[this.body.length - 1]]).toString('latin1')) && this.swallowedFrame()) return;
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
        this.skip = length;
        this.skipLength = length;
        this.skipHead = [];
        this.skipHeadBytes = 0;
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

  /** Answers the oversized frame with the id read from its first bytes; gives up on the framing when its length is implausible. */
  private refuseOversized(): void {
    const id = topLevelId(Buffer.concat(this.skipHead ?? []).toString('utf8'));
    this.skipHead = undefined;
    const max = this.options.maxMessageBytes;
    const fatal = this.skipLength > IMPLAUSIBLE_FACTOR * max;
    this.options.onProblem({
      code: -32600,
      message: `message of ${this.skipLength} bytes exceeds the limit of ${max}${fatal ? '; a length this large is not a real message, so the connection is closed' : ''}`,
      id,
      ...(fatal ? { fatal } : {}),
    });
    if (fatal) this.stopped = true;
  }

  /**
   * True (and reported) when the body read so far is a whole JSON message followed by another
   * frame's header: the declared length was larger than the message, and every frame after it
   * would be read out of step.
   */
  private swallowedFrame(): boolean {
    const text = Buffer.concat(this.body).toString('utf8');
    const at = text.search(EMBEDDED_HEADER);
    if (at <= 0) return false;
    let first: unknown;
    try {
      first = JSON.parse(text.slice(0, at));
    } catch {
      return false;
    }
    const id = first !== null && typeof first === 'object' ? (first as { id?: unknown }).id : undefined;
    this.options.onProblem({
      code: -32700,
      message: `the frame's Content-Length (${this.bodyNeed} bytes) is larger than its message (${Buffer.byteLength(text.slice(0, at))} bytes), so the next frame was read into it; the connection is closed`,
      id: typeof id === 'number' || typeof id === 'string' ? id : null,
      fatal: true,
    });
    this.stopped = true;
    this.body = [];
    return true;
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

/** The `id` member of the outermost object in (the start of) a JSON text, or null. */
export function topLevelId(text: string): number | string | null {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
    else if (c === '"') {
      const end = stringEnd(text, i);
      if (end < 0) return null;
      if (depth === 1 && text.slice(i, end + 1) === '"id"') {
        const m = /^\s*:\s*(-?\d+(?:\.\d+)?|"(?:[^"\\]|\\.)*")/.exec(text.slice(end + 1));
        if (!m) return null;
        return m[1].startsWith('"') ? (JSON.parse(m[1]) as string) : Number(m[1]);
      }
      i = end;
    }
  }
  return null;
}

function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
  }
  return -1;
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
