// decoder-loop.onnx: greedy decoding inside the graph must give exactly the host loop's ids (same
// logits, same argmax, biases from the same slot positions), in one decoder run per request; so
// must decoder-loop-concat.onnx, the variant that grows the cache by Concat.
// The PaliGemma 2 fixture is converted with a sliding window of 8 so the window cuts into what
// generated tokens see, and with an ordinary token as eos so the graph's early stop is exercised.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { convert } from '../../../daemon/engine/convert/index.js';
import { setEosToken, windowedPaliGemma2 } from './windowedFixture.js';
import { onnx } from '../../../daemon/engine/onnx/builder.js';
import { isEngineError, loadImage, PaliGemma, type GenerateOptions, type RgbImage } from '../../../daemon/engine/index.js';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../test/fixtures');
const WINDOW = 8;

interface Pair {
  host: PaliGemma;
  graph: PaliGemma;
  concat: PaliGemma;
}

async function loadPair(dir: string): Promise<Pair> {
  const host = await PaliGemma.load(dir, { executionProvider: 'cpu', threads: 1, decodeLoop: 'host' });
  const graph = await PaliGemma.load(dir, { executionProvider: 'cpu', threads: 1, decodeLoop: 'graph' });
  const concat = await PaliGemma.load(dir, { executionProvider: 'cpu', threads: 1, decodeLoop: 'graph-concat' });
  return { host, graph, concat };
}

const disposePair = (p: Pair | undefined) => Promise.all([p?.host.dispose(), p?.graph.dispose(), p?.concat.dispose()]);

/** Generates on all three; returns the graph's result after checking both graph loops equal the host's. */
async function same(pair: Pair, opts: GenerateOptions, what: string) {
  const a = await pair.host.generate(opts);
  for (const [name, model] of [
    ['graph', pair.graph],
    ['graph-concat', pair.concat],
  ] as const) {
    const runs = model.sessionRuns;
    const b = await model.generate(opts);
    assert.deepEqual(b.generatedIds, a.generatedIds, `${what}: ${name} vs host ids`);
    assert.equal(b.text, a.text);
    // Image features are cached per image, so a request is one decoder run (plus a vision run the
    // first time an image is seen).
    assert.ok(model.sessionRuns - runs <= 2, `${what}: ${model.sessionRuns - runs} runs`);
  }
  return { host: a, graph: await pair.graph.generate(opts) };
}

/** The same ids from every row of a batch on the host loop and on both graph loops. */
async function sameBatch(pair: Pair, items: { image: RgbImage; prompt: string }[], opts: { maxNewTokens: number; minNewTokens?: number }): Promise<number[][]> {
  const a = (await pair.host.generateBatch(items, opts)).map((r) => r.generatedIds);
  for (const model of [pair.graph, pair.concat]) {
    assert.deepEqual(
      (await model.generateBatch(items, opts)).map((r) => r.generatedIds),
      a,
      model.decodeLoop,
    );
  }
  return a;
}

interface Golden {
  cases: { image: string; prompt: string; generated_ids: number[] }[];
}

describe('greedy decoding inside the graph (decoder-loop.onnx)', () => {
  let tmp: string;
  let pg1: Pair;
  let pg2: Pair;
  /** The PaliGemma 2 fixture as it is (window 4096: its golden outputs apply). */
  let pg2wide: Pair;
  /** Window 8, eos unchanged. */
  let pg2probe: Pair;
  let shapes: RgbImage;
  let wide: RgbImage;
  let eos: number;
  let eosAt: number;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'pg-loop-'));
    shapes = await loadImage(join(FIXTURES, 'tiny-paligemma-224/shapes.png'));
    wide = await loadImage(join(FIXTURES, 'tiny-paligemma-224/wide.jpg'));
    await convert({ input: join(FIXTURES, 'tiny-paligemma-224'), output: join(tmp, 'pg1'), dtype: 'fp32' });
    pg1 = await loadPair(join(tmp, 'pg1'));

    // PaliGemma 2 with a short window; then a later greedy caption token of that model becomes eos.
    const src = windowedPaliGemma2(join(tmp, 'pg2-src'), WINDOW);
    await convert({ input: src, output: join(tmp, 'pg2-probe'), dtype: 'fp32' });
    pg2probe = await loadPair(join(tmp, 'pg2-probe'));
    const ids = (await pg2probe.host.generate({ image: shapes, prompt: 'caption en', maxNewTokens: 12 })).generatedIds;
    eosAt = ids.findIndex((id, i) => i >= 2 && !ids.slice(0, i).includes(id));
    assert.ok(eosAt >= 2, `a token first made at step 3 or later in ${ids}`);
    eos = ids[eosAt];
    setEosToken(src, eos);
    await convert({ input: src, output: join(tmp, 'pg2'), dtype: 'fp32' });
    pg2 = await loadPair(join(tmp, 'pg2'));
    await convert({ input: join(FIXTURES, 'tiny-paligemma2-224'), output: join(tmp, 'pg2-wide'), dtype: 'fp32' });
    pg2wide = await loadPair(join(tmp, 'pg2-wide'));
    assert.equal(pg2.graph.manifest.tokens.eos, eos);
    assert.equal(pg2.graph.manifest.text.slidingWindow, WINDOW);
  });

  after(async () => {
    for (const p of [pg1, pg2, pg2wide, pg2probe]) await disposePair(p);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('loads decoder-loop.onnx only when asked (auto keeps the CPU on the host loop)', async () => {
    assert.equal(pg1.graph.decodeLoop, 'graph');
    assert.equal(pg1.host.decodeLoop, 'host');
    const auto = await PaliGemma.load(join(tmp, 'pg1'), { executionProvider: 'cpu', threads: 1 });
    assert.equal(auto.decodeLoop, 'host');
    await auto.dispose();
  });

  for (const [fixture, pair] of [
    ['tiny-paligemma-224', () => pg1],
    ['tiny-paligemma2-224', () => pg2wide],
  ] as const) {
    it(`matches the host loop and the golden ids on ${fixture} for every golden prompt, one decoder run each`, async () => {
      const golden = JSON.parse(readFileSync(join(FIXTURES, fixture, 'golden.json'), 'utf8')) as Golden;
      const images = {} as Record<string, RgbImage>;
      for (const c of golden.cases) {
        images[c.image] ??= await loadImage(join(FIXTURES, fixture, c.image));
        const { graph } = await same(pair(), { image: images[c.image], prompt: c.prompt, maxNewTokens: 24 }, `${fixture} ${c.image} ${c.prompt}`);
        assert.deepEqual(graph.generatedIds, c.generated_ids, `${fixture} ${c.image} ${c.prompt}: golden ids`);
      }
    });
  }

  it('holds no Concat on the cache in the loop body: one ScatterElements per buffer and step', () => {
    const model = onnx.ModelProto.decode(readFileSync(join(tmp, 'pg2', 'decoder-loop.onnx')));
    const outer = model.graph!;
    const loops = outer.node!.filter((n) => n.opType === 'Loop');
    assert.equal(loops.length, 1);
    const body = loops[0].attribute!.find((a) => a.name === 'body')!.g!;
    const layers = pg2.graph.manifest.text.numLayers;
    // Inputs: iter, cond, tokens, pos, finished, then a key and a value buffer per layer.
    const buffers = body.input!.slice(5).map((i) => i.name!);
    assert.equal(buffers.length, 2 * layers);
    const producer = new Map(body.node!.flatMap((n) => n.output!.map((o) => [o, n] as const)));
    // Each carried buffer comes back as the output of one ScatterElements over that same buffer.
    body.output!.slice(4).forEach((o, i) => {
      const node = producer.get(o.name!)!;
      assert.equal(node.opType, 'ScatterElements', o.name!);
      assert.equal(node.input![0], buffers[i]);
    });
    // The prefill's part is read from the outer graph (present_* or their float32 casts), and no
    // Concat anywhere in the body takes a cache tensor or anything computed from one but scores.
    const cacheValues = new Set([...buffers, ...body.output!.slice(4).map((o) => o.name!)]);
    for (const n of outer.node!) if (n.output!.some((o) => o.startsWith('present_'))) n.output!.forEach((o) => cacheValues.add(o));
    for (const n of body.node!) {
      if (n.opType === 'Concat') {
        for (const input of n.input!) assert.ok(!cacheValues.has(input), `Concat ${n.name} reads the cache tensor ${input}`);
      }
    }
    const joinedScores = body.node!.filter((n) => n.opType === 'Concat' && n.input!.length === 2 && n.input!.every((x) => producer.get(x)?.opType === 'MatMul'));
    assert.equal(joinedScores.length, layers, "one Concat of the two parts' attention scores per layer");
    // The Concat loop, for contrast, grows the cache by Concat.
    const old = onnx.ModelProto.decode(readFileSync(join(tmp, 'pg2', 'decoder-loop-concat.onnx')));
    const oldBody = old.graph!.node!.find((n) => n.opType === 'Loop')!.attribute!.find((a) => a.name === 'body')!.g!;
    const oldBuffers = new Set(oldBody.input!.slice(6).map((i) => i.name!));
    assert.equal(oldBody.node!.filter((n) => n.opType === 'Concat' && n.input!.some((x) => oldBuffers.has(x))).length, 2 * layers);
  });

  it('stops every row at eos, inside the graph', async () => {
    const { graph } = await same(pg2, { image: shapes, prompt: 'caption en', maxNewTokens: 20 }, 'eos');
    assert.equal(graph.generatedIds.length, eosAt + 1);
    assert.equal(graph.generatedIds[eosAt], eos);
  });

  it('honours min_new_tokens (eos masked) with a sliding window that cuts in', async () => {
    const { graph } = await same(pg2, { image: shapes, prompt: 'caption en', maxNewTokens: 20, minNewTokens: 20 }, 'min tokens');
    assert.equal(graph.generatedIds.length, 20);
    assert.ok(!graph.generatedIds.includes(eos));
    // The window matters here: with the same eos banned, window 8 and the fixture's 4096 differ.
    const opts = { image: shapes, prompt: 'caption en', maxNewTokens: 20, minNewTokens: 20 };
    const narrow = (await same(pg2probe, opts, 'min tokens, window 8')).graph;
    const other = (await same(pg2wide, opts, 'min tokens, window 4096')).graph;
    assert.notDeepEqual(other.generatedIds, narrow.generatedIds);
  });

  it('gives a padded batch the host loop ids, row by row', async () => {
    const items = [
      { image: shapes, prompt: 'caption en' },
      { image: wide, prompt: 'answer en what color is the circle on the left of the picture?' },
      { image: shapes, prompt: 'ocr' },
    ];
    for (const pair of [pg1, pg2]) await sameBatch(pair, items, { maxNewTokens: 12, minNewTokens: 3 });
  });

  it('keeps decoding the other rows of a batch after one row reached eos', async () => {
    const items = [
      { image: wide, prompt: 'answer en what color is the circle on the left of the picture?' },
      { image: shapes, prompt: 'caption en' },
      { image: wide, prompt: 'ocr' },
    ];
    const ids = await sameBatch(pg2, items, { maxNewTokens: 20 });
    assert.deepEqual(ids[1].slice(0, eosAt + 1), (await pg2.host.generate({ ...items[1], maxNewTokens: 20 })).generatedIds);
    assert.equal(ids[1].length, eosAt + 1, 'the caption row stops at its eos');
    assert.ok(
      ids.some((row) => row.length > eosAt + 1),
      `another row goes on: ${ids.map((r) => r.length)}`,
    );
  });

  it('runs int4 with fp16 activations (fp16 KV cache as a loop-carried value) as the host loop does', async () => {
    const dir = join(tmp, 'pg2-int4h');
    await convert({ input: join(FIXTURES, 'tiny-paligemma2-224'), output: dir, dtype: 'int4', activations: 'fp16' });
    const pair = await loadPair(dir);
    try {
      assert.equal(pair.graph.manifest.kvDtype, 'float16');
      await same(pair, { image: shapes, prompt: 'caption en', maxNewTokens: 12 }, 'int4 fp16 activations');
      const items = [
        { image: shapes, prompt: 'caption en' },
        { image: wide, prompt: 'ocr' },
      ];
      await sameBatch(pair, items, { maxNewTokens: 8 });
    } finally {
      await disposePair(pair);
    }
  });

  it('handles one new token (no loop iterations) and streams the ids it made', async () => {
    const { graph } = await same(pg1, { image: wide, prompt: 'caption en', maxNewTokens: 1 }, 'one token');
    assert.equal(graph.generatedIds.length, 1);
    const seen: [number, string][] = [];
    const streamed = await pg1.graph.generate({ image: shapes, prompt: 'caption en', maxNewTokens: 6, onToken: (id, text) => seen.push([id, text]) });
    assert.deepEqual(
      seen.map(([id]) => id),
      streamed.generatedIds,
    );
    assert.equal(seen.at(-1)![1], streamed.text);
  });

  it('runs sampling, grammars and recorded steps on the host loop over the same graph', async () => {
    const sample = { image: shapes, prompt: 'caption en', maxNewTokens: 8, strategy: 'sample' as const, seed: 7, temperature: 1.5 };
    const before = pg1.graph.sessionRuns;
    const b = await pg1.graph.generate(sample);
    assert.ok(pg1.graph.sessionRuns - before >= 8, 'one decoder run per token');
    assert.deepEqual(b.generatedIds, (await pg1.host.generate(sample)).generatedIds);
    const steps = { image: shapes, prompt: 'caption en', maxNewTokens: 4, recordSteps: true };
    const [hs, gs] = [await pg1.host.generate(steps), await pg1.graph.generate(steps)];
    assert.deepEqual(gs.steps, hs.steps);
  });

  it('refuses the graph loop, clearly, for a model converted without it', async () => {
    const old = join(tmp, 'old');
    cpSync(join(tmp, 'pg1'), old, { recursive: true });
    rmSync(join(old, 'decoder-loop.onnx'));
    rmSync(join(old, 'decoder-loop-concat.onnx'));
    const manifest = JSON.parse(readFileSync(join(old, 'manifest.json'), 'utf8'));
    delete manifest.files.decoderLoop;
    delete manifest.files.decoderLoopConcat;
    writeFileSync(join(old, 'manifest.json'), JSON.stringify(manifest));
    await assert.rejects(
      PaliGemma.load(old, { executionProvider: 'cpu', decodeLoop: 'graph' }),
      (e: unknown) => isEngineError(e, 'invalid-params') && /decoder-loop\.onnx/.test((e as Error).message),
    );
    await assert.rejects(
      PaliGemma.load(old, { executionProvider: 'cpu', decodeLoop: 'graph-concat' }),
      (e: unknown) => isEngineError(e, 'invalid-params') && /decoder-loop-concat\.onnx/.test((e as Error).message),
    );
    const fallback = await PaliGemma.load(old, { executionProvider: 'cpu', threads: 1 });
    assert.equal(fallback.decodeLoop, 'host');
    await fallback.dispose();
  });
});
