// A socket daemon in its own process serving blockingEngine.ts, for the responsiveness test: the
// client must not share the daemon's main thread, or a blocked daemon would stall the measuring too.
// usage: node blockingDaemon.js <worker|in-process> <runtime dir> <model dir>; prints "ready".
import { daemonEndpoint } from '../../daemon/client/endpoint.js';
import { silentLogger } from '../../daemon/server/log.js';
import { startSocketDaemon } from '../../daemon/server/server.js';
import { workerBackend } from '../../daemon/server/workerBackend.js';
import { backend as blockingBackend, blockingEngineModule } from './blockingEngine.js';

const [mode, runtimeDir, modelPath] = process.argv.slice(2);
const started = await startSocketDaemon({
  backend: mode === 'worker' ? workerBackend({ backendModule: blockingEngineModule }) : blockingBackend(),
  log: silentLogger,
  modelPath,
  executionProvider: 'cpu',
  endpoint: daemonEndpoint({ PALIGEMMA_RUNTIME_DIR: runtimeDir }),
  idleExitMs: 60_000,
});
if (started.kind !== 'started') throw new Error(`daemon not started: ${started.kind}`);
process.stdout.write('ready\n');
await started.daemon.closed;
process.exit(0);
