// Loaded into every test file's process by `npm test` (--import): once the file's tests are done,
// a process that is still alive some seconds later is held by a leaked handle (a socket, a child,
// a timer). Instead of hanging until the runner's timeout with no clue, it names what is open and
// fails the file.
import { after } from 'node:test';

/** How long a file may take to exit after its last test (cleanup hooks, sockets closing). */
const GRACE_MS = Number(process.env.PALIGEMMA_TEST_EXIT_GRACE_MS ?? 60_000);

function describeHandle(h) {
  const name = h?.constructor?.name ?? typeof h;
  if (name === 'Socket' || name === 'Server') {
    const where = h._pipeName ?? h.remoteAddress ?? h.address?.() ?? '';
    return `${name} ${typeof where === 'string' ? where : JSON.stringify(where)}${h.destroyed ? ' (destroyed)' : ''}${h.readyState ? ` ${h.readyState}` : ''}`;
  }
  if (name === 'ChildProcess') return `ChildProcess pid ${h.pid} ${h.spawnargs?.join(' ')}`;
  return name;
}

// Only in a test file's own process, not in the runner that spawns them.
if (process.env.NODE_TEST_CONTEXT)
  after(() => {
    setTimeout(() => {
      const std = [process.stdin, process.stdout, process.stderr];
      const handles = (process._getActiveHandles?.() ?? []).filter((h) => !std.includes(h));
      const lines = [
        `test file still running ${GRACE_MS} ms after its last test: something keeps the process alive`,
        `  resources: ${process.getActiveResourcesInfo().join(', ')}`,
        ...handles.map((h) => `  handle: ${describeHandle(h)}`),
      ];
      process.stderr.write(`${lines.join('\n')}\n`);
      process.exit(1);
    }, GRACE_MS).unref();
  });
