import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { convert } from '../../../daemon/engine/convert/index.js';
import { isEngineError } from '../../../daemon/engine/errors.js';
import { loadManifest, readManifestSync, validateManifest } from '../../../daemon/engine/model/manifest.js';

const GEMMA2_FIXTURE = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../test/fixtures/tiny-paligemma2-224');

const valid = () => ({
  format: 'paligemma-onnx',
  formatVersion: 1,
  name: 'x',
  architecture: 'paligemma2',
  dtype: 'fp32',
  kvDtype: 'float32',
  image: { size: 224, patchSize: 14, numImageTokens: 256, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], rescale: 1 / 255 },
  text: {
    hiddenSize: 64,
    numLayers: 3,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    vocabSize: 2112,
    layerTypes: ['sliding', 'full', 'sliding'],
    slidingWindow: 4096,
    maxPositions: 8192,
  },
  tokens: { bos: 2, eos: 1, pad: 0, image: 2052, newline: 260, loc0: 900, seg0: 1924 },
  files: { vision: 'vision.onnx', decoder: 'decoder.onnx', tokenizer: 'tokenizer.json' },
});

const invalid = (mutate: (m: any) => void, mentions: RegExp) => {
  const m = valid();
  mutate(m);
  assert.throws(
    () => validateManifest(m, 'manifest.json'),
    (e) => isEngineError(e, 'model-invalid') && mentions.test(e.message),
  );
};

describe('manifest validation', () => {
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'pg-manifest-'));
    dirs.push(d);
    return d;
  };

  it('accepts a valid manifest', () => {
    const m = validateManifest(valid());
    assert.equal(m.text.layerTypes[0], 'sliding');
    assert.equal(m.tokens.image, 2052);
  });

  it('names the field that is wrong', () => {
    invalid((m) => (m.format = 'other'), /'format'/);
    invalid((m) => (m.formatVersion = 2), /formatVersion 2 is not supported/);
    invalid((m) => (m.architecture = 'llama'), /'architecture' must be one of/);
    invalid((m) => (m.text.layerTypes = ['full']), /'text.layerTypes' must be an array of 3/);
    invalid((m) => (m.text.layerTypes[1] = 'global'), /text.layerTypes\[1\]/);
    invalid((m) => (m.text.slidingWindow = null), /'text.slidingWindow' must be set/);
    invalid((m) => (m.text.numKvHeads = 3), /'text.numKvHeads' must be a divisor/);
    invalid((m) => (m.image.numImageTokens = 100), /'image.numImageTokens'/);
    invalid((m) => (m.tokens.eos = 5000), /'tokens.eos' must be below text.vocabSize/);
    invalid((m) => delete m.files.decoder, /'files.decoder'/);
    invalid((m) => (m.image.mean = [0.5]), /'image.mean' must be an array of 3 numbers/);
    invalid((m) => (m.text.finalLogitSoftcap = -1), /'text.finalLogitSoftcap' must be a positive number or null/);
    invalid((m) => (m.checksums = { 'vision.onnx': { bytes: 1, mtimeMs: 0, sha256: 'abc' } }), /checksums\["vision.onnx"\].sha256/);
    invalid((m) => (m.converter = { weights: { vision: 'int2', decoder: 'fp32' } }), /'converter.weights.vision' must be one of/);
  });

  it('reads a manifest without finalLogitSoftcap (older conversions) as null', () => {
    assert.equal(validateManifest(valid()).text.finalLogitSoftcap, null);
  });

  it('round-trips: what the converter writes is what the reader returns, field for field', async () => {
    const out = join(tmp(), 'model');
    const written = await convert({ input: GEMMA2_FIXTURE, output: out, dtype: 'int4' });
    assert.equal(written.text.finalLogitSoftcap, 30, 'the Gemma 2 fixture has a final logit softcap');
    assert.deepEqual(await loadManifest(out), written);
    assert.deepEqual(readManifestSync(out), written);
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')), written);
    // The checksums describe the files as they lie in the finished folder.
    const names = Object.keys(written.checksums ?? {});
    assert.ok(names.includes('vision.onnx.data') && names.includes('decoder.onnx') && names.includes('tokenizer.json'), names.join(', '));
    assert.ok(!names.includes('manifest.json'));
    for (const name of names) {
      const st = statSync(join(out, name));
      assert.equal(st.size, written.checksums![name].bytes, name);
      assert.equal(st.mtimeMs, written.checksums![name].mtimeMs, name);
    }
  });

  it('reports a folder without a manifest as model-missing', async () => {
    await assert.rejects(loadManifest(tmp()), (e) => isEngineError(e, 'model-missing') && /manifest.json not found/.test(e.message));
  });

  it('reports broken JSON and missing files', async () => {
    const d = tmp();
    writeFileSync(join(d, 'manifest.json'), '{"format": ');
    await assert.rejects(loadManifest(d), (e) => isEngineError(e, 'model-invalid') && /not valid JSON/.test(e.message));
    writeFileSync(join(d, 'manifest.json'), JSON.stringify(valid()));
    writeFileSync(join(d, 'vision.onnx'), '');
    await assert.rejects(loadManifest(d), (e) => isEngineError(e, 'model-missing') && /files.decoder = 'decoder.onnx'/.test(e.message));
  });
});
