// `paligemma lsp --stdio` as an editor runs it: a child process speaking LSP on stdin/stdout.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';

const CLI = join(fileURLToPath(import.meta.url), '..', '..', '..', 'daemon', 'cli', 'main.js');

describe('paligemma lsp (the command)', () => {
  it('answers initialize on stdout with nothing else there, and exits 0 after shutdown + exit', async () => {
    const child = spawn(process.execPath, [CLI, 'lsp', '--stdio'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const exited = once(child, 'exit');
    const conn = createMessageConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
    conn.listen();
    try {
      const result = await conn.sendRequest<{ serverInfo: { name: string }; capabilities: { hoverProvider: boolean } }>('initialize', {
        processId: process.pid,
        rootUri: null,
        capabilities: {},
      });
      assert.equal(result.serverInfo.name, 'paligemma');
      assert.equal(result.capabilities.hoverProvider, true);
      await conn.sendRequest('shutdown');
      await conn.sendNotification('exit');
      const [code] = await exited;
      assert.equal(code, 0);
    } finally {
      conn.dispose();
      child.kill();
    }
  });

  it('ends when the editor closes its stdin', async () => {
    const child = spawn(process.execPath, [CLI, 'lsp', '--stdio'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const exited = once(child, 'exit');
    child.stdin.end();
    const timer = setTimeout(() => child.kill(), 10_000);
    const [code, signal] = await exited;
    clearTimeout(timer);
    assert.equal(signal, null, 'it exited by itself');
    assert.equal(typeof code, 'number');
  });

  it('refuses other transports with a usage error (exit 2)', () => {
    const r = spawnSync(process.execPath, [CLI, 'lsp'], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /only --stdio is supported/);
    assert.match(r.stderr, /usage: paligemma lsp --stdio \[--model <dir>\]/);
  });
});
