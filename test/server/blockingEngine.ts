// A test engine: the real one (tiny model) made slow and BLOCKING the way onnxruntime is (a
// synchronous call that holds its thread), or made to crash, by prompt:
//   'block <ms> <prompt>'  busy-waits <ms> inside generate, then runs <prompt> for real
//   'exit'                 ends its thread mid-request (process.exit in a worker ends the worker)
//   'throw'                raises an uncaught exception and never answers
// workerBackend({ backendModule }) loads it into the engine worker; blockingDaemon.ts can also
// serve it in-process, the daemon as it was before the worker.
import type { Backend, LoadedModel } from '../../daemon/server/backend.js';
import { engineBackend } from '../../daemon/server/engineBackend.js';

export const blockingEngineModule = new URL('./blockingEngine.js', import.meta.url).href;

function busyWait(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

export function backend(): Backend {
  const real = engineBackend();
  return {
    ...real,
    async load(path, o) {
      const model = await real.load(path, o);
      const slow: LoadedModel = {
        get info() {
          return model.info;
        },
        async generate(req) {
          const block = /^block (\d+) (.*)$/.exec(req.prompt);
          if (block) {
            busyWait(Number(block[1]));
            return model.generate({ ...req, prompt: block[2] });
          }
          if (req.prompt === 'exit') process.exit(3);
          if (req.prompt === 'throw') {
            setImmediate(() => {
              throw new Error('simulated engine crash');
            });
            return new Promise(() => {});
          }
          return model.generate(req);
        },
        runStats: model.runStats?.bind(model),
        dispose: () => model.dispose(),
      };
      return slow;
    },
  };
}
