// Where the daemon binds, checked before binding: a socket path the kernel would truncate, a
// runtime folder other users can reach, and a bind lock left behind by a process that hangs.
import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { daemonEndpoint, ensureRuntimeDir, MAX_SOCKET_PATH_BYTES, STALE_LOCK_MS } from '../../daemon/client/endpoint.js';
import { engineBackend } from '../../daemon/server/engineBackend.js';
import { silentLogger } from '../../daemon/server/log.js';
import { BIND_LOCK_WAIT_MS, type RunningDaemon, startSocketDaemon } from '../../daemon/server/server.js';
import { cleanupScratch, tempDir } from './daemon.js';

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
