// Shared by the converter tests: fixture paths, converting into temp folders, running the
// converted graphs on the CPU EP for a golden prefill.
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import sharp from 'sharp';

const here = dirname(fileURLToPath(import.meta.url));
// out/test/engine/convert -> repository root
export const repoRoot = resolve(here, '../../../..');
export const fixture = (name: string) => join(repoRoot, 'test/fixtures', name);

export interface GoldenCase {
  image: string;
  prompt: string;
  input_ids: number[];
  last_logits_top5: number[];
  last_logits_top5_values: number[];
  last_logits_margin: number;
  forced16_ids: number[];
  forced16_steps: { top_ids: number[]; top_logits: number[] }[];
}
export interface Golden {
  image_token_id: number;
  cases: GoldenCase[];
}
export const golden = (model: string): Golden => JSON.parse(readFileSync(join(fixture(model), 'golden.json'), 'utf8'));

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `pg-${prefix}-`));
}
export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** (x/255 - 0.5) / 0.5, CHW, for the exactly-224 fixture images (no resize needed). */
export async function pixelValues(path: string): Promise<Float32Array> {
  const { data, info } = await sharp(path).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const { width, height, channels } = info;
  const out = new Float32Array(3 * width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        const v = Math.fround(data[(y * width + x) * channels + c] / 255);
        out[c * width * height + y * width + x] = (v - 0.5) / 0.5;
      }
    }
  }
  return out;
}

interface ModelManifest {
  image: { size: number; numImageTokens: number };
  text: { numLayers: number; numKvHeads: number; headDim: number; hiddenSize: number; layerTypes: string[] };
  kvDtype: 'float32' | 'float16';
}

export class ConvertedModel {
  private constructor(
    readonly dir: string,
    readonly manifest: ModelManifest,
    readonly vision: ort.InferenceSession,
    readonly decoder: ort.InferenceSession,
  ) {}

  static async load(dir: string): Promise<ConvertedModel> {
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as ModelManifest;
    const opts: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], intraOpNumThreads: 2 };
    const vision = await ort.InferenceSession.create(join(dir, 'vision.onnx'), opts);
    const decoder = await ort.InferenceSession.create(join(dir, 'decoder.onnx'), opts);
    return new ConvertedModel(dir, manifest, vision, decoder);
  }

  async imageFeatures(pixels: Float32Array): Promise<ort.Tensor> {
    const s = this.manifest.image.size;
    const out = await this.vision.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, s, s]) });
    return out.image_features;
  }

  /** Prefill of the whole prompt (bidirectional): last-position logits and the KV cache. */
  async prefill(features: ort.Tensor, textIds: number[]): Promise<{ logits: Float32Array; cache: ort.Tensor[] }> {
    return this.step(features, textIds, null);
  }

  /**
   * One decoder run. With `cache` null this is the prefill (all zeros bias: the prompt attends
   * bidirectionally); otherwise new tokens attend to the whole cache and causally among themselves
   * (a single token: zeros). Positions continue from the cache length, 1-indexed.
   */
  async step(features: ort.Tensor, textIds: number[], cache: ort.Tensor[] | null): Promise<{ logits: Float32Array; cache: ort.Tensor[] }> {
    const n = features.dims[1];
    const S = n + textIds.length;
    const { numLayers, numKvHeads, headDim, layerTypes } = this.manifest.text;
    const P = cache ? cache[0].dims[2] : 0;
    const L = P + S;
    const bias = new Float32Array(S * L);
    if (cache) for (let i = 0; i < S; i++) for (let j = P + i + 1; j < L; j++) bias[i * L + j] = -3.4028234663852886e38;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(textIds.map(BigInt)), [1, textIds.length]),
      image_features: features,
      position_ids: new ort.Tensor(
        'int64',
        BigInt64Array.from({ length: S }, (_, i) => BigInt(P + i + 1)),
        [1, S],
      ),
      attention_bias: new ort.Tensor('float32', bias, [1, 1, S, L]),
    };
    if (layerTypes.includes('sliding')) feeds.attention_bias_sliding = new ort.Tensor('float32', bias, [1, 1, S, L]);
    const kv = this.manifest.kvDtype;
    for (let i = 0; i < numLayers; i++) {
      const empty = () => new ort.Tensor(kv, kv === 'float16' ? new Uint16Array(0) : new Float32Array(0), [1, numKvHeads, 0, headDim]);
      feeds[`past_key.${i}`] = cache ? cache[2 * i] : empty();
      feeds[`past_value.${i}`] = cache ? cache[2 * i + 1] : empty();
    }
    const out = await this.decoder.run(feeds);
    const next: ort.Tensor[] = [];
    for (let i = 0; i < numLayers; i++) next.push(out[`present_key.${i}`], out[`present_value.${i}`]);
    return { logits: out.logits.data as Float32Array, cache: next };
  }

  noImage(): ort.Tensor {
    return new ort.Tensor('float32', new Float32Array(0), [1, 0, this.manifest.text.hiddenSize]);
  }

  async dispose(): Promise<void> {
    await this.vision.release();
    await this.decoder.release();
  }
}

export function top(logits: Float32Array, k: number): { ids: number[]; values: number[] } {
  const idx = Array.from(logits.keys())
    .sort((a, b) => logits[b] - logits[a])
    .slice(0, k);
  return { ids: idx, values: idx.map((i) => logits[i]) };
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** A writable copy of a fixture checkpoint (fixture files are read-only). */
export function copyFixture(model: string, into: string, skip: string[] = []): string {
  const dst = join(into, model);
  mkdirSync(dst, { recursive: true });
  for (const f of readdirSync(fixture(model))) {
    if (skip.includes(f)) continue;
    copyFileSync(join(fixture(model), f), join(dst, f));
    chmodSync(join(dst, f), 0o644);
  }
  return dst;
}

export interface StTensor {
  dtype: 'F32' | 'F16' | 'BF16';
  shape: number[];
  data: Uint8Array;
}

/** A minimal safetensors writer (header JSON padded to 8 bytes, then the data). */
export function writeSafetensors(path: string, tensors: Record<string, StTensor>): void {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length] };
    offset += t.data.length;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8) json += ' ';
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([len, Buffer.from(json), ...Object.values(tensors).map((t) => Buffer.from(t.data))]));
}

/** Reads every tensor of a safetensors file (small test files only). */
export function readSafetensors(path: string): Record<string, StTensor> {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString());
  const out: Record<string, StTensor> = {};
  for (const [name, e] of Object.entries(header as Record<string, { dtype: StTensor['dtype']; shape: number[]; data_offsets: [number, number] }>)) {
    if (name === '__metadata__') continue;
    out[name] = { dtype: e.dtype, shape: e.shape, data: new Uint8Array(buf.subarray(8 + n + e.data_offsets[0], 8 + n + e.data_offsets[1])) };
  }
  return out;
}

/** Entries of `dir` left behind by a conversion into it (temp folders start with '.'). */
export function leftovers(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.includes('converting') || f === 'out');
}
