// A SIMULATION of a GPU worker's engine, for the cluster benchmark only: every model call takes a
// fixed delay (a timer, so like a GPU it leaves the CPU free) and answers a fixed text. It measures
// what the broker adds around a job, never how fast a model is. Nothing outside bench/ uses it.
import type { Backend, LoadedModel } from '../../daemon/server/backend.js';

export const SIMULATED_MODEL_NAME = 'simulated-gpu';

export function simulatedBackend(delayMs: number): Backend {
  const model: LoadedModel = {
    info: { name: `${SIMULATED_MODEL_NAME}-${delayMs}ms`, architecture: 'simulation', imageSize: 224, dtype: 'none', executionProvider: 'simulated', warnings: [] },
    async generate() {
      await new Promise((r) => setTimeout(r, delayMs));
      return { text: `simulated answer after ${delayMs} ms`, raw: 'simulated', inputIds: [], generatedIds: [] };
    },
    async dispose() {},
  };
  return {
    identify: async () => ({ id: `simulated-${delayMs}ms-0000000000000000`.slice(0, 32), name: model.info.name }),
    load: async () => model,
    decodeImage: async () => ({ width: 224, height: 224 }),
    prompt: (task) => task,
    parseObjects: () => [],
    displayText: (t) => t,
  };
}
