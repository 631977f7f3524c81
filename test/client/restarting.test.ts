// kill -9 of the daemon mid-request: the client starts it again once and sends the requests that
// were in flight again; after that one restart, requests fail saying the daemon stopped. Spawned
// daemons, real tiny model.
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { after, test } from 'node:test';
import { createMessageConnection, SocketMessageReader, SocketMessageWriter } from 'vscode-jsonrpc/node';
import { daemonEndpoint, ensureRuntimeDir } from '../../daemon/client/endpoint.js';
import * as protocol from '../../daemon/protocol.js';
import { RestartingDaemonClient } from '../../daemon/client/restarting.js';
import { cleanupScratch, images, isAlive, mainJs, runCli, tempDir, testDaemon, tinyModel, waitFor } from '../server/daemon.js';

after(cleanupScratch);

test('a daemon killed mid-request is started again once and the requests in flight are answered; a second kill fails them clearly', async () => {
  const model = await tinyModel();
  const d = await testDaemon(['--model', model, '--ep', 'cpu']);
  const restarts: string[] = [];
  const client = await RestartingDaemonClient.connect({
    endpoint: d.endpoint,
    env: d.env,
    start: { command: process.execPath, args: [mainJs] },
    serveArgs: ['--model', model, '--ep', 'cpu'],
    timeoutMs: 20_000,
    onRestart: (m) => restarts.push(m),
  });
  try {
    const first = (await client.request(protocol.Status.type)).pid;
    let streaming!: () => void;
    const started = new Promise<void>((r) => (streaming = r));
    client.onNotification(protocol.TokenStream.type, () => streaming());
    const running = client.request(protocol.Generate.type, {
      image: { path: images.shapes },
      prompt: 'caption en',
      decoding: { maxNewTokens: 400, minNewTokens: 400 },
      streamId: 'doomed',
    });
    // The caption is sent once the generate runs, so it is queued behind it (the daemon queues
    // requests in the order their images are read, not the order they were sent).
    await started;
    const other = client.request(protocol.Caption.type, { image: { path: images.gradient }, decoding: { maxNewTokens: 3 } });
    await waitFor(async () => (await client.request(protocol.Status.type)).queue.pending === 1, 10_000, 'the caption to wait behind the generate');
    process.kill(first, 'SIGKILL');
    const r = await running;
    assert.equal(r.generatedIds.length, 400);
    assert.equal(typeof (await other).text, 'string', 'the queued request was sent again too');
    assert.equal(restarts.length, 1);
    assert.match(restarts[0], /the PaliGemma daemon stopped while answering \(its log: .*\); starting it again and retrying 2 request\(s\)/);
    const second = (await client.request(protocol.Status.type)).pid;
    assert.notEqual(second, first);
    assert.ok(!isAlive(first));

    // Killed again: no second restart, the request fails saying so.
    const doomed = client.request(protocol.Generate.type, { image: { path: images.wide }, prompt: 'caption en', decoding: { maxNewTokens: 400, minNewTokens: 400 } });
    await waitFor(async () => (await client.request(protocol.Status.type)).queue.running === 1, 10_000, 'the request to run');
    process.kill(second, 'SIGKILL');
    await assert.rejects(doomed, /the PaliGemma daemon stopped while answering, again after a restart \(its log: /);
    await assert.rejects(client.request(protocol.Status.type), /stopped while answering/);
  } finally {
    client.close();
    await d.stop();
  }
});

test('the CLI reports every image when the daemon is killed on the way', async () => {
  const model = await tinyModel();
  const d = await testDaemon(['--model', model, '--ep', 'cpu']);
  try {
    const c = await d.connect();
    const { pid } = await c.connection.sendRequest(protocol.Status.type);
    // Killed once the CLI's first image is running.
    const watcher = (async () => {
      await waitFor(async () => (await c.connection.sendRequest(protocol.Status.type)).queue.running === 1, 20_000, 'the CLI to start');
      process.kill(pid, 'SIGKILL');
    })();
    const imgs = [images.shapes, images.gradient, images.wide];
    const out = await runCli(['caption', '--json', '--max-tokens', '60', ...imgs, '--model', model], d.env);
    await watcher;
    c.close();
    const lines = out.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((l) => l.image),
      imgs,
      out.stderr,
    );
    assert.ok(
      lines.every((l) => typeof l.text === 'string'),
      out.stdout,
    );
    assert.match(out.stderr, /stopped while answering .*starting it again/);
    assert.equal(out.code, 0);
  } finally {
    await d.stop();
  }
});

test('a connection the dying daemon takes and drops unanswered is dialled again, not counted as a second crash', async () => {
  const runtimeDir = await tempDir('pg-dying-');
  const endpoint = daemonEndpoint({ PALIGEMMA_RUNTIME_DIR: runtimeDir });
  await ensureRuntimeDir(runtimeDir);
  // A stand-in daemon: the first connection crashes on its first caption, the second is dropped
  // at once (the dying daemon's socket still accepting), the third answers.
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    const n = ++connections;
    if (n === 2) return void s.destroy();
    const c = createMessageConnection(new SocketMessageReader(s), new SocketMessageWriter(s));
    c.onRequest(protocol.Status.method, () => ({ pid: n }));
    c.onRequest(protocol.Caption.method, () => {
      if (n === 1) s.destroy();
      return new Promise((r) => setTimeout(() => r({ text: `answered by connection ${n}`, cached: false }), 10));
    });
    c.listen();
  });
  await new Promise<void>((r) => server.listen(endpoint.socketPath, () => r()));
  after(() => {
    sockets.forEach((s) => s.destroy());
    server.close();
  });
  const restarts: string[] = [];
  const client = await RestartingDaemonClient.connect({ endpoint, start: false, timeoutMs: 5000, onRestart: (m) => restarts.push(m) });
  try {
    const r = await client.request(protocol.Caption.type, { image: { path: images.shapes } });
    assert.equal(r.text, 'answered by connection 3');
    assert.equal(restarts.length, 1, restarts.join('\n'));
  } finally {
    client.close();
  }
});
