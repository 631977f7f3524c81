// The thread of one SessionThread (session-thread.ts): opens the session as createSession does
// on the CPU (the load cache included), then runs it for each 'run' message until 'release'.
import { parentPort, workerData } from 'node:worker_threads';
import type * as ort from 'onnxruntime-node';
import { errorMessage } from '../../common/errors.js';
import { isEngineError } from '../errors.js';
import { createSession } from './providers.js';
import { tensorFrom, tensorMessage, type FromSessionThread, type SessionThreadData, type TensorMessage, type ToSessionThread } from './session-thread.js';

const port = parentPort!;
const { path, threads } = workerData as SessionThreadData;
const post = (m: FromSessionThread, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

let session: ort.InferenceSession;
try {
  session = await createSession(path, 'cpu', threads);
  post({
    kind: 'ready',
    inputNames: [...session.inputNames],
    outputNames: [...session.outputNames],
    inputMetadata: [...session.inputMetadata],
    outputMetadata: [...session.outputMetadata],
  });
} catch (e) {
  post({ kind: 'failed', code: isEngineError(e) ? e.code : undefined, message: errorMessage(e) });
  process.exit(0);
}

port.on('message', (m: ToSessionThread) => {
  if (m.kind === 'release') {
    void session.release().finally(() => post({ kind: 'released' }));
    return;
  }
  const feeds = Object.fromEntries(Object.entries(m.feeds).map(([k, v]) => [k, tensorFrom(v)]));
  (m.fetches ? session.run(feeds, [...m.fetches]) : session.run(feeds)).then(
    (out) => {
      const outputs: Record<string, TensorMessage> = {};
      const transfer: ArrayBuffer[] = [];
      const give = (t: ort.Tensor) => {
        const buffer = (t.data as { buffer?: unknown }).buffer;
        if (buffer instanceof ArrayBuffer && !transfer.includes(buffer)) transfer.push(buffer);
      };
      for (const [k, v] of Object.entries(out)) {
        outputs[k] = tensorMessage(v as ort.Tensor);
        give(v as ort.Tensor);
      }
      // The inputs' copies go back with the answer (detached here, garbage there): this thread
      // allocates almost nothing else, so its collector would run seldom and let dead inputs pile
      // up to V8's external-memory limit (tens of MB of resident memory, test/server/memory.test.ts).
      for (const t of Object.values(feeds)) give(t);
      post({ kind: 'result', id: m.id, outputs }, transfer);
    },
    (e: unknown) => post({ kind: 'error', id: m.id, message: errorMessage(e) }),
  );
});
