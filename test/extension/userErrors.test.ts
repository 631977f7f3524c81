// The daemon's errors as the user reads them: one sentence with the file, what to do, the buttons;
// never the daemon's own wording (method names, loader output).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConnectionError, ConnectionErrors, ResponseError } from 'vscode-jsonrpc';
import { DaemonUnavailableError } from '../../daemon/client/daemon.js';
import { ErrorCodes } from '../../daemon/protocol.js';
import { ACTION_LABELS, missingModelFolder, NO_MODEL_MESSAGE, userError } from '../../extension/userErrors.js';

/** What a daemon says: protocol wording and raw loader text that must stay in the log. */
const RAW =
  'no model is configured: start the daemon with --model <dir>, call paligemma/loadModel, or convert one with `paligemma convert`; ' +
  'onnxruntime: Failed to load library libonnxruntime_providers_cuda.so with error: libcublasLt.so.13: cannot open shared object file';

const occurrences = (text: string, part: string) => text.split(part).length - 1;

test('every daemon error code but Cancelled has user text with no protocol or loader wording', () => {
  for (const [name, code] of Object.entries(ErrorCodes)) {
    const e = userError(new ResponseError(code, RAW, { reason: name }), { file: 'cat.png', modelPath: '/models/pg', executionProvider: 'cuda' });
    if (code === ErrorCodes.Cancelled) {
      assert.equal(e, undefined, 'a cancellation says nothing');
      continue;
    }
    assert.ok(e, name);
    assert.doesNotMatch(e.message, /paligemma\/\w+/, `${name}: no method name`);
    assert.doesNotMatch(e.message, /onnxruntime|libonnxruntime|\.so\b|--model/, `${name}: no loader or CLI text`);
    assert.match(e.message, /^(?:[A-Z]|cat\.png ).*\.$/, `${name}: starts with a capital or the file name, ends with a full stop: ${e.message}`);
    for (const a of e.actions) assert.ok(ACTION_LABELS[a], `${name}: action ${a} has a button`);
  }
});

test('no model: the fixed sentence with Download, Choose Folder and Convert', () => {
  const e = userError(new ResponseError(ErrorCodes.ModelMissing, RAW, { reason: 'model-missing' }));
  assert.deepEqual(e, { message: NO_MODEL_MESSAGE, actions: ['download', 'chooseFolder', 'convert'] });
  assert.equal(NO_MODEL_MESSAGE, 'No model is loaded. Download one or choose a folder.');
  assert.deepEqual(
    e.actions.map((a) => ACTION_LABELS[a]),
    ['Download…', 'Choose Folder…', 'Convert Checkpoint…'],
  );
});

test('a configured but incomplete model folder is named once, with the same ways forward', () => {
  const e = userError(new ResponseError(ErrorCodes.ModelMissing, `/models/pg/manifest.json names files.decoder = 'd.onnx', but /models/pg/d.onnx does not exist`), {
    modelPath: '/models/pg',
  });
  assert.ok(e);
  assert.equal(occurrences(e.message, '/models/pg'), 1, e.message);
  assert.deepEqual(e.actions, ['download', 'chooseFolder', 'convert']);
});

test('image errors name the file once and say what to do', () => {
  const cases: [number, RegExp][] = [
    [ErrorCodes.NotFound, /does not exist/],
    [ErrorCodes.NotAFile, /not a file/],
    [ErrorCodes.EmptyFile, /is empty/],
    [ErrorCodes.UnsupportedImage, /Save it as PNG/],
    [ErrorCodes.CorruptImage, /damaged/],
    [ErrorCodes.TooManyPixels, /Scale it down/],
    [ErrorCodes.FileTooLarge, /smaller copy/],
  ];
  for (const [code, what] of cases) {
    // The daemon's message names the path too: the user's text must not repeat it.
    const e = userError(new ResponseError(code, 'image not found: /work/docs/img/cat.png'), { file: 'cat.png' });
    assert.ok(e);
    assert.equal(occurrences(e.message, 'cat.png'), 1, e.message);
    assert.match(e.message, what);
    assert.ok(e.message.startsWith('cat.png '), e.message);
  }
});

test('provider failures name the provider and offer the CPU; loader text stays out', () => {
  const e = userError(new ResponseError(ErrorCodes.ProviderUnavailable, RAW), { executionProvider: 'cuda' });
  assert.deepEqual(e, { message: 'CUDA is not available on this machine (details in the log). Run the model on the CPU instead.', actions: ['useCpu', 'showLogs'] });
  assert.match(userError(new ResponseError(ErrorCodes.ProviderUnavailable, RAW), { executionProvider: 'webgpu' })!.message, /^WebGPU /);
});

test('client-side failures: a daemon that does not start, a connection that drops, anything else', () => {
  assert.deepEqual(userError(new DaemonUnavailableError('the daemon exited during start (code 1)\n  at /x/daemon.log: SyntaxError')), {
    message: 'The PaliGemma daemon could not be started (details in the log).',
    actions: ['showLogs', 'restart'],
  });
  const dropped = userError(new ConnectionError(ConnectionErrors.Closed, 'Connection is closed.'), { file: 'cat.png' });
  assert.match(dropped!.message, /stopped while working on cat\.png\. Try again/);
  const other = userError(new Error('paligemma/caption: TypeError: x is undefined'));
  assert.doesNotMatch(other!.message, /paligemma\/|TypeError/);
  assert.deepEqual(other!.actions, ['showLogs']);
});

test('a configured model folder that does not exist is reported by name and by where it is set', () => {
  const e = missingModelFolder('/home/me/models/pg2', 'User settings');
  assert.equal(e.message, 'The model folder /home/me/models/pg2 (paligemma.modelPath in User settings) does not exist. Choose a folder or download a model.');
  assert.deepEqual(e.actions, ['download', 'chooseFolder', 'convert']);
});
