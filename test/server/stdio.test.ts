// `paligemma serve --stdio`: one client on stdin/stdout, logs on stderr, `exit` ends the process.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import * as protocol from '../../daemon/protocol.js';
import { cleanupScratch, images, mainJs, tinyModel } from './daemon.js';

after(cleanupScratch);

test('serves one client over stdio and exits on `exit`', async () => {
  const child = spawn(process.execPath, [mainJs, 'serve', '--stdio', '--model', await tinyModel(), '--ep', 'cpu', '--log-level', 'trace'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const rpc = createMessageConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
  rpc.listen();
  try {
    const init = await rpc.sendRequest(protocol.Initialize.type, { processId: process.pid, capabilities: {} });
    assert.equal(init.serverInfo.name, 'paligemma-daemon');
    const r = await rpc.sendRequest(protocol.Ocr.type, { image: { path: images.shapes }, decoding: { maxNewTokens: 4 } });
    assert.equal(r.model, 'tiny-paligemma-224');
    const inline = readFileSync(images.wide).toString('base64');
    await rpc.sendRequest(protocol.Caption.type, { image: { data: inline }, decoding: { maxNewTokens: 2 } });
    await rpc.sendRequest(protocol.Caption.type, { image: { data: 'AAAA' + inline.slice(4, 400) } }).catch(() => {});
    const s = await rpc.sendRequest(protocol.Status.type);
    assert.equal(s.transport, 'stdio');
    assert.equal(s.socketPath, undefined);
    assert.equal(s.clients, 1);
    await rpc.sendRequest(protocol.Shutdown.type);
    await rpc.sendNotification(protocol.Exit.type);
    assert.equal(await exited, 0);
    // Logs are JSON lines on stderr, and never contain image bytes, even at trace level.
    const logs = stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: string; msg: string });
    assert.ok(logs.some((l) => l.msg === 'model loaded'));
    assert.ok(logs.some((l) => l.msg === 'request failed'));
    assert.ok(!stderr.includes(inline.slice(100, 160)), 'image bytes in the log');
  } finally {
    rpc.dispose();
    child.kill();
  }
});
