// decoder-loop.onnx: greedy decoding inside the graph must give exactly the host loop's ids (same
// logits, same argmax, biases from the same slot positions), in one decoder run per request.
// The PaliGemma 2 fixture is converted with a sliding window of 8 so the window cuts into what
// generated tokens see, and with an ordinary token as eos so the graph's early stop is exercised.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { convert } from '../../../daemon/engine/convert/index.js';
import { isEngineError, loadImage, PaliGemma, type GenerateOptions, type RgbImage } from '../../../daemon/engine/index.js';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../test/fixtures');
const WINDOW = 8;

interface Pair {
  host: PaliGemma;
  graph: PaliGemma;
}

async function loadPair(dir: string): Promise<Pair> {
  const host = await PaliGemma.load(dir, { executionProvider: 'cpu', threads: 1, decodeLoop: 'host' });
  const graph = await PaliGemma.load(dir, { executionProvider: 'cpu', threads: 1, decodeLoop: 'graph' });
  return { host, graph };
}

/** Generates on both; returns the graph's result after checking it equals the host's. */
async function same(pair: Pair, opts: GenerateOptions, what: string) {
  const a = await pair.host.generate(opts);
  const runs = pair.graph.sessionRuns;
  const b = await pair.graph.generate(opts);
  assert.deepEqual(b.generatedIds, a.generatedIds, `${what}: graph vs host ids`);
  assert.equal(b.text, a.text);
  // Image features are cached per image, so a request is one decoder run (plus a vision run the
  // first time an image is seen).
  assert.ok(pair.graph.sessionRuns - runs <= 2, `${what}: ${pair.graph.sessionRuns - runs} runs`);
  return { host: a, graph: b };
}

describe('greedy decoding inside the graph (decoder-loop.onnx)', () => {
  let tmp: string;
  let pg1: Pair;
  let pg2: Pair;
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
    const src = join(tmp, 'pg2-src');
    cpSync(join(FIXTURES, 'tiny-paligemma2-224'), src, { recursive: true });
    const configPath = join(src, 'config.json');
    const config = JSON.parse(readFileSync(configPath, 'utf8'));
    config.text_config.sliding_window = WINDOW;
    writeFileSync(configPath, JSON.stringify(config));
    await convert({ input: src, output: join(tmp, 'pg2-probe'), dtype: 'fp32' });
    const probe = await PaliGemma.load(join(tmp, 'pg2-probe'), { executionProvider: 'cpu', threads: 1, decodeLoop: 'host' });
    const ids = (await probe.generate({ image: shapes, prompt: 'caption en', maxNewTokens: 12 })).generatedIds;
    await probe.dispose();
    eosAt = ids.findIndex((id, i) => i >= 2 && !ids.slice(0, i).includes(id));
    assert.ok(eosAt >= 2, `a token first made at step 3 or later in ${ids}`);
    eos = ids[eosAt];
    const tokenizer = JSON.parse(readFileSync(join(src, 'tokenizer.json'), 'utf8'));
    const eosText =
      Object.entries(tokenizer.model.vocab as Record<string, number>).find(([, id]) => id === eos)?.[0] ?? tokenizer.added_tokens.find((t: { id: number }) => t.id === eos).content;
    const tcPath = join(src, 'tokenizer_config.json');
    writeFileSync(tcPath, JSON.stringify({ ...JSON.parse(readFileSync(tcPath, 'utf8')), eos_token: eosText }));
    await convert({ input: src, output: join(tmp, 'pg2'), dtype: 'fp32' });
    pg2 = await loadPair(join(tmp, 'pg2'));
    assert.equal(pg2.graph.manifest.tokens.eos, eos);
    assert.equal(pg2.graph.manifest.text.slidingWindow, WINDOW);
  });

  after(async () => {
    for (const p of [pg1, pg2]) await Promise.all([p?.host.dispose(), p?.graph.dispose()]);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('loads decoder-loop.onnx only when asked (auto keeps the CPU on the host loop)', async () => {
    assert.equal(pg1.graph.decodeLoop, 'graph');
    assert.equal(pg1.host.decodeLoop, 'host');
    const auto = await PaliGemma.load(join(tmp, 'pg1'), { executionProvider: 'cpu', threads: 1 });
    assert.equal(auto.decodeLoop, 'host');
    await auto.dispose();
  });

  it('matches the host loop on PaliGemma 1 for every golden prompt, one decoder run each', async () => {
    const golden = JSON.parse(readFileSync(join(FIXTURES, 'tiny-paligemma-224/golden.json'), 'utf8')) as { cases: { image: string; prompt: string }[] };
    const images = { 'shapes.png': shapes, 'wide.jpg': wide } as Record<string, RgbImage>;
    for (const c of golden.cases) {
      if (!images[c.image]) images[c.image] = await loadImage(join(FIXTURES, 'tiny-paligemma-224', c.image));
      const { graph } = await same(pg1, { image: images[c.image], prompt: c.prompt, maxNewTokens: 24 }, c.prompt);
      assert.equal(graph.generatedIds.length, 24, 'no eos within 24 tokens on these weights');
    }
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
    // The window matters here: the unmodified fixture (window 4096) says something else.
    const wideWindow = await PaliGemma.load(join(tmp, 'pg2-probe'), { executionProvider: 'cpu', threads: 1, decodeLoop: 'graph' });
    const other = await wideWindow.generate({ image: shapes, prompt: 'caption en', maxNewTokens: 20, minNewTokens: 20 });
    await wideWindow.dispose();
    assert.notDeepEqual(other.generatedIds, graph.generatedIds);
  });

  it('gives a padded batch the host loop ids, row by row', async () => {
    const items = [
      { image: shapes, prompt: 'caption en' },
      { image: wide, prompt: 'answer en what color is the circle on the left of the picture?' },
      { image: shapes, prompt: 'ocr' },
    ];
    for (const pair of [pg1, pg2]) {
      const a = await pair.host.generateBatch(items, { maxNewTokens: 12, minNewTokens: 3 });
      const b = await pair.graph.generateBatch(items, { maxNewTokens: 12, minNewTokens: 3 });
      assert.deepEqual(
        b.map((r) => r.generatedIds),
        a.map((r) => r.generatedIds),
      );
    }
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
      const a = await pair.host.generateBatch(items, { maxNewTokens: 8 });
      const b = await pair.graph.generateBatch(items, { maxNewTokens: 8 });
      assert.deepEqual(
        b.map((r) => r.generatedIds),
        a.map((r) => r.generatedIds),
      );
    } finally {
      await Promise.all([pair.host.dispose(), pair.graph.dispose()]);
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
    const manifest = JSON.parse(readFileSync(join(old, 'manifest.json'), 'utf8'));
    delete manifest.files.decoderLoop;
    writeFileSync(join(old, 'manifest.json'), JSON.stringify(manifest));
    await assert.rejects(
      PaliGemma.load(old, { executionProvider: 'cpu', decodeLoop: 'graph' }),
      (e: unknown) => isEngineError(e, 'invalid-params') && /decoder-loop\.onnx/.test((e as Error).message),
    );
    const fallback = await PaliGemma.load(old, { executionProvider: 'cpu', threads: 1 });
    assert.equal(fallback.decodeLoop, 'host');
    await fallback.dispose();
  });
});
