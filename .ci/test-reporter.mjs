// A compact reporter for node:test (`npm test`): one line per test file, then each failure in full
// with what the file wrote to stdout/stderr, and node's own closing counts (`# pass N`, `# fail N`).
// Plain JS so that it runs without a build. For every test line use `--test-reporter=tap` or `spec`.
import { relative } from 'node:path';
import { inspect } from 'node:util';

/** Output kept per file for its failures: the last lines only, so a chatty test cannot flood the log. */
const KEEP_LINES = 40;

function fileState() {
  return { passed: 0, failed: 0, skipped: 0, cancelled: 0, failures: [], output: [], fileFailed: false };
}

function describeError(error) {
  // node:test wraps what the test threw; the cause is the assertion or error itself.
  const shown = error?.code === 'ERR_TEST_FAILURE' && error.cause !== undefined ? error.cause : error;
  return inspect(shown, { depth: 6, colors: false });
}

function indent(text, by = '    ') {
  return text.replace(/\n$/, '').replace(/^/gm, by);
}

function seconds(ms) {
  return `${(ms / 1000).toFixed(1)} s`;
}

export default async function* compactReporter(source) {
  const files = new Map();
  const started = new Map();
  const summary = [];
  const stateOf = (file) => {
    let s = files.get(file);
    if (!s) files.set(file, (s = fileState()));
    return s;
  };
  let pending;
  function* flush() {
    if (pending === undefined) return;
    const file = pending;
    pending = undefined;
    const s = stateOf(file);
    files.delete(file);
    const bad = s.failed > 0 || s.cancelled > 0 || s.failures.length > 0 || s.fileFailed;
    const counts = [`${s.passed} passed`];
    if (s.failed) counts.push(`${s.failed} failed`);
    if (s.cancelled) counts.push(`${s.cancelled} cancelled`);
    if (s.skipped) counts.push(`${s.skipped} skipped`);
    if (s.fileFailed && !s.failed) counts.push('the file failed');
    const took = started.has(file) ? ` (${seconds(performance.now() - started.get(file))})` : '';
    yield `${bad ? '✖' : '✔'} ${relative(process.cwd(), file)}: ${counts.join(', ')}${took}\n`;
    if (!bad) return;
    for (const f of s.failures) yield `  ✖ ${f.name}\n${indent(describeError(f.error))}\n`;
    if (s.output.length) {
      const shown = s.output.slice(-KEEP_LINES);
      const cut = s.output.length - shown.length;
      yield `  output of the file${cut ? ` (last ${shown.length} of ${s.output.length} lines)` : ''}:\n${indent(shown.join('\n'))}\n`;
    }
  }
  for await (const event of source) {
    const data = event.data ?? {};
    const file = data.file;
    if (pending !== undefined && file !== pending) yield* flush();
    switch (event.type) {
      case 'test:dequeue':
        if (file && data.name === file && data.nesting === 0) started.set(file, performance.now());
        break;
      case 'test:stdout':
      case 'test:stderr':
        if (file) stateOf(file).output.push(...String(data.message).replace(/\n$/, '').split('\n'));
        break;
      case 'test:pass':
        if (!file || data.details?.type === 'suite') break;
        if (data.skip || data.todo) stateOf(file).skipped++;
        else stateOf(file).passed++;
        break;
      case 'test:fail': {
        if (!file) break;
        const s = stateOf(file);
        const error = data.details?.error;
        if (data.name === file && data.nesting === 0) {
          // The file itself failed: it did not load, or it exited non-zero outside any test (its
          // output, shown with the line, says why; the error itself only says 'test failed').
          s.fileFailed = true;
          // Except a timeout: the file ran past --test-timeout (a test hung, or its process did not exit).
          if (error?.failureType === 'testTimeoutFailure') s.failures.push({ name: 'the file as a whole', error });
          break;
        }
        // A suite fails when its tests do; those are reported on their own.
        if (error?.failureType === 'subtestsFailed') break;
        // Tests cancelled because their suite failed (a hook) or the file ended: counted, the suite's error shown.
        if (error?.failureType === 'cancelledByParent') {
          s.cancelled++;
          break;
        }
        if (data.details?.type === 'suite') {
          s.failures.push({ name: data.name, error });
          break;
        }
        if (data.todo) {
          s.skipped++;
          break;
        }
        s.failed++;
        s.failures.push({ name: data.name, error });
        break;
      }
      case 'test:complete':
        // The file's own pass/fail (if any) comes right after its completion, so its line waits
        // for the next event of another file or the end of the run.
        if (file && data.name === file && data.nesting === 0) pending = file;
        break;
      case 'test:diagnostic':
        // The run's closing counts come as diagnostics outside any file; a test's own ones are dropped.
        if (!file && data.nesting === 0) summary.push(`# ${data.message}\n`);
        break;
    }
  }
  yield* flush();
  yield* summary;
}
