// The public API on the tiny PaliGemma 2 fixture (converted once into a temp folder): streaming,
// batching, cancellation, limits and errors. Parity with the reference lives in parity.test.ts.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { convert } from '../../../daemon/engine/convert/index.js';
import { isEngineError, loadImage, PaliGemma, type RgbImage } from '../../../daemon/engine/index.js';

const FIXTURE = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../test/fixtures/tiny-paligemma2-224');

describe('PaliGemma engine API', () => {
  let dir: string;
  let model: PaliGemma;
  let shapes: RgbImage;
  let wide: RgbImage;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pg-engine-'));
    await convert({ input: FIXTURE, output: join(dir, 'model'), dtype: 'fp32' });
    model = await PaliGemma.load(join(dir, 'model'), { executionProvider: 'cpu', threads: 1 });
    shapes = await loadImage(join(FIXTURE, 'shapes.png'));
    wide = await loadImage(join(FIXTURE, 'wide.jpg'));
  });
  after(async () => {
    await model?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reports the provider in use and the manifest', () => {
    assert.equal(model.executionProvider, 'cpu');
    assert.equal(model.manifest.architecture, 'paligemma2');
  });

  it('streams tokens whose text adds up to the final text', async () => {
    const seen: [number, string][] = [];
    const out = await model.generate({ image: shapes, prompt: 'caption en', maxNewTokens: 12, onToken: (id, text) => seen.push([id, text]) });
    assert.deepEqual(
      seen.map(([id]) => id),
      out.generatedIds,
    );
    assert.equal(seen[seen.length - 1][1], out.text);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i][1].startsWith(seen[i - 1][1]), 'text so far only grows');
  });

  it('gives each prompt of a batch what it gets alone', async () => {
    const items = [
      { image: shapes, prompt: 'caption en' },
      { image: wide, prompt: 'answer en what color is the circle?' },
      { image: shapes, prompt: 'ocr' },
    ];
    const batch = await model.generateBatch(items, { maxNewTokens: 10 });
    for (const [i, it] of items.entries()) {
      const alone = await model.generate({ ...it, maxNewTokens: 10 });
      assert.deepEqual(batch[i].generatedIds, alone.generatedIds, `item ${i}`);
      assert.deepEqual(batch[i].inputIds, alone.inputIds);
    }
  });

  it('samples reproducibly with a seed', async () => {
    const opts = { image: shapes, prompt: 'caption en', maxNewTokens: 12, strategy: 'sample' as const, seed: 11, temperature: 1.5 };
    const a = await model.generate(opts);
    const b = await model.generate(opts);
    assert.deepEqual(a.generatedIds, b.generatedIds);
  });

  it('runs beam search, and one beam equals greedy', async () => {
    const greedy = await model.generate({ image: wide, prompt: 'ocr', maxNewTokens: 8 });
    const one = await model.generate({ image: wide, prompt: 'ocr', maxNewTokens: 8, strategy: 'beam', numBeams: 1 });
    assert.deepEqual(one.generatedIds, greedy.generatedIds);
    const four = await model.generate({ image: wide, prompt: 'ocr', maxNewTokens: 8, strategy: 'beam', numBeams: 4 });
    assert.ok(four.generatedIds.length >= 1 && four.generatedIds.length <= 8);
  });

  it('cancels between steps', async () => {
    const ac = new AbortController();
    const ids: number[] = [];
    await assert.rejects(
      model.generate({
        image: shapes,
        prompt: 'caption en',
        maxNewTokens: 20,
        minNewTokens: 20,
        signal: ac.signal,
        onToken: (id) => {
          ids.push(id);
          if (ids.length === 3) ac.abort();
        },
      }),
      (e) => isEngineError(e, 'cancelled'),
    );
    assert.equal(ids.length, 3);
    const pre = new AbortController();
    pre.abort();
    await assert.rejects(model.generate({ image: shapes, prompt: 'ocr', signal: pre.signal }), (e) => isEngineError(e, 'cancelled'));
  });

  it('refuses prompts and token budgets beyond the model positions', async () => {
    const long = Array.from({ length: 9000 }, (_, i) => `w${i}`).join(' ');
    await assert.rejects(model.generate({ image: shapes, prompt: long }), (e) => isEngineError(e, 'prompt-too-long'));
    await assert.rejects(
      model.generate({ image: shapes, prompt: 'ocr', maxNewTokens: 8000 }),
      (e) => isEngineError(e, 'prompt-too-long') && /room for \d+ new tokens/.test(e.message),
    );
  });

  it('rejects bad decoding parameters as invalid-params', async () => {
    await assert.rejects(model.generate({ image: shapes, prompt: 'ocr', maxNewTokens: 0 }), (e) => isEngineError(e, 'invalid-params'));
    await assert.rejects(model.generate({ image: shapes, prompt: 'ocr', topP: 2, strategy: 'sample' }), (e) => isEngineError(e, 'invalid-params'));
  });

  it('says when a provider cannot load', async (t) => {
    // The CUDA provider library is only ever staged next to onnxruntime-node on GPU machines.
    const bin = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
    const cuda = join(bin, 'bin/napi-v6', process.platform, process.arch, 'libonnxruntime_providers_cuda.so');
    if (existsSync(cuda)) return t.skip('the CUDA provider is installed here');
    await assert.rejects(PaliGemma.load(join(dir, 'model'), { executionProvider: 'cuda' }), (e) => isEngineError(e, 'provider-unavailable') && /CUDA/.test(e.message));
  });

  it('refuses to generate after dispose', async () => {
    const m = await PaliGemma.load(join(dir, 'model'), { executionProvider: 'cpu', threads: 1 });
    await m.dispose();
    await assert.rejects(m.generate({ image: shapes, prompt: 'ocr' }), (e) => isEngineError(e));
  });
});
