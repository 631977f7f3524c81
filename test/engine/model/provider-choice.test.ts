// firstAvailable: what 'auto' means for model layouts without a speed probe (transformers.js exports).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EngineError, isEngineError } from '../../../daemon/engine/errors.js';
import { firstAvailable } from '../../../daemon/engine/model/provider-choice.js';
import type { ExecutionProvider } from '../../../daemon/engine/model/providers.js';
import type { Sessions } from '../../../daemon/engine/model/sessions.js';

const loaded = (ep: ExecutionProvider) => ({ executionProvider: ep }) as unknown as Sessions;

test('the first provider that loads is taken; the ones that could not load are noted', async () => {
  const tried: ExecutionProvider[] = [];
  const notes: string[] = [];
  const s = await firstAvailable(
    '/models/x',
    ['cuda', 'webgpu', 'cpu'],
    async (ep) => {
      tried.push(ep);
      if (ep === 'cuda') throw new EngineError('provider-unavailable', 'no CUDA provider in this onnxruntime build');
      return loaded(ep);
    },
    notes,
  );
  assert.equal(s.executionProvider, 'webgpu');
  assert.deepEqual(tried, ['cuda', 'webgpu']);
  assert.deepEqual(notes, ['cuda: no CUDA provider in this onnxruntime build']);
});

test('any other failure (a broken model) is not hidden behind the next provider', async () => {
  const tried: ExecutionProvider[] = [];
  await assert.rejects(
    firstAvailable(
      '/models/x',
      ['cuda', 'cpu'],
      async (ep) => {
        tried.push(ep);
        throw new EngineError('model-invalid', 'decoder_model_merged.onnx lacks logits');
      },
      [],
    ),
    (e) => isEngineError(e, 'model-invalid'),
  );
  assert.deepEqual(tried, ['cuda']);
});

test('no provider loads: provider-unavailable naming the folder, every attempt in the notes', async () => {
  const notes: string[] = [];
  await assert.rejects(
    firstAvailable(
      '/models/x',
      ['cuda', 'cpu'],
      async (ep) => {
        throw new EngineError('provider-unavailable', `${ep} is missing`);
      },
      notes,
    ),
    (e) => isEngineError(e, 'provider-unavailable') && /\/models\/x/.test(e.message),
  );
  assert.deepEqual(notes, ['cuda: cuda is missing', 'cpu: cpu is missing']);
});
