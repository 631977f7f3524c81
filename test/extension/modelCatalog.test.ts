// The first-run download choices: every entry is a Hub id with its size, and the suggested weight
// format follows the hardware.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CATALOG, describeEntry, detectHardware, suggestedDtype } from '../../extension/modelCatalog.js';

test('the catalog has PaliGemma 1 and 2, mix checkpoints first in each family, sizes for checkpoints', () => {
  assert.ok(CATALOG.some((e) => e.family === 'PaliGemma 1'));
  assert.ok(CATALOG.some((e) => e.family === 'PaliGemma 2'));
  for (const e of CATALOG) {
    assert.match(e.repo, /^[\w-]+\/[\w.-]+$/);
    assert.ok(e.repo.includes(String(e.imageSize)), `${e.repo} is the ${e.imageSize} px model`);
    if (e.kind !== 'onnx') assert.ok(e.downloadBytes && e.gated, `${e.repo}: a gated checkpoint with a size`);
  }
  assert.equal(new Set(CATALOG.map((e) => e.repo)).size, CATALOG.length, 'no entry twice');
});

test('a row says family, size, image size and whether a token is needed', () => {
  const row = describeEntry(CATALOG.find((e) => e.repo === 'google/paligemma2-3b-mix-224')!);
  assert.equal(row.description, 'PaliGemma 2 3B · 224 px · 6.07 GB download');
  assert.match(row.detail, /needs a Hugging Face token/);
  assert.doesNotMatch(describeEntry(CATALOG.find((e) => e.kind === 'onnx')!).detail, /token and/);
});

test('int4 on an NVIDIA GPU, int4-cpu without one', () => {
  assert.equal(suggestedDtype({ nvidiaGpu: true }), 'int4');
  assert.equal(suggestedDtype({ nvidiaGpu: false }), 'int4-cpu');
  assert.deepEqual(
    detectHardware((p) => p === '/proc/driver/nvidia/version'),
    { nvidiaGpu: true },
  );
  assert.deepEqual(
    detectHardware(() => false),
    { nvidiaGpu: false },
  );
});
