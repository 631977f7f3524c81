// Runs the two graphs of a converted model (DESIGN.md "Graph interfaces"): the vision encoder once
// per image, then the decoder for the prompt (prefill) and one token per step with a KV cache.
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { EngineError } from '../errors.js';
import type { StepModel } from '../generate/decode.js';
import { KvCache } from './kvcache.js';
import type { Manifest } from './manifest.js';
import { buildAttentionBias, onlyPrompt, prefillLayout, RowLayout, SlotKind } from './masks.js';
import { createSession, type ExecutionProvider } from './providers.js';

/** The image size, after checking that `pixels` holds `count` float CHW images of that size. */
export function checkPixelCount(manifest: Manifest, pixels: Float32Array, count: number): number {
  const s = manifest.image.size;
  if (pixels.length !== count * 3 * s * s) {
    throw new EngineError('invalid-params', `expected ${count} image(s) of 3x${s}x${s} values, got ${pixels.length} values`);
  }
  return s;
}

export class ModelSessions {
  /** Milliseconds spent inside onnxruntime's run() since creation (bench: session_run_ms). */
  runMs = 0;

  private constructor(
    readonly manifest: Manifest,
    readonly executionProvider: ExecutionProvider,
    readonly vision: ort.InferenceSession,
    readonly decoder: ort.InferenceSession,
    readonly hasSlidingInput: boolean,
  ) {}

  static async create(dir: string, manifest: Manifest, ep: ExecutionProvider, threads?: number): Promise<ModelSessions> {
    const vision = await createSession(join(dir, manifest.files.vision), ep, threads);
    let decoder: ort.InferenceSession;
    // The KV cache (present_* fed back as past_*) stays on the GPU where onnxruntime-node can bind
    // device buffers (WebGPU); elsewhere it makes a round trip through host memory every step.
    const presents = Array.from({ length: manifest.text.numLayers }, (_, i) => [`present_key.${i}`, `present_value.${i}`]).flat();
    try {
      decoder = await createSession(join(dir, manifest.files.decoder), ep, threads, presents);
    } catch (e) {
      await vision.release();
      throw e;
    }
    const sessions = new ModelSessions(manifest, ep, vision, decoder, decoder.inputNames.includes('attention_bias_sliding'));
    try {
      sessions.checkInterface();
    } catch (e) {
      await sessions.release();
      throw e;
    }
    return sessions;
  }

  private checkInterface(): void {
    const need = (session: ort.InferenceSession, kind: 'input' | 'output', names: string[], file: string): void => {
      const have = kind === 'input' ? session.inputNames : session.outputNames;
      const missing = names.filter((n) => !have.includes(n));
      if (missing.length > 0) {
        throw new EngineError('model-invalid', `${file} lacks ${kind}s ${missing.join(', ')} (converted by an incompatible version?)`);
      }
    };
    const { files, text } = this.manifest;
    need(this.vision, 'input', ['pixel_values'], files.vision);
    need(this.vision, 'output', ['image_features'], files.vision);
    const layers = Array.from({ length: text.numLayers }, (_, i) => i);
    need(
      this.decoder,
      'input',
      ['input_ids', 'image_features', 'position_ids', 'attention_bias', ...layers.flatMap((i) => [`past_key.${i}`, `past_value.${i}`])],
      files.decoder,
    );
    need(this.decoder, 'output', ['logits', ...layers.flatMap((i) => [`present_key.${i}`, `present_value.${i}`])], files.decoder);
    if (text.layerTypes.includes('sliding') && !this.hasSlidingInput) {
      throw new EngineError('model-invalid', `${files.decoder} has sliding-window layers but no attention_bias_sliding input`);
    }
  }

  async run(
    session: ort.InferenceSession,
    feeds: Record<string, ort.Tensor>,
  ): Promise<ort.InferenceSession.OnnxValueMapType> {
    const t0 = performance.now();
    try {
      return await session.run(feeds);
    } finally {
      this.runMs += performance.now() - t0;
    }
  }

  /** `pixels`: `count` images, each float32 CHW of image.size^2; returns image_features [count, N, hidden]. */
  async encodeImages(pixels: Float32Array, count: number): Promise<ort.Tensor> {
    const s = checkPixelCount(this.manifest, pixels, count);
    const out = await this.run(this.vision, { pixel_values: new ort.Tensor('float32', pixels, [count, 3, s, s]) });
    return out.image_features as ort.Tensor;
  }

  async release(): Promise<void> {
    await Promise.allSettled([this.vision.release(), this.decoder.release()]);
  }
}

/**
 * One generation over B prompts (or beams): a StepModel for the decoding loop. Rows are laid out
 * [image][pads][text] so prompts of different lengths share the prefill; masks and position ids
 * make every row compute what it would alone.
 */
export class DecoderSequence implements StepModel {
  readonly vocabSize: number;
  private rows: RowLayout[] = [];
  private readonly cache: KvCache;
  private readonly sliding: number | null;

  constructor(
    private readonly sessions: ModelSessions,
    private readonly imageFeatures: ort.Tensor,
    private readonly textIds: readonly (readonly number[])[],
  ) {
    const { text, kvDtype } = sessions.manifest;
    this.vocabSize = text.vocabSize;
    this.sliding = text.layerTypes.includes('sliding') ? text.slidingWindow : null;
    if (imageFeatures.dims[0] !== textIds.length) {
      throw new Error(`${imageFeatures.dims[0]} image feature rows for ${textIds.length} prompts`);
    }
    this.cache = new KvCache(text.numLayers, text.numKvHeads, text.headDim, kvDtype, textIds.length);
  }

  /** Positions filled so far (image + pads + text + generated). */
  get length(): number {
    return this.rows[0]?.length ?? 0;
  }

  async prefill(): Promise<Float32Array> {
    const { tokens } = this.sessions.manifest;
    const n = this.imageFeatures.dims[1];
    const t = Math.max(...this.textIds.map((ids) => ids.length));
    const b = this.textIds.length;
    const ids = new BigInt64Array(b * t);
    this.rows = this.textIds.map((row, r) => {
      const pad = t - row.length;
      for (let j = 0; j < t; j++) ids[r * t + j] = BigInt(j < pad ? tokens.pad : row[j - pad]);
      return prefillLayout(n, pad, row.length);
    });
    return this.runDecoder(ids, t, this.imageFeatures, 0, n + t);
  }

  async next(tokens: readonly number[]): Promise<Float32Array> {
    if (tokens.length !== this.rows.length) throw new Error(`${tokens.length} tokens for ${this.rows.length} rows`);
    const ids = BigInt64Array.from(tokens, (x) => BigInt(x));
    const start = this.length;
    for (const row of this.rows) row.push(SlotKind.Generated, row.nextPosition());
    const hidden = this.sessions.manifest.text.hiddenSize;
    const noImage = new ort.Tensor('float32', new Float32Array(0), [this.rows.length, 0, hidden]);
    return this.runDecoder(ids, 1, noImage, start, 1);
  }

  /** Frees the KV cache (device memory with WebGPU); the sequence cannot continue afterwards. */
  dispose(): void {
    this.cache.dispose();
  }

  reorder(sources: readonly number[]): void {
    this.cache.reorder(sources);
    this.rows = sources.map((s) => {
      const src = this.rows[s];
      const copy = new RowLayout(src.kinds.length);
      copy.kinds.set(src.kinds);
      copy.positions.set(src.positions);
      copy.length = src.length;
      return copy;
    });
  }

  private async runDecoder(
    ids: BigInt64Array,
    t: number,
    image: ort.Tensor,
    qStart: number,
    qLength: number,
  ): Promise<Float32Array> {
    const b = this.rows.length;
    const k = this.length;
    const positions = new BigInt64Array(b * qLength);
    this.rows.forEach((row, r) => {
      for (let j = 0; j < qLength; j++) positions[r * qLength + j] = BigInt(row.positions[qStart + j]);
    });
    const bias = buildAttentionBias(this.rows, qStart, qLength, null);
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', ids, [b, t]),
      image_features: image,
      position_ids: new ort.Tensor('int64', positions, [b, qLength]),
      attention_bias: new ort.Tensor('float32', bias, [b, 1, qLength, k]),
    };
    if (this.sessions.hasSlidingInput) {
      // While no position exceeds the window, or all slots are one bidirectional prompt block (which
      // the window does not cut, see masks.ts), the sliding bias equals the full one: share it.
      const maxPosition = Math.max(...this.rows.map((row) => row.positions[qStart + qLength - 1]));
      const noWindowEffect = this.sliding === null || maxPosition <= this.sliding || this.rows.every((row) => onlyPrompt(row, k));
      const sliding = noWindowEffect ? bias : buildAttentionBias(this.rows, qStart, qLength, this.sliding);
      feeds.attention_bias_sliding = new ort.Tensor('float32', sliding, [b, 1, qLength, k]);
    }
    this.cache.feed(feeds);
    const out = await this.sessions.run(this.sessions.decoder, feeds);
    this.cache.update(out);
    const logits = out.logits as ort.Tensor;
    return logits.data as Float32Array;
  }
}
