// The worker thread of workerBackend.ts: engineBackend()'s models run here, so onnxruntime's
// blocking calls never stall the daemon's main thread. It answers the requests of workerBackend.ts
// (the message types are in workerMessages.ts) and keeps, per image id, the one object the engine caches
// features for.
import { parentPort, workerData } from 'node:worker_threads';
import type { RgbImage } from '../engine/image/index.js';
import type { Backend, LoadedModel } from './backend.js';
import { engineBackend } from './engineBackend.js';
import { Lru } from './lru.js';
import { toErrorMessage, type ImageMessage, type LoadReply, type WorkerData, type WorkerReply, type WorkerRequest } from './workerMessages.js';

const IMAGE_BYTES = 256 * 1024 * 1024;

const port = parentPort!;
const data = workerData as WorkerData;
const backend: Backend = data.backendModule ? ((await import(data.backendModule)) as { backend(): Backend }).backend() : engineBackend();
const models = new Map<number, LoadedModel>();
let nextModel = 1;
// Pixels posted from the main side are shared memory; the bound is for what this map keeps alive.
const images = new Lru<RgbImage>(data.imageEntries, IMAGE_BYTES, (im) => im.rgb.byteLength);
const running = new Map<number, AbortController>();

/** The same object for the same id, so the engine's feature cache (keyed by object) hits. */
function imageOf(m: ImageMessage): RgbImage {
  const key = String(m.id);
  let image = images.get(key);
  if (!image) {
    image = { width: m.width, height: m.height, rgb: m.rgb };
    images.set(key, image);
  }
  return image;
}

function modelOf(id: number): LoadedModel {
  const m = models.get(id);
  if (!m) throw new Error(`model ${id} is not loaded in the engine worker`);
  return m;
}

const send = (m: WorkerReply) => port.postMessage(m);

async function run(m: Exclude<WorkerRequest, { op: 'cancel' }>, signal: AbortSignal): Promise<unknown> {
  switch (m.op) {
    case 'load': {
      const model = await backend.load(m.path, {
        executionProvider: m.executionProvider,
        onProgress: (progress) => send({ kind: 'progress', id: m.id, progress }),
      });
      const id = nextModel++;
      models.set(id, model);
      const reply: LoadReply = { model: id, info: model.info, segment: model.segment !== undefined, batch: model.generateBatch !== undefined };
      return reply;
    }
    case 'generate':
      return modelOf(m.model).generate({
        image: imageOf(m.image),
        prompt: m.prompt,
        decoding: m.decoding,
        grammar: m.grammar,
        signal,
        onToken: m.stream ? (tokenId, text) => send({ kind: 'token', id: m.id, tokenId, text }) : undefined,
      });
    case 'generateBatch':
      return modelOf(m.model).generateBatch!(
        m.items.map((it) => ({ image: imageOf(it.image), prompt: it.prompt, maxNewTokens: it.maxNewTokens })),
        m.decoding,
        signal,
        m.grammar,
      );
    case 'segment':
      return modelOf(m.model).segment!(m.raw, m.width, m.height);
    case 'runStats': {
      const model = modelOf(m.model);
      if (!model.runStats) throw new Error('this model keeps no run statistics');
      return model.runStats();
    }
    case 'dispose': {
      const model = models.get(m.model);
      models.delete(m.model);
      if (models.size === 0) images.clear();
      await model?.dispose();
      return null;
    }
  }
}

port.on('message', (m: WorkerRequest) => {
  if (m.op === 'cancel') {
    running.get(m.id)?.abort();
    return;
  }
  const controller = new AbortController();
  running.set(m.id, controller);
  run(m, controller.signal)
    .then((value) => send({ kind: 'done', id: m.id, value }))
    // Also reached when a result cannot be posted (not cloneable): the caller still gets an answer.
    .catch((e: unknown) => send({ kind: 'failed', id: m.id, error: toErrorMessage(e) }))
    .finally(() => running.delete(m.id));
});
