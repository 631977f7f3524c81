// Frames a daemon cannot take, over a real socket: an oversized request is answered with its own
// id (so the client's request does not wait forever) and the connection keeps working; framing
// that cannot be trusted closes the connection instead of eating the frames after it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { daemonEndpoint } from '../../daemon/client/endpoint.js';
import { ErrorCodes } from '../../daemon/protocol.js';
import { engineBackend } from '../../daemon/server/engineBackend.js';
import { silentLogger } from '../../daemon/server/log.js';
import { type RunningDaemon, startSocketDaemon } from '../../daemon/server/server.js';
import { cleanupScratch, frame, rawSocket, tempDir } from './daemon.js';

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

const raw = () => rawSocket(socketPath);
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
  assert.deepEqual(
    c.messages.map((m) => [m.id, m.error?.code]),
    [[9, ErrorCodes.InvalidRequest]],
  );
});

test('a Content-Length that swallows the next frame closes the connection with an error for the first id', async () => {
  const c = await raw();
  const first = JSON.stringify({ jsonrpc: '2.0', id: 11, method: 'paligemma/status' });
  c.socket.write(`Content-Length: ${first.length + 40}\r\n\r\n${first}` + status(12));
  await c.until(() => c.isClosed());
  assert.ok(c.isClosed(), 'the daemon closed the connection');
  assert.deepEqual(
    c.messages.map((m) => [m.id, m.error?.code]),
    [[11, ErrorCodes.ParseError]],
  );
});
