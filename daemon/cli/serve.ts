// `paligemma serve --stdio | --socket`: the daemon. Logs go to stderr (or --log-file) as JSON
// lines; stdout belongs to the JSON-RPC stream in --stdio mode.
import { createWriteStream } from 'node:fs';
import { resolve } from 'node:path';
import { DEFAULT_IDLE_EXIT_MS, DEFAULT_KEEP_ALIVE_MS, defaultModelPath } from '../server/defaults.js';
import { DEFAULT_MEMORY_BUDGET_BYTES } from '../server/memoryBudget.js';
import { daemonEndpoint } from '../client/endpoint.js';
import { createLogger, isLogLevel } from '../server/log.js';
import { runStdio, startSocketDaemon } from '../server/server.js';
import { workerBackend } from '../server/workerBackend.js';
import { EXECUTION_PROVIDERS } from '../engine/model/providers.js';
import { errorMessage } from '../common/errors.js';
import { choiceOption, integerOption, runCommand, UsageError } from './args.js';
import type { Command } from './main.js';

const usage = `usage: paligemma serve (--stdio | --socket) [options]
  --model <dir>          model folder to serve (default: $PALIGEMMA_MODEL or ~/.local/share/paligemma/models/default)
  --ep <auto|cpu|cuda|webgpu>  execution provider (default auto)
  --runtime-dir <dir>    where the socket lives (default $PALIGEMMA_RUNTIME_DIR, $XDG_RUNTIME_DIR/paligemma or a per-user tmp folder)
  --idle-exit-ms <ms>    socket: exit this long after the last client left (default ${DEFAULT_IDLE_EXIT_MS})
  --keep-alive-ms <ms>   unload the model after this long without requests (default ${DEFAULT_KEEP_ALIVE_MS})
  --load-cache           CPU: keep onnxruntime's optimised graphs and pre-packed weights beside the
                         model (.ort-cache, about twice the model's size): loads after the first
                         about twice as fast (same as PALIGEMMA_LOAD_CACHE=1)
  --queue <n>            requests allowed to wait before answering Busy (default 512)
  --max-batch <n>        most waiting requests run together in one batched model call
                         (default 8 on a GPU, 1 = no batching on the CPU)
  --cache-entries <n>    results kept in memory (default 2048)
  --cache-dir <dir>      also keep results on disk here
  --max-pixels <n>       refuse larger images (default 50000000)
  --max-bytes <n>        refuse larger image files (default 52428800)
  --memory-budget-mb <n> most MiB the images of admitted requests may hold at once (files and
                         decoded pixels); past it a request is answered Busy (default ${DEFAULT_MEMORY_BUDGET_BYTES / 1024 / 1024})
  --log-level <level>    trace|debug|info|warn|error (default info, or $PALIGEMMA_LOG_LEVEL)
  --log-file <file>      append logs here instead of stderr
`;

const OPTIONS = {
  stdio: { type: 'boolean' },
  socket: { type: 'boolean' },
  model: { type: 'string' },
  ep: { type: 'string' },
  'runtime-dir': { type: 'string' },
  'idle-exit-ms': { type: 'string' },
  'keep-alive-ms': { type: 'string' },
  'load-cache': { type: 'boolean' },
  queue: { type: 'string' },
  'max-batch': { type: 'string' },
  'cache-entries': { type: 'string' },
  'cache-dir': { type: 'string' },
  'max-pixels': { type: 'string' },
  'max-bytes': { type: 'string' },
  'memory-budget-mb': { type: 'string' },
  'log-level': { type: 'string' },
  'log-file': { type: 'string' },
} as const;

export const command: Command = {
  summary: 'run the daemon (--socket: shared per-user daemon; --stdio: one client)',
  run: (argv) =>
    runCommand({ name: 'serve', usage, options: OPTIONS }, argv, async (values) => {
      if (!values.stdio === !values.socket) throw new UsageError('give exactly one of --stdio and --socket', true);
      const ep = choiceOption(values.ep, 'ep', EXECUTION_PROVIDERS) ?? 'auto';
      const level = values['log-level'] ?? process.env.PALIGEMMA_LOG_LEVEL ?? 'info';
      if (!isLogLevel(level)) throw new UsageError(`--log-level must be trace, debug, info, warn or error, got '${level}'`);
      const numbers = {
        idleExitMs: integerOption(values['idle-exit-ms'], 'idle-exit-ms', 0),
        keepAliveMs: integerOption(values['keep-alive-ms'], 'keep-alive-ms', 0),
        queue: integerOption(values.queue, 'queue', 0),
        maxBatch: integerOption(values['max-batch'], 'max-batch', 0),
        cacheEntries: integerOption(values['cache-entries'], 'cache-entries', 0),
        maxPixels: integerOption(values['max-pixels'], 'max-pixels', 0),
        maxBytes: integerOption(values['max-bytes'], 'max-bytes', 0),
        memoryBudgetMb: integerOption(values['memory-budget-mb'], 'memory-budget-mb', 1),
      };
      const out = values['log-file'] ? createWriteStream(values['log-file'], { flags: 'a', mode: 0o600 }) : process.stderr;
      const log = createLogger(out, level, { pid: process.pid });
      const modelPath = values.model ? resolve(values.model) : defaultModelPath();
      // The engine and its session threads read the switch from their environment (load-cache.ts),
      // which threads started from here inherit.
      if (values['load-cache']) process.env.PALIGEMMA_LOAD_CACHE = '1';
      const common = {
        // The engine runs in a worker thread: its blocking onnxruntime calls must not stall the
        // requests of other clients (status, cancel, cached results).
        backend: workerBackend({ log }),
        log,
        modelPath,
        executionProvider: ep,
        keepAliveMs: numbers.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS,
        queueCapacity: numbers.queue,
        maxBatch: numbers.maxBatch === 0 ? 1 : numbers.maxBatch,
        cacheEntries: numbers.cacheEntries,
        cacheDir: values['cache-dir'] ? resolve(values['cache-dir']) : undefined,
        limits: { maxPixels: numbers.maxPixels, maxBytes: numbers.maxBytes },
        memoryBudgetBytes: numbers.memoryBudgetMb === undefined ? undefined : numbers.memoryBudgetMb * 1024 * 1024,
      };
      // Image limits left undefined fall back to the service defaults.
      if (common.limits.maxPixels === undefined) delete common.limits.maxPixels;
      if (common.limits.maxBytes === undefined) delete common.limits.maxBytes;

      process.on('uncaughtException', (e) => log.error('uncaught exception', { error: e.stack ?? String(e) }));
      process.on('unhandledRejection', (e) => log.error('unhandled rejection', { error: e instanceof Error ? (e.stack ?? e.message) : String(e) }));

      if (values.stdio) {
        const stop = () => process.stdin.destroy();
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
        await runStdio(common);
        process.exit(0);
      }

      const env = values['runtime-dir'] ? { ...process.env, PALIGEMMA_RUNTIME_DIR: values['runtime-dir'] } : process.env;
      const endpoint = daemonEndpoint(env);
      let started;
      try {
        started = await startSocketDaemon({ ...common, endpoint, idleExitMs: numbers.idleExitMs ?? DEFAULT_IDLE_EXIT_MS });
      } catch (e) {
        log.error('cannot start the daemon', { error: errorMessage(e) });
        process.stderr.write(`paligemma serve: ${errorMessage(e)}\n`);
        return 1;
      }
      if (started.kind === 'already-running') {
        log.info('another daemon already serves this socket', { socket: endpoint.socketPath });
        return 0;
      }
      const { daemon } = started;
      process.once('SIGTERM', () => void daemon.shutdown('SIGTERM'));
      process.once('SIGINT', () => void daemon.shutdown('SIGINT'));
      process.once('SIGHUP', () => void daemon.shutdown('SIGHUP'));
      await daemon.closed;
      // onnxruntime may keep native threads alive: leave explicitly once everything is released.
      process.exit(0);
    }),
};
