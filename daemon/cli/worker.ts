// `paligemma worker --broker nats://host:4222`: one GPU host's share of a cluster. The model runs
// in this process (the local daemon's service and engine worker thread); it never opens the local
// daemon's socket. SIGTERM / SIGINT drain: no new work is taken, work in flight is finished and
// acknowledged, then the process exits.
import { createWriteStream } from 'node:fs';
import { resolve } from 'node:path';
import { connect } from 'nats';
import { describeConnectError, natsConnectOptions } from '../client/brokerWire.js';
import { startClusterWorker } from '../cluster/worker.js';
import type { ExecutionProviderSetting } from '../protocol.js';
import { defaultModelPath } from '../server/defaults.js';
import { createLogger, isLogLevel, type LogLevel } from '../server/log.js';
import { DEFAULT_LIMITS, PaliGemmaService } from '../server/service.js';
import { workerBackend } from '../server/workerBackend.js';
import { errorMessage } from '../common/errors.js';
import { EXECUTION_PROVIDERS } from '../engine/model/providers.js';
import { choiceOption, integerOption, runCommand, UsageError, type ParsedValues } from './args.js';
import type { Command } from './main.js';

const usage = `usage: paligemma worker --broker nats://host:4222[,nats://host2:4222...] [options]
  --broker <urls>        NATS servers (default $PALIGEMMA_BROKER); tls://host:port for TLS
  --model <dir>          model folder (default: $PALIGEMMA_MODEL or ~/.local/share/paligemma/models/default)
  --ep <auto|cpu|cuda|webgpu>  execution provider (default auto)
  --creds <file>         NATS credentials file (JWT + nkey seed)
  --token-file <file>    file holding the NATS auth token
  --tls-ca <file>        CA bundle to trust; --tls-cert <file> --tls-key <file> for mutual TLS
  --max-batch <n>        most waiting requests run together (default 8 on a GPU, 1 on the CPU)
  --jobs <n>             batch jobs taken at once (default two batches: one running, one waiting)
  --ack-wait-ms <ms>     a job not acknowledged or heartbeated this long goes to another worker (default 30000)
  --max-deliver <n>      deliveries of a job before it is given up with its reason (default 5)
  --cache-ttl-ms <ms>    lifetime of shared cache entries when this worker creates the bucket (default 86400000)
  --max-bytes <n>        refuse larger images (default ${DEFAULT_LIMITS.maxBytes})
  --log-level <level>    trace|debug|info|warn|error (default info, or $PALIGEMMA_LOG_LEVEL)
  --log-file <file>      append logs here instead of stderr
`;

const OPTIONS = {
  broker: { type: 'string' },
  model: { type: 'string' },
  ep: { type: 'string' },
  creds: { type: 'string' },
  'token-file': { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'max-batch': { type: 'string' },
  jobs: { type: 'string' },
  'ack-wait-ms': { type: 'string' },
  'max-deliver': { type: 'string' },
  'cache-ttl-ms': { type: 'string' },
  'max-bytes': { type: 'string' },
  'log-level': { type: 'string' },
  'log-file': { type: 'string' },
} as const;

export const command: Command = {
  summary: 'serve the model to a NATS cluster (requests and batch jobs)',
  run: (argv) => runCommand({ name: 'worker', usage, options: OPTIONS }, argv, serveWorker),
};

async function serveWorker(values: ParsedValues<typeof OPTIONS>): Promise<number> {
  const fail = (m: string) => {
    process.stderr.write(`paligemma worker: ${m}\n`);
    return 1;
  };
  const broker = values.broker ?? process.env.PALIGEMMA_BROKER;
  if (!broker) throw new UsageError('give the NATS servers with --broker nats://host:4222 (or set PALIGEMMA_BROKER)', true);
  if (values.creds && values['token-file']) throw new UsageError('give either --creds or --token-file, not both');
  const ep: ExecutionProviderSetting = choiceOption(values.ep, 'ep', EXECUTION_PROVIDERS) ?? 'auto';
  const level = values['log-level'] ?? process.env.PALIGEMMA_LOG_LEVEL ?? 'info';
  if (!isLogLevel(level)) throw new UsageError(`--log-level must be trace, debug, info, warn or error, got '${level}'`);
  const n = {
    maxBatch: integerOption(values['max-batch'], 'max-batch', 1),
    jobs: integerOption(values.jobs, 'jobs', 1),
    ackWaitMs: integerOption(values['ack-wait-ms'], 'ack-wait-ms', 1000),
    maxDeliver: integerOption(values['max-deliver'], 'max-deliver', 1),
    cacheTtlMs: integerOption(values['cache-ttl-ms'], 'cache-ttl-ms', 1000),
    maxBytes: integerOption(values['max-bytes'], 'max-bytes', 1, DEFAULT_LIMITS.maxBytes),
  };
  const modelPath = values.model ? resolve(values.model) : defaultModelPath();
  if (!modelPath) throw new UsageError('give the model folder with --model <dir> (or set PALIGEMMA_MODEL)');

  const out = values['log-file'] ? createWriteStream(values['log-file'], { flags: 'a', mode: 0o600 }) : process.stderr;
  const log = createLogger(out, level as LogLevel, { pid: process.pid, role: 'worker' });
  process.on('uncaughtException', (e) => log.error('uncaught exception', { error: e.stack ?? String(e) }));
  process.on('unhandledRejection', (e) => log.error('unhandled rejection', { error: e instanceof Error ? (e.stack ?? e.message) : String(e) }));

  let nc;
  try {
    const opts = await natsConnectOptions(
      broker,
      { creds: values.creds, tokenFile: values['token-file'], tlsCa: values['tls-ca'], tlsCert: values['tls-cert'], tlsKey: values['tls-key'] },
      `paligemma-worker-${process.pid}`,
    );
    nc = await connect(opts);
  } catch (e) {
    return fail(e instanceof Error && !('code' in e) ? e.message : describeConnectError(broker, e));
  }
  const service = new PaliGemmaService({
    backend: workerBackend({ log }),
    log,
    modelPath,
    executionProvider: ep,
    // A worker keeps its model loaded: it exists to serve it.
    keepAliveMs: Infinity,
    maxBatch: n.maxBatch,
    limits: { maxBytes: n.maxBytes },
    transport: 'broker',
  });
  let worker;
  try {
    worker = await startClusterWorker({
      nc,
      service,
      modelPath,
      executionProvider: ep,
      log,
      maxBytes: n.maxBytes,
      ackWaitMs: n.ackWaitMs,
      maxDeliver: n.maxDeliver,
      jobConcurrency: n.jobs,
      streams: n.cacheTtlMs ? { cacheTtlMs: n.cacheTtlMs } : undefined,
    });
  } catch (e) {
    await nc.close().catch(() => {});
    await service.dispose();
    return fail(errorMessage(e));
  }
  process.stderr.write(`paligemma worker: serving ${worker.model.name} as paligemma.${worker.token}.* on ${broker}\n`);
  const done = new Promise<string>((r) => {
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(sig, () => r(sig));
    void nc.closed().then(() => r('the broker connection closed'));
  });
  const why = await done;
  await worker.drain(why);
  await service.dispose();
  // onnxruntime may keep native threads alive: leave explicitly once everything is released.
  process.exit(0);
}
