// Structured logs: one JSON object per line on a writable stream (stderr, which the auto-started
// daemon redirects to its log file). Callers pass facts as fields; image bytes never go in here,
// only paths, sizes and hashes.
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

const rank: Record<LogLevel, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4 };

export function isLogLevel(s: string): s is LogLevel {
  return s in rank;
}

export interface Logger {
  trace(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export function createLogger(out: { write(s: string): unknown }, level: LogLevel = 'info', base: Record<string, unknown> = {}): Logger {
  const min = rank[level];
  const emit = (lvl: LogLevel) => (msg: string, fields?: Record<string, unknown>) => {
    if (rank[lvl] < min) return;
    try {
      out.write(JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...base, ...fields }) + '\n');
    } catch {
      // A closed log stream must never take a request down with it.
    }
  };
  return { trace: emit('trace'), debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

export const silentLogger: Logger = createLogger({ write: () => true }, 'error', {});
