// The WebGPU execution provider runs the converted graphs as the CPU does. Without a GPU this runs
// on Mesa's lavapipe (Vulkan on the CPU, installed by .ci/install-webgpu.sh), which is how these
// checks found onnxruntime's WebGPU MultiHeadAttention off by up to 0.25 (so the converter does not
// use it) and its fp16 MatMul accumulating in fp16 (so int4 conversions get an fp32 vision tower,
// and models with fp16 matmuls carry a warning on WebGPU). Skipped, saying why, where no WebGPU
// adapter exists.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { convert, type ConvertOptions } from '../../../daemon/engine/convert/index.js';
import { isEngineError, loadImage, PaliGemma, type RgbImage } from '../../../daemon/engine/index.js';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../test/fixtures');

interface Variant {
  name: string;
  fixture: string;
  options: Partial<ConvertOptions>;
}

// Every variant with float32 matmuls: the same arithmetic in another order (measured <= 1.4e-5).
// int4 is MatMulNBits with float32 activations and, by default, an fp32 vision tower.
const TOLERANCE = 1e-4;
const VARIANTS: Variant[] = [
  { name: 'PaliGemma 1 fp32 (fused ops)', fixture: 'tiny-paligemma-224', options: { dtype: 'fp32' } },
  { name: 'PaliGemma 2 fp32 (fused ops)', fixture: 'tiny-paligemma2-224', options: { dtype: 'fp32' } },
  { name: 'PaliGemma 1 fp32 (standard ops)', fixture: 'tiny-paligemma-224', options: { dtype: 'fp32', standardOps: true } },
  { name: 'PaliGemma 1 int4', fixture: 'tiny-paligemma-224', options: { dtype: 'int4' } },
  { name: 'PaliGemma 2 int4', fixture: 'tiny-paligemma2-224', options: { dtype: 'int4' } },
];

/** Why WebGPU cannot run here, or null when it can. */
async function webgpuUnavailable(dir: string): Promise<string | null> {
  try {
    const m = await PaliGemma.load(dir, { executionProvider: 'webgpu' });
    await m.dispose();
    return null;
  } catch (e) {
    if (isEngineError(e, 'provider-unavailable')) return e.message.split('\n')[0];
    throw e;
  }
}

describe('WebGPU execution provider against the CPU', () => {
  let tmp: string;
  let skip: string | null = null;
  const dirs = new Map<string, string>();
  const images = new Map<string, RgbImage>();

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'pg-webgpu-'));
    for (const v of VARIANTS) {
      const out = join(tmp, v.name.replace(/\W+/g, '-'));
      await convert({ input: join(FIXTURES, v.fixture), output: out, ...v.options });
      dirs.set(v.name, out);
    }
    skip = await webgpuUnavailable(dirs.get(VARIANTS[0].name)!);
    if (skip) process.stderr.write(`webgpu tests skipped: ${skip}\n`);
    for (const f of ['shapes.png', 'wide.jpg', 'gradient.png']) images.set(f, await loadImage(join(FIXTURES, 'tiny-paligemma-224', f)));
  });
  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('warns about models with fp16 matmuls on WebGPU (its fp16 MatMul accumulates in fp16), not on the CPU', async (t) => {
    if (skip) return t.skip(`no WebGPU adapter: ${skip}`);
    const fp16: Array<[string, Partial<ConvertOptions>]> = [
      ['fp16', { dtype: 'fp16' }],
      ['int4-v16', { dtype: 'int4', visionDtype: 'fp16' }],
      ['int4-a16', { dtype: 'int4', activations: 'fp16' }],
    ];
    for (const [name, options] of fp16) {
      const out = join(tmp, name);
      await convert({ input: join(FIXTURES, 'tiny-paligemma-224'), output: out, ...options, layers: 1, visionLayers: 1 });
      const gpu = await PaliGemma.load(out, { executionProvider: 'webgpu' });
      const cpu = await PaliGemma.load(out, { executionProvider: 'cpu', threads: 1 });
      try {
        assert.equal(gpu.warnings.length, 1, name);
        assert.match(gpu.warnings[0], /accumulates in fp16/);
        assert.deepEqual(cpu.warnings, []);
      } finally {
        await Promise.all([gpu.dispose(), cpu.dispose()]);
      }
    }
  });

  for (const v of VARIANTS) {
    it(`${v.name}: golden prompts' prefill logits and greedy ids, host and in-graph loop`, async (t) => {
      if (skip) return t.skip(`no WebGPU adapter: ${skip}`);
      const dir = dirs.get(v.name)!;
      const cpu = await PaliGemma.load(dir, { executionProvider: 'cpu', threads: 1 });
      const gpu = await PaliGemma.load(dir, { executionProvider: 'webgpu' });
      const loop = await PaliGemma.load(dir, { executionProvider: 'webgpu', decodeLoop: 'graph' });
      try {
        const golden = JSON.parse(readFileSync(join(FIXTURES, v.fixture, 'golden.json'), 'utf8')) as { cases: { image: string; prompt: string }[] };
        let worst = 0;
        for (const c of golden.cases) {
          const image = images.get(c.image)!;
          const a = await cpu.lastLogits(image, c.prompt);
          const b = await gpu.lastLogits(image, c.prompt);
          for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
        }
        t.diagnostic(`max |logit(webgpu) - logit(cpu)| over ${golden.cases.length} prompts: ${worst.toExponential(2)}`);
        assert.ok(worst <= TOLERANCE, `${worst} > ${TOLERANCE}`);
        assert.deepEqual(gpu.warnings, [], 'float32 matmuls: no WebGPU precision warning');
        for (const prompt of ['caption en', 'ocr', 'detect circle']) {
          const request = { image: images.get('shapes.png')!, prompt, maxNewTokens: 10 };
          const want = (await cpu.generate(request)).generatedIds;
          assert.deepEqual((await gpu.generate(request)).generatedIds, want, `${prompt}: host loop`);
          assert.deepEqual((await loop.generate(request)).generatedIds, want, `${prompt}: loop in the graph`);
        }
      } finally {
        await Promise.all([cpu.dispose(), gpu.dispose(), loop.dispose()]);
      }
    });
  }
});
