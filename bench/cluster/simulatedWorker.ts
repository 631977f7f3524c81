// One simulated GPU worker process for the cluster benchmark: the real worker code
// (daemon/cluster/worker.ts and the daemon's service) over the simulated engine. Arguments:
// <broker url> <delay ms>. Prints "ready" once it serves; drains on SIGTERM.
import { connect } from 'nats';
import { startClusterWorker } from '../../daemon/cluster/worker.js';
import { silentLogger } from '../../daemon/server/log.js';
import { PaliGemmaService } from '../../daemon/server/service.js';
import { simulatedBackend } from './simulatedEngine.js';

const [url, delay] = process.argv.slice(2);
const nc = await connect({ servers: url });
const service = new PaliGemmaService({
  backend: simulatedBackend(Number(delay)),
  log: silentLogger,
  modelPath: '/simulated',
  keepAliveMs: Infinity,
  transport: 'broker',
  cacheEntries: 1,
});
const worker = await startClusterWorker({ nc, service, modelPath: '/simulated', log: silentLogger, maxBytes: 1 << 20, streams: { cacheTtlMs: 1000 } });
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  void worker.drain('SIGTERM').then(async () => {
    await service.dispose();
    process.exit(0);
  });
});
