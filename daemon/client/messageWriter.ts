// The client's side of the daemon's message limit: a request too large for the daemon is refused
// here, before a byte is sent, with a message saying what to do (the daemon would only refuse it
// after reading it all). Writes vscode-jsonrpc's framing: `Content-Length` header, JSON body.
import type { Socket } from 'node:net';
import { AbstractMessageWriter, type Message, type MessageWriter } from 'vscode-jsonrpc/node';
import { MAX_MESSAGE_BYTES } from '../protocol.js';

export class MessageTooLargeError extends Error {
  constructor(
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(
      `the request is ${megabytes(bytes)}, over the daemon's limit of ${megabytes(limit)} per message; ` + 'send the image by path (a file on this machine) or make it smaller',
    );
    this.name = 'MessageTooLargeError';
  }
}

/** Bytes of base64 text for `bytes` bytes of data. */
export function base64Length(bytes: number): number {
  return 4 * Math.ceil(bytes / 3);
}

/** Throws MessageTooLargeError when `bytes` of image sent inline would not fit in one message. */
export function checkInlineImage(bytes: number, limit = MAX_MESSAGE_BYTES): void {
  // Room for the rest of the request (method, prompt, options) next to the base64 text.
  const total = base64Length(bytes) + 64 * 1024;
  if (total > limit) throw new MessageTooLargeError(total, limit);
}

export class LimitedMessageWriter extends AbstractMessageWriter implements MessageWriter {
  constructor(
    private readonly socket: Socket,
    private readonly limit = MAX_MESSAGE_BYTES,
  ) {
    super();
  }

  write(msg: Message): Promise<void> {
    const body = Buffer.from(JSON.stringify(msg), 'utf8');
    if (body.length > this.limit) return Promise.reject(new MessageTooLargeError(body.length, this.limit));
    return new Promise((resolve, reject) => {
      this.socket.write(Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`, 'ascii'), body]), (e) => {
        if (!e) return resolve();
        this.fireError(e, msg);
        reject(e);
      });
    });
  }

  end(): void {}

  /** As vscode-jsonrpc's SocketMessageWriter: disposing the connection closes its socket. */
  override dispose(): void {
    super.dispose();
    this.socket.destroy();
  }
}

function megabytes(n: number): string {
  return n < 1024 * 1024 ? `${n} bytes` : `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}
