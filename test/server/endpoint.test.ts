// Where the daemon binds, checked before binding: a socket path the kernel would truncate, a
// runtime folder other users can reach, a bind lock left behind by a process that hangs, and
// clients dialling while a daemon binds.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, test } from 'node:test';
import { daemonEndpoint, dialIfRunning, ensureRuntimeDir, MAX_SOCKET_PATH_BYTES, probeSocket, STALE_LOCK_MS } from '../../daemon/client/endpoint.js';
import { engineBackend } from '../../daemon/server/engineBackend.js';
import { silentLogger } from '../../daemon/server/log.js';
import { BIND_LOCK_WAIT_MS, type RunningDaemon, startSocketDaemon } from '../../daemon/server/server.js';
import { cleanupScratch, repoRoot, tempDir } from './daemon.js';

after(cleanupScratch);

const start = (endpoint: ReturnType<typeof daemonEndpoint>, staleLockMs?: number) =>
  startSocketDaemon({ backend: engineBackend(), log: silentLogger, endpoint, idleExitMs: 60_000, staleLockMs });

test('a socket path too long to bind falls back to a short per-user folder, or names the variable to shorten', () => {
  const long = '/run/user/' + 'x'.repeat(120);
  const e = daemonEndpoint({ XDG_RUNTIME_DIR: long });
  assert.ok(Buffer.byteLength(e.socketPath) <= MAX_SOCKET_PATH_BYTES, e.socketPath);
  assert.equal(e.runtimeDir, `/tmp/pg-${process.getuid?.() ?? 0}`);
  assert.ok(e.lockPath.startsWith(e.runtimeDir) && e.logPath.startsWith(e.runtimeDir));
  assert.throws(() => daemonEndpoint({ PALIGEMMA_RUNTIME_DIR: long }), /longer than the 10[37] this system allows: set PALIGEMMA_RUNTIME_DIR to a shorter folder/);
  // A path that fits is left alone.
  assert.equal(daemonEndpoint({ XDG_RUNTIME_DIR: '/run/user/7' }).runtimeDir, '/run/user/7/paligemma');
});

test('the daemon refuses to bind a socket path that is too long, before binding anything', async () => {
  const dir = await tempDir('pg-len-');
  const runtimeDir = join(dir, 'y'.repeat(100));
  const base = join(runtimeDir, 'paligemma-test');
  const endpoint = { runtimeDir, socketPath: `${base}.sock`, lockPath: `${base}.lock`, spawnLockPath: `${base}.spawn.lock`, logPath: `${base}.log` };
  await assert.rejects(start(endpoint), /set PALIGEMMA_RUNTIME_DIR to a shorter folder/);
  assert.deepEqual(await readdir(dir), [], 'nothing created');
});

test('a runtime folder that group or others can enter is refused at bind, saying how to fix it', async () => {
  const runtimeDir = join(await tempDir('pg-mode-'), 'run');
  await mkdir(runtimeDir, { mode: 0o700 });
  await chmod(runtimeDir, 0o755);
  const endpoint = daemonEndpoint({ PALIGEMMA_RUNTIME_DIR: runtimeDir });
  await assert.rejects(ensureRuntimeDir(runtimeDir), new RegExp(`mode is 0755.*chmod 700 ${runtimeDir}`));
  await assert.rejects(start(endpoint), /other users can reach the daemon's socket/);
  assert.deepEqual(await readdir(runtimeDir), [], 'no socket bound');
});

test('the bind-lock wait outlasts the stale-lock age: a lock held by a live but hung process is broken', async () => {
  assert.ok(BIND_LOCK_WAIT_MS > STALE_LOCK_MS);
  const endpoint = daemonEndpoint({ PALIGEMMA_RUNTIME_DIR: await tempDir('pg-lock-') });
  // This process is alive, so only the lock's age can break it.
  await writeFile(endpoint.lockPath, String(process.pid));
  const t0 = Date.now();
  const started = await start(endpoint, 600);
  assert.equal(started.kind, 'started');
  assert.ok(Date.now() - t0 >= 500, 'waited for the lock to go stale');
  await (started as { daemon: RunningDaemon }).daemon.shutdown('test over');
});

test('a client leaves a socket nobody answers on in place: only the daemon, holding the bind lock, replaces it', async () => {
  const endpoint = daemonEndpoint({ PALIGEMMA_RUNTIME_DIR: await tempDir('pg-dead-') });
  // A dead daemon's socket refuses like one a starting daemon has bound and does not listen on yet.
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(endpoint.socketPath)}, () => process.kill(process.pid, 'SIGKILL'))`]);
  await new Promise((r) => child.once('exit', r));
  assert.equal(await dialIfRunning(endpoint.socketPath), undefined);
  assert.equal(await probeSocket(endpoint.socketPath), false);
  assert.ok((await lstat(endpoint.socketPath)).isSocket(), 'the client left the socket file alone');
  const started = await start(endpoint);
  assert.equal(started.kind, 'started');
  assert.equal(await probeSocket(endpoint.socketPath), true, 'the daemon replaced it');
  await (started as { daemon: RunningDaemon }).daemon.shutdown('test over');
});

test('clients dialling in a tight loop while daemons start and stop never break a start', async () => {
  const endpoint = daemonEndpoint({ PALIGEMMA_RUNTIME_DIR: await tempDir('pg-dialers-') });
  const module = pathToFileURL(join(repoRoot, 'out', 'daemon', 'client', 'endpoint.js')).href;
  // Each dialer also leaves when its stdin closes, so none outlives this test process.
  const loop = `process.stdin.on('close', () => process.exit()).resume(); import(${JSON.stringify(module)}).then(async ({ dialIfRunning }) => { for (;;) (await dialIfRunning(${JSON.stringify(endpoint.socketPath)}, 500).catch(() => undefined))?.destroy(); })`;
  const dialers = [0, 1].map(() => spawn(process.execPath, ['-e', loop], { stdio: ['pipe', 'ignore', 'ignore'] }));
  try {
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < 40; i++) {
      // Every client that connects while the daemon starts leaves at once: none may hold up its stop.
      const started = await start(endpoint);
      assert.equal(started.kind, 'started', `start ${i}`);
      assert.ok(existsSync(endpoint.socketPath), `start ${i}: the socket is still there`);
      await (started as { daemon: RunningDaemon }).daemon.shutdown('test over');
    }
  } finally {
    dialers.forEach((d) => d.kill());
  }
});
