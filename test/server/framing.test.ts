// Frames a daemon cannot take, over a real socket: an oversized request is answered with its own
// id (so the client's request does not wait forever) and the connection keeps working; framing
// that cannot be trusted closes the connection instead of eating the frames after it.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { daemonEndpoint } from '../../daemon/client/endpoint.js';
import { ErrorCodes } from '../../daemon/protocol.js';
import { engineBackend } from '../../daemon/server/engineBackend.js';
import { silentLogger } from '../../daemon/server/log.js';
import { type RunningDaemon, startSocketDaemon } from '../../daemon/server/server.js';
import { cleanupScratch, tempDir } from './daemon.js';

let daemon: RunningDaemon;
let socketPath: string;

before(async () => {
  const endpoint = daemonEndpoint({ PALIGEMMA_RUNTIME_DIR: await tempDir('pg-fr-') });
  socketPath = endpoint.socketPath;
  const started = await startSocketDaemon({ backend: engineBackend(), log: silentLogger, endpoint, idleExitMs: 60_000, maxMessageBytes: 10_000 });
  assert.equal(started.kind, 'started');
  daemon = (started as { daemon: RunningDaemon }).daemon;
});

after(async () => {
  await daemon?.shutdown('test over');
  await cleanupScratch();
});

async function raw() {
  const socket = connect(socketPath);
  await new Promise<void>((r) => socket.once('connect', () => r()));
  let buf = Buffer.alloc(0);
  let closed = false;
  const messages: Array<{ id: number | string | null; result?: unknown; error?: { code: number; message: string } }> = [];
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      const m = /^Content-Length: (\d+)\r\n\r\n/.exec(buf.toString('latin1', 0, Math.min(buf.length, 64)));
      if (!m || buf.length < m[0].length + Number(m[1])) break;
      messages.push(JSON.parse(buf.toString('utf8', m[0].length, m[0].length + Number(m[1]))));
      buf = buf.subarray(m[0].length + Number(m[1]));
    }
  });
  socket.on('close', () => (closed = true));
  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 300 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  };
  return { socket, messages, until, isClosed: () => closed };
}

const frame = (body: string) => `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
const status = (id: number) => frame(JSON.stringify({ jsonrpc: '2.0', id, method: 'paligemma/status' }));

test('an oversized request is answered with its own id, and the next request on the connection is served', async () => {
  const c = await raw();
  c.socket.write(frame(JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'paligemma/caption', params: { image: { data: 'A'.repeat(20_000) } } })));
  c.socket.write(status(8));
  await c.until(() => c.messages.length >= 2);
  assert.equal(c.messages[0].id, 7);
  assert.equal(c.messages[0].error?.code, ErrorCodes.InvalidRequest);
  assert.match(c.messages[0].error!.message, /exceeds the limit of 10000/);
  assert.equal(c.messages[1].id, 8);
  assert.ok(c.messages[1].result);
  c.socket.destroy();
});

test('an implausible Content-Length is answered with its id and the connection is closed', async () => {
  const c = await raw();
  c.socket.write(`Content-Length: 900000000\r\n\r\n` + JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'paligemma/status', params: { s: 'x'.repeat(5000) } }));
  c.socket.write(status(10));
  await c.until(() => c.isClosed());
  assert.ok(c.isClosed(), 'the daemon closed the connection');
  assert.deepEqual(c.messages.map((m) => [m.id, m.error?.code]), [[9, ErrorCodes.InvalidRequest]]);
});

test('a Content-Length that swallows the next frame closes the connection with an error for the first id', async () => {
  const c = await raw();
  const first = JSON.stringify({ jsonrpc: '2.0', id: 11, method: 'paligemma/status' });
  c.socket.write(`Content-Length: ${first.length + 40}\r\n\r\n${first}` + status(12));
  await c.until(() => c.isClosed());
  assert.ok(c.isClosed(), 'the daemon closed the connection');
  assert.deepEqual(c.messages.map((m) => [m.id, m.error?.code]), [[11, ErrorCodes.ParseError]]);
});
