// The client refuses a request too large for the daemon before sending a byte of it.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createMessageConnection, RequestType, SocketMessageReader } from 'vscode-jsonrpc/node';
import { checkInlineImage, LimitedMessageWriter, MessageTooLargeError } from '../../daemon/client/messageWriter.js';
import { MAX_MESSAGE_BYTES } from '../../daemon/protocol.js';

const Echo = new RequestType<{ s: string }, string, void>('echo');

test('a request over the limit is refused with a clear error and nothing reaches the daemon; smaller ones go through', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pg-mw-'));
  let received = 0;
  const server = createServer((s) => {
    const c = createMessageConnection(new SocketMessageReader(s), new LimitedMessageWriter(s));
    s.on('data', (d) => (received += d.length));
    c.onRequest(Echo, (p) => p.s);
    c.listen();
  });
  const path = join(dir, 's.sock');
  await new Promise<void>((r) => server.listen(path, r));
  const socket = connect(path);
  await new Promise((r) => socket.once('connect', r));
  const client = createMessageConnection(new SocketMessageReader(socket), new LimitedMessageWriter(socket, 1000));
  client.listen();
  try {
    await assert.rejects(client.sendRequest(Echo, { s: 'x'.repeat(2000) }), (e: Error) => {
      assert.match(e.message, /over the daemon's limit of 1000 bytes per message; send the image by path/);
      return true;
    });
    assert.equal(received, 0);
    assert.equal(await client.sendRequest(Echo, { s: 'small' }), 'small');
  } finally {
    client.dispose();
    socket.destroy();
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  }
});

test('checkInlineImage: an image whose base64 would not fit in one message is refused, one that fits passes', () => {
  assert.throws(() => checkInlineImage(80 * 1024 * 1024), MessageTooLargeError);
  assert.doesNotThrow(() => checkInlineImage(50 * 1024 * 1024));
  assert.throws(() => checkInlineImage(Math.ceil((MAX_MESSAGE_BYTES * 3) / 4)), /send the image by path/);
});
