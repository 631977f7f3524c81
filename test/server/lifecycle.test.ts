// The shared daemon's life: started detached by the first client (only one, however many race),
// private socket and folder, stale sockets replaced, idle exit, and a daemon killed mid-request.
import assert from 'node:assert/strict';
import { chown, lstat, mkdir, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { after, test } from 'node:test';
import { connectDaemon } from '../../daemon/client/daemon.js';
import * as protocol from '../../daemon/protocol.js';
import { ErrorCodes } from '../../daemon/protocol.js';
import { checkSocketOwner, daemonEndpoint, ensureRuntimeDir } from '../../daemon/client/endpoint.js';
import { cleanupScratch, images, isAlive, tempDir, testDaemon, tinyModel, waitFor } from './daemon.js';

after(cleanupScratch);

test('the first client starts one detached daemon even when several race; socket 0600, folder 0700', async () => {
  const d = await testDaemon(['--model', await tinyModel()]);
  try {
    const clients = await Promise.all([d.connect(), d.connect(), d.connect(), d.connect()]);
    const pids = await Promise.all(clients.map(async (c) => (await c.connection.sendRequest(protocol.Status.type)).pid));
    assert.equal(new Set(pids).size, 1, `daemon pids ${pids}`);
    assert.notEqual(pids[0], process.pid);
    assert.equal((await stat(d.endpoint.socketPath)).mode & 0o777, 0o600);
    assert.equal((await stat(d.runtimeDir)).mode & 0o777, 0o700);
    assert.match(d.endpoint.socketPath, /paligemma-.+-0\.1\.0\.sock$/);
    const s = await clients[0].connection.sendRequest(protocol.Status.type);
    assert.equal(s.clients, 4);
    clients.forEach((c) => c.close());
  } finally {
    await d.stop();
  }
});

test('a folder or socket that belongs to another user is refused', async () => {
  if (process.getuid?.() === 0) {
    // As root: make a folder and a socket owned by someone else.
    const base = await tempDir('pg-own-');
    const foreignDir = join(base, 'foreign');
    await mkdir(foreignDir, { mode: 0o700 });
    await chown(foreignDir, 4242, 4242);
    await assert.rejects(ensureRuntimeDir(foreignDir), /belongs to uid 4242/);
    const sock = join(base, 's.sock');
    const server = createServer().listen(sock);
    await new Promise((r) => server.once('listening', r));
    await chown(sock, 4242, 4242);
    await assert.rejects(checkSocketOwner(sock), /refusing socket .* belongs to uid 4242/);
    server.close();
  } else {
    // As a normal user, /tmp itself belongs to root.
    await assert.rejects(ensureRuntimeDir('/tmp'), /belongs to uid 0/);
  }
});

test('a stale socket file (nobody listening) is replaced by a fresh daemon', async () => {
  const d = await testDaemon(['--model', await tinyModel()]);
  try {
    // A process that binds the socket path and dies without cleaning up.
    await ensureRuntimeDir(d.runtimeDir);
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(d.endpoint.socketPath)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    await new Promise((r) => child.once('exit', r));
    assert.ok((await lstat(d.endpoint.socketPath)).isSocket());
    const c = await d.connect();
    const s = await c.connection.sendRequest(protocol.Status.type);
    assert.ok(isAlive(s.pid));
    c.close();
  } finally {
    await d.stop();
  }
});

test('the daemon exits after the idle timeout once its last client has gone', async () => {
  const d = await testDaemon(['--model', await tinyModel(), '--idle-exit-ms', '400']);
  const c = await d.connect();
  const { pid } = await c.connection.sendRequest(protocol.Status.type);
  const second = await d.connect();
  c.close();
  await new Promise((r) => setTimeout(r, 800));
  assert.ok(isAlive(pid), 'still serving a client');
  second.close();
  await waitFor(() => !isAlive(pid), 10_000, 'the idle daemon to exit');
  await assert.rejects(stat(d.endpoint.socketPath), /ENOENT/);
});

test('killing the daemon mid-request fails the request; the next client starts a fresh daemon', async () => {
  const model = await tinyModel();
  const d = await testDaemon(['--model', model, '--ep', 'cpu']);
  try {
    const c = await d.connect();
    const { pid } = await c.connection.sendRequest(protocol.Status.type);
    let tokens = 0;
    c.connection.onNotification(protocol.TokenStream.type, () => {
      if (++tokens === 3) process.kill(pid, 'SIGKILL');
    });
    const long = c.connection.sendRequest(protocol.Generate.type, {
      image: { path: images.shapes },
      prompt: 'caption en',
      decoding: { maxNewTokens: 3000, minNewTokens: 3000 },
      streamId: 'doomed',
    });
    await assert.rejects(long, (e: Error) => /disposed|closed/i.test(e.message));
    await waitFor(() => !isAlive(pid), 5000, 'the killed daemon to go');
    c.close();
    const fresh = await d.connect();
    const s = await fresh.connection.sendRequest(protocol.Status.type);
    assert.notEqual(s.pid, pid);
    const r = await fresh.connection.sendRequest(protocol.Caption.type, { image: { path: images.shapes }, decoding: { maxNewTokens: 3 } });
    assert.equal(r.cached, false);
    fresh.close();
  } finally {
    await d.stop();
  }
});

test('stop: the daemon answers, fails work in flight with ShuttingDown, disconnects every client, removes its socket', async () => {
  const d = await testDaemon(['--model', await tinyModel()]);
  const a = await d.connect();
  const b = await d.connect();
  const { pid } = await a.connection.sendRequest(protocol.Status.type);
  const bClosed = new Promise<void>((r) => b.socket.once('close', () => r()));
  let streaming!: () => void;
  const started = new Promise<void>((r) => (streaming = r));
  b.connection.onNotification(protocol.TokenStream.type, () => streaming());
  const inFlight = b.connection.sendRequest(protocol.Generate.type, {
    image: { path: images.shapes },
    prompt: 'caption en',
    decoding: { maxNewTokens: 3000, minNewTokens: 3000 },
    streamId: 'b',
  });
  await started;
  assert.deepEqual(await a.connection.sendRequest(protocol.Stop.type), { pid });
  await assert.rejects(inFlight, (e: { code: number; message: string }) => e.code === ErrorCodes.ShuttingDown && /shutting down/.test(e.message));
  await bClosed;
  await waitFor(() => !isAlive(pid), 10_000, 'the daemon to exit');
  await assert.rejects(stat(d.endpoint.socketPath), /ENOENT/);
  await assert.rejects(connectDaemon({ endpoint: d.endpoint, start: false, timeoutMs: 500 }), /no PaliGemma daemon is running/);
  a.close();
});

test('with --cache-dir, results survive a daemon restart', async () => {
  const cacheDir = join(await tempDir('pg-cachedir-'), 'results');
  const d = await testDaemon(['--model', await tinyModel(), '--cache-dir', cacheDir]);
  try {
    const params = { image: { path: images.gradient }, decoding: { maxNewTokens: 5 } };
    const a = await d.connect();
    const first = await a.connection.sendRequest(protocol.Caption.type, params);
    assert.equal(first.cached, false);
    a.close();
    await d.stop();
    const b = await d.connect();
    const again = await b.connection.sendRequest(protocol.Caption.type, params);
    assert.deepEqual([again.cached, again.text], [true, first.text]);
    const s = await b.connection.sendRequest(protocol.Status.type);
    assert.equal(s.model.state, 'none', 'answered without loading the model');
    b.close();
  } finally {
    await d.stop();
  }
});

test('the socket lives in $PALIGEMMA_RUNTIME_DIR, else $XDG_RUNTIME_DIR/paligemma, else a per-user tmp folder', () => {
  assert.equal(daemonEndpoint({ PALIGEMMA_RUNTIME_DIR: '/r' }).runtimeDir, '/r');
  assert.equal(daemonEndpoint({ XDG_RUNTIME_DIR: '/run/user/7' }).runtimeDir, '/run/user/7/paligemma');
  assert.match(daemonEndpoint({}).runtimeDir, new RegExp(`paligemma-${process.getuid?.()}$`));
  const e = daemonEndpoint({ PALIGEMMA_RUNTIME_DIR: '/r' }, '9.9.9');
  assert.match(e.socketPath, /^\/r\/paligemma-[A-Za-z0-9._-]+-9\.9\.9\.sock$/);
});
