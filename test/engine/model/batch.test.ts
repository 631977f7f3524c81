// Batched generation: every row of a batch gives what the same image and prompt give alone (ids
// identical, each step's top-3 logits within the golden tests' 1e-3), for prompts of different
// lengths and rows that finish at different steps, on PaliGemma 1 and 2 and both decode loops;
// and rows that finished really leave the batch (the decoder's batch dimension per run).
// The PaliGemma 2 fixture is converted with a sliding window of 8, so the window cuts into what
// generated tokens see (measured on position ids, which the padding between image and text
// shifts away from slot indices), and with an ordinary token as eos, so that a row ends on eos.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it, mock } from 'node:test';
import { fileURLToPath } from 'node:url';
import type * as ort from 'onnxruntime-node';
import { convert } from '../../../daemon/engine/convert/index.js';
import { setEosToken, windowedPaliGemma2 } from './windowedFixture.js';
import { isEngineError, loadImage, PaliGemma, type BatchItem } from '../../../daemon/engine/index.js';
import { ModelSessions } from '../../../daemon/engine/model/runtime.js';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../test/fixtures');
/** test/fixtures/README.md and the golden tests: logits within 1e-3 absolute. */
const LOGIT_TOL = 1e-3;
const WINDOW = 8;

interface Models {
  name: string;
  host: PaliGemma;
  graph: PaliGemma;
}

const load = (dir: string, decodeLoop: 'host' | 'graph') => PaliGemma.load(dir, { executionProvider: 'cpu', threads: 1, decodeLoop });

describe('batched generation', () => {
  let tmp: string;
  const models: Models[] = [];
  let items: BatchItem[];
  let eos2: number;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'pg-batch-'));
    const image = (name: string) => loadImage(join(FIXTURES, 'tiny-paligemma-224', name));
    const [shapes, wide, gradient] = await Promise.all([image('shapes.png'), image('wide.jpg'), image('gradient.png')]);
    // Prompts of 3 different text lengths, and each row its own limit.
    items = [
      { image: wide, prompt: 'answer en what color is the circle on the left of the picture?', maxNewTokens: 7 },
      { image: shapes, prompt: 'caption en', maxNewTokens: 14 },
      { image: gradient, prompt: 'ocr', maxNewTokens: 2 },
      { image: shapes, prompt: 'detect red square', maxNewTokens: 10 },
    ];

    await convert({ input: join(FIXTURES, 'tiny-paligemma-224'), output: join(tmp, 'pg1'), dtype: 'fp32' });
    models.push({ name: 'PaliGemma 1', host: await load(join(tmp, 'pg1'), 'host'), graph: await load(join(tmp, 'pg1'), 'graph') });

    // PaliGemma 2 with a short window; then a token of the caption row becomes eos, so that row
    // ends on eos at its third token or later while the others run to their own limits.
    const src = windowedPaliGemma2(join(tmp, 'pg2-src'), WINDOW);
    await convert({ input: src, output: join(tmp, 'pg2-probe'), dtype: 'fp32' });
    const probe = await load(join(tmp, 'pg2-probe'), 'host');
    const runs = await Promise.all(items.map((it) => probe.generate({ ...it, maxNewTokens: 14 })));
    await probe.dispose();
    const caption = runs[1].generatedIds;
    const seenElsewhere = new Set(runs.filter((_, i) => i !== 1).flatMap((r) => r.generatedIds));
    const at = caption.findIndex((id, i) => i >= 2 && !caption.slice(0, i).includes(id) && !seenElsewhere.has(id));
    assert.ok(at >= 2, `a caption token first made at step 3 or later, and by no other row, in ${caption}`);
    eos2 = caption[at];
    setEosToken(src, eos2);
    await convert({ input: src, output: join(tmp, 'pg2'), dtype: 'fp32' });
    models.push({ name: 'PaliGemma 2', host: await load(join(tmp, 'pg2'), 'host'), graph: await load(join(tmp, 'pg2'), 'graph') });
    assert.equal(models[1].host.manifest.tokens.eos, eos2);
    assert.equal(models[1].host.manifest.text.slidingWindow, WINDOW);
  });

  after(async () => {
    for (const m of models) await Promise.all([m.host.dispose(), m.graph.dispose()]);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('gives every row its ids and logits alone (host loop), rows of different lengths ending at different steps', async (t) => {
    for (const m of models) {
      const batch = await m.host.generateBatch(items, { recordSteps: true });
      let worst = 0;
      for (const [i, it] of items.entries()) {
        const alone = await m.host.generate({ ...it, recordSteps: true });
        const where = `${m.name}, row ${i} (${it.prompt})`;
        assert.deepEqual(batch[i].inputIds, alone.inputIds, where);
        assert.deepEqual(batch[i].generatedIds, alone.generatedIds, `${where}: ids`);
        assert.equal(batch[i].steps!.length, alone.generatedIds.length);
        alone.steps!.forEach((s, k) => {
          assert.deepEqual(batch[i].steps![k].ids, s.ids, `${where}: step ${k} top-3`);
          s.logits.forEach((v, r) => {
            const d = Math.abs(batch[i].steps![k].logits[r] - v);
            worst = Math.max(worst, d);
            assert.ok(d <= LOGIT_TOL, `${where}: step ${k} rank ${r}: ${batch[i].steps![k].logits[r]} vs ${v} alone`);
          });
        });
      }
      const lengths = batch.map((r) => r.generatedIds.length);
      assert.equal(new Set(lengths).size, items.length, `${m.name}: every row ends at its own step (${lengths})`);
      t.diagnostic(`${m.name}: batch vs alone, largest logit difference ${worst.toExponential(2)}; rows of ${lengths.join(', ')} tokens`);
    }
    // The PaliGemma 2 caption row ended on its eos, before its limit.
    const caption = (await models[1].host.generateBatch(items))[1].generatedIds;
    assert.equal(caption.at(-1), eos2);
    assert.ok(caption.length < items[1].maxNewTokens!);
  });

  it('gives every row its ids alone inside the graph loop (decoder-loop.onnx), in one decoder run', async () => {
    for (const m of models) {
      await m.graph.generateBatch(items); // image features cached: the timed call is decoder runs only
      const runs = m.graph.sessionRuns;
      const batch = await m.graph.generateBatch(items);
      assert.equal(m.graph.sessionRuns - runs, 1, `${m.name}: one decoder run for the whole batch`);
      for (const [i, it] of items.entries()) {
        const host = await m.host.generate(it);
        const graph = await m.graph.generate(it);
        assert.deepEqual(graph.generatedIds, host.generatedIds, `${m.name}, row ${i}: graph alone vs host alone`);
        assert.deepEqual(batch[i].generatedIds, host.generatedIds, `${m.name}, row ${i}: graph batch vs alone`);
      }
    }
  });

  it('on WebGPU, whose cache stays in device memory, feeds finished rows pads instead and gives the CPU rows', async (t) => {
    let gpu: PaliGemma;
    try {
      gpu = await PaliGemma.load(join(tmp, 'pg2'), { executionProvider: 'webgpu', decodeLoop: 'host' });
    } catch (e) {
      if (isEngineError(e, 'provider-unavailable')) return t.skip(e.message.split('\n')[0]);
      throw e;
    }
    const cpu = (await models[1].host.generateBatch(items)).map((r) => r.generatedIds);
    const batches: number[] = [];
    const run = mock.method(ModelSessions.prototype, 'run', async function (this: ModelSessions, session: ort.InferenceSession, feeds: Record<string, ort.Tensor>) {
      if (feeds.input_ids) batches.push(feeds.input_ids.dims[0]);
      return session.run(feeds);
    });
    try {
      const batch = await gpu.generateBatch(items);
      assert.deepEqual(
        batch.map((r) => r.generatedIds),
        cpu,
      );
    } finally {
      run.mock.restore();
      await gpu.dispose();
    }
    // A run per token of the longest row: the prefill, then each step, every one with all rows.
    const longest = Math.max(...cpu.map((ids) => ids.length));
    assert.deepEqual(batches, new Array(longest).fill(items.length), 'every WebGPU run has all rows');
  });

  it('drops finished rows, and the padding only they needed, from the decoder runs that follow', async () => {
    const m = models[0].host;
    const rows = [items[0], { ...items[1], maxNewTokens: 4 }, { ...items[2], prompt: 'caption es', maxNewTokens: 2 }];
    rows[0] = { ...rows[0], maxNewTokens: 1 };
    const text = rows.map((r) => m.promptIds(r.prompt).textIds.length);
    assert.ok(text[0] > text[1] && text[1] === text[2], `the first prompt is the longest (${text})`);
    const seen: Array<{ batch: number; past: number }> = [];
    const run = mock.method(ModelSessions.prototype, 'run', async function (this: ModelSessions, session: ort.InferenceSession, feeds: Record<string, ort.Tensor>) {
      if (feeds.input_ids) seen.push({ batch: feeds.input_ids.dims[0], past: feeds['past_key.0'].dims[2] });
      return session.run(feeds);
    });
    let batch;
    try {
      batch = await m.generateBatch(rows);
    } finally {
      run.mock.restore();
    }
    assert.deepEqual(
      batch.map((r) => r.generatedIds.length),
      [1, 4, 2],
    );
    const n = m.manifest.image.numImageTokens;
    // Prefill of 3 rows; the first row ends at its first token, taking its pads along (the
    // others' prompts fill n + text[1] slots); then the third row ends after 2 tokens.
    assert.deepEqual(seen, [
      { batch: 3, past: 0 },
      { batch: 2, past: n + text[1] },
      { batch: 1, past: n + text[1] + 1 },
      { batch: 1, past: n + text[1] + 2 },
    ]);
    for (const [i, it] of rows.entries()) assert.deepEqual(batch[i].generatedIds, (await m.generate(it)).generatedIds, `row ${i}`);
  });
});
