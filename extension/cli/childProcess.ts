// Runs the daemon program's CLI (`paligemma convert`, `paligemma download`) as a child process,
// line by line: long work that must not share the daemon's event loop with other windows' requests.
// vscode-free, so it is tested with real child processes.
import { spawn } from 'node:child_process';

export interface CliRun {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** Aborting sends `killSignal` (default SIGTERM) to the child. */
  signal?: AbortSignal;
  killSignal?: NodeJS.Signals;
  onLine(line: string, stream: 'stdout' | 'stderr'): void;
}

export interface CliExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The run was aborted through `signal`. */
  cancelled: boolean;
  /** The last lines of stderr, for an error message when the CLI printed nothing better. */
  stderrTail: string[];
}

/** Resolves when the child exits; rejects only when it cannot be started. */
export function runCli(o: CliRun): Promise<CliExit> {
  return new Promise((resolve, reject) => {
    const child = spawn(o.command, o.args, { env: o.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderrTail: string[] = [];
    const reader = (stream: 'stdout' | 'stderr') => {
      let buffer = '';
      const emit = (line: string) => {
        if (!line) return;
        if (stream === 'stderr') stderrTail = [...stderrTail, line].slice(-5);
        o.onLine(line, stream);
      };
      return {
        data(chunk: Buffer) {
          buffer += chunk.toString('utf8');
          const lines = buffer.split(/\r?\n|\r/);
          buffer = lines.pop() ?? '';
          lines.forEach(emit);
        },
        end() {
          emit(buffer);
          buffer = '';
        },
      };
    };
    const out = reader('stdout');
    const err = reader('stderr');
    child.stdout.on('data', out.data);
    child.stderr.on('data', err.data);
    let cancelled = false;
    const abort = () => {
      cancelled = true;
      child.kill(o.killSignal ?? 'SIGTERM');
    };
    if (o.signal?.aborted) abort();
    else o.signal?.addEventListener('abort', abort, { once: true });
    child.on('error', (e) => {
      o.signal?.removeEventListener('abort', abort);
      reject(e);
    });
    child.on('close', (code, signal) => {
      o.signal?.removeEventListener('abort', abort);
      out.end();
      err.end();
      resolve({ code, signal, cancelled, stderrTail });
    });
  });
}
