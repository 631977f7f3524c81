// `paligemma convert` end to end on a fixture, and its argument errors.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { command } from '../../../daemon/cli/convert.js';
import { fixture, removeDir, tempDir } from './helpers.js';

describe('paligemma convert', () => {
  let root: string;
  before(() => {
    root = tempDir('cli');
  });
  after(() => removeDir(root));

  it('converts a checkpoint and writes the model folder', async () => {
    const out = join(root, 'm');
    const code = await command.run([fixture('tiny-paligemma2-224'), out, '--dtype', 'fp32', '--layers', '2']);
    assert.equal(code, 0);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    assert.equal(manifest.architecture, 'paligemma2');
    assert.equal(manifest.text.numLayers, 2);
    assert.deepEqual(manifest.text.layerTypes, ['sliding', 'full']);
    for (const f of ['vision.onnx', 'vision.onnx.data', 'decoder.onnx', 'decoder.onnx.data', 'tokenizer.json']) assert.ok(existsSync(join(out, f)), f);
  });

  it('rejects bad arguments with exit code 2 and failures with 1', async () => {
    assert.equal(await command.run([]), 2);
    assert.equal(await command.run([fixture('tiny-paligemma-224'), join(root, 'x'), '--dtype', 'int2']), 2);
    assert.equal(await command.run(['--bogus']), 2);
    assert.equal(await command.run([join(root, 'missing'), join(root, 'y')]), 1);
    assert.equal(existsSync(join(root, 'y')), false);
  });
});
