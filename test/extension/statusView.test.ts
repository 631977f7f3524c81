// The status bar's words for each daemon state; provider fallbacks in one line, loader text never.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ModelStatus } from '../../daemon/protocol.js';
import { providerFallback, statusView } from '../../extension/statusView.js';

/** What `auto` records on a machine without the CUDA provider library (raw onnxruntime text). */
const CUDA_NOTE =
  'cuda unavailable: the CUDA execution provider could not be loaded (Failed to load library libonnxruntime_providers_cuda.so with error: libcudart.so.13: cannot open shared object file: No such file or directory)';
const WEBGPU_NOTE = 'webgpu failed its probe run: Non-zero status code returned while running MatMulNBits node. Name:/layers.0/mlp ... dawn';

const readyModel = (over: Partial<ModelStatus> = {}): ModelStatus => ({
  state: 'ready',
  path: '/m/tiny-paligemma-224',
  name: 'tiny-paligemma-224',
  architecture: 'paligemma',
  dtype: 'fp32',
  imageSize: 224,
  executionProvider: 'cpu',
  ...over,
});

test('no model: the words, the warning colour and the three ways to get one', () => {
  const v = statusView({ kind: 'noModel', message: 'No model is loaded. Download one or choose a folder.' });
  assert.equal(v.text, '$(warning) PaliGemma: no model');
  assert.equal(v.background, 'warning');
  assert.deepEqual(v.links, ['download', 'chooseFolder', 'convert']);
});

test('ready: the model name and the provider; a CUDA fallback is one line and no loader text', () => {
  const v = statusView({ kind: 'ready', model: readyModel({ providerNotes: [CUDA_NOTE] }), busy: 0 });
  assert.equal(v.text, '$(check) PaliGemma · cpu');
  assert.ok(v.detail.startsWith('Model **tiny-paligemma-224** (paligemma, fp32, 224 px) on **cpu**'), v.detail);
  assert.ok(v.detail.includes('CUDA unavailable: using CPU — details in the log'), v.detail);
  assert.doesNotMatch(v.detail, /libonnxruntime|\.so|shared object|Failed to load/);
  assert.equal(v.background, undefined);
});

test('provider fallbacks, one line each', () => {
  assert.equal(providerFallback('cpu', [CUDA_NOTE, WEBGPU_NOTE]), 'CUDA and WebGPU unavailable: using CPU — details in the log');
  assert.equal(providerFallback('webgpu', [CUDA_NOTE, 'webgpu probe 3.1 ms vs cpu 9.0 ms']), 'CUDA unavailable: using WebGPU — details in the log');
  assert.equal(providerFallback('cpu', ['webgpu probe 30.1 ms vs cpu 9.0 ms']), 'WebGPU was slower than the CPU in a test run: using CPU — details in the log');
  assert.equal(providerFallback('cuda', []), undefined);
  assert.equal(providerFallback('cuda', undefined), undefined);
  // The onnx-community loader's notes are "<ep>: <error>".
  assert.equal(providerFallback('cpu', ['cuda: onnxruntime could not create a session']), 'CUDA unavailable: using CPU — details in the log');
});

test('loading shows the percent; busy shows how many requests run; errors are one sentence in red', () => {
  assert.equal(statusView({ kind: 'loading', name: 'pg2', fraction: 0.42 }).text, '$(loading~spin) PaliGemma 42%');
  const busy = statusView({ kind: 'ready', model: readyModel(), busy: 3 });
  assert.equal(busy.text, '$(sync~spin) PaliGemma · 3 running');
  assert.match(busy.detail, /3 requests running/);
  const error = statusView({ kind: 'error', message: 'The PaliGemma daemon could not be started (details in the log).' });
  assert.equal(error.background, 'error');
  assert.ok(error.links.includes('showLogs'));
});

test('model warnings (known deviations) stay visible, in the warning colour', () => {
  const v = statusView({ kind: 'ready', model: readyModel({ warnings: ['prompt attention is causal in this export'] }), busy: 0 });
  assert.equal(v.background, 'warning');
  assert.match(v.detail, /prompt attention is causal/);
});

test('a model that failed to load while the old one still serves: both are told, in the warning colour', () => {
  const failedLoad = { path: '/m/broken-model', error: 'the manifest says 224 px, the vision graph takes 448' };
  const v = statusView({ kind: 'ready', model: readyModel({ failedLoad }), busy: 0 });
  assert.equal(v.background, 'warning');
  assert.match(v.text, /^\$\(warning\) PaliGemma · cpu$/);
  assert.match(v.detail, /Model \*\*tiny-paligemma-224\*\*.* on \*\*cpu\*\*/);
  assert.match(v.detail, /\*\*broken-model\*\* failed to load, so \*\*tiny-paligemma-224\*\* still serves: the manifest says 224 px, the vision graph takes 448/);
  assert.ok(v.links.includes('selectModel'));
  assert.doesNotMatch(statusView({ kind: 'ready', model: readyModel(), busy: 0 }).text, /warning/);
});
