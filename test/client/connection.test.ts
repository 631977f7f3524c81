// A client whose daemon dies in the middle of a message: the connection closes and nothing of it
// keeps the client's process alive (a CLI command must end, not hang, when its daemon is killed).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { daemonEndpoint, ensureRuntimeDir } from '../../daemon/client/endpoint.js';
import { cleanupScratch, repoRoot, tempDir } from '../server/daemon.js';

after(cleanupScratch);

test('a message cut off by the daemon dying closes the connection, and the client process exits', async () => {
  const runtimeDir = await tempDir('pg-cut-');
  const endpoint = daemonEndpoint({ PALIGEMMA_RUNTIME_DIR: runtimeDir });
  await ensureRuntimeDir(runtimeDir);
  // A stand-in daemon that sends a header and half a body, then goes away.
  const server = createServer((s) => {
    s.write('Content-Length: 200\r\n\r\n{"jsonrpc":"2.0","method":"paligemma/token', () => setTimeout(() => s.destroy(), 100));
  });
  await new Promise<void>((r) => server.listen(endpoint.socketPath, () => r()));
  after(() => server.close());

  const client = join(repoRoot, 'out', 'daemon', 'client', 'daemon.js');
  const script = `
    const { connectDaemon } = await import(${JSON.stringify(client)});
    const c = await connectDaemon({ endpoint: ${JSON.stringify(endpoint)}, start: false });
    c.connection.onClose(() => console.log('closed'));
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  // vscode-jsonrpc's reader re-arms a 10 s timer for a partial message forever: give it more than one round.
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([exited, new Promise<'running'>((r) => (timer = setTimeout(() => r('running'), 25_000)))]);
  clearTimeout(timer);
  if (outcome === 'running') child.kill('SIGKILL');
  assert.equal(outcome, 0, `the client process is still running 25 s after its daemon went away; output: ${out}`);
  assert.match(out, /closed/);
});
