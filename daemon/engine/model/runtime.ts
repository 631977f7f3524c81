// Runs the two graphs of a converted model (DESIGN.md "Graph interfaces"): the vision encoder once
// per image, then the decoder for the prompt (prefill) and one token per step with a KV cache.
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { EngineError } from '../errors.js';
import type { BeamRequest, StepModel } from '../generate/decode.js';
import { KvCache } from './kvcache.js';
import type { Manifest } from './manifest.js';
import { buildAttentionBias, onlyPrompt, prefillLayout, RowLayout, SlotKind } from './masks.js';
import { createSession, createSessionBeside, keepsOutputsOnDevice, openAll, type ExecutionProvider } from './providers.js';
import type { GraphSession } from './session-thread.js';
import { SearchSessions } from './search.js';
import type { Sessions } from './sessions.js';

// onnxruntime's own logger writes to stderr (colour codes, C++ file names and signatures) before
// the sessions' severity applies, e.g. when a provider library is missing; its failures reach us as
// exceptions anyway, which the engine words for people and the daemon logs. Set before the first
// session is created, when onnxruntime-node initialises its environment.
ort.env.logLevel = 'fatal';

function metadataOf(session: GraphSession, kind: 'input' | 'output', name: string): ort.InferenceSession.ValueMetadata | undefined {
  const names = kind === 'input' ? session.inputNames : session.outputNames;
  const all = kind === 'input' ? session.inputMetadata : session.outputMetadata;
  return all?.[names.indexOf(name)];
}

/** Throws naming the graph, the value and both sides when a graph value's type or shape is not what the manifest says. */
function checkValue(session: GraphSession, kind: 'input' | 'output', name: string, types: ort.Tensor.Type[], shape: Array<number | null>, file: string, model: string): void {
  const m = metadataOf(session, kind, name);
  // Metadata the runtime cannot give (or an untyped value) is not held against the model.
  if (!m || !m.isTensor) return;
  // logits: the last position only [batch, vocab], or every position [batch, seq, vocab].
  if (name === 'logits' && m.shape.length === 2) shape = [null, shape[shape.length - 1]];
  const wanted = `${types.join(' or ')} [${shape.map((d) => d ?? '*').join(', ')}]`;
  const found = `${m.type} [${m.shape.join(', ')}]`;
  const fail = (): never => {
    throw new EngineError(
      'model-invalid',
      `${file}: ${kind} ${name} is ${found}, but manifest.json describes ${wanted}; the manifest does not match its graphs (convert ${model} again)`,
    );
  };
  if (!types.includes(m.type)) fail();
  // An unknown shape (empty) says nothing; a known one must have the rank and the fixed sizes.
  if (m.shape.length === 0) return;
  if (m.shape.length !== shape.length) fail();
  shape.forEach((want, i) => {
    const have = m.shape[i];
    if (want !== null && typeof have === 'number' && have >= 0 && have !== want) fail();
  });
}

/** The image size, after checking that `pixels` holds `count` float CHW images of that size. */
export function checkPixelCount(manifest: Manifest, pixels: Float32Array, count: number): number {
  const s = manifest.image.size;
  if (pixels.length !== count * 3 * s * s) {
    throw new EngineError('invalid-params', `expected ${count} image(s) of 3x${s}x${s} values, got ${pixels.length} values`);
  }
  return s;
}

/**
 * Where greedy decoding loops: 'host' runs one decoder call per token (streams tokens, needed for
 * sampling, beams and grammars anyway); 'graph' runs decoder-loop.onnx, whose ONNX Loop keeps the
 * KV cache on the device (one call per request); 'auto' picks 'graph' for CUDA when the model has
 * it (onnxruntime-node 1.29 cannot keep CUDA tensors on the device between runs otherwise), else
 * 'host' (the CPU gains nothing from it, and WebGPU already keeps its cache on the GPU); 'search'
 * runs greedy and (where they score alike, model/search.ts) beam requests inside onnxruntime's
 * GreedySearch / BeamSearch ops (decoder-search.onnx, decoder-beam-search.onnx), the rest on the host.
 * 'graph-concat': 'graph' over decoder-loop-concat.onnx, whose loop grows the cache by Concat,
 * for A/B benchmarks.
 */
export type DecodeLoop = 'auto' | 'host' | 'graph' | 'graph-concat' | 'search';
export const DECODE_LOOPS: readonly DecodeLoop[] = ['auto', 'host', 'graph', 'graph-concat', 'search'];

/** Position id given to pad slots in slot_positions: far below any window, so always masked. */
const PAD_POSITION = -(2n ** 40n);

/** What the benchmarks read: time inside onnxruntime's run() and the number of runs. */
export class RunStats {
  ms = 0;
  runs = 0;

  async time<T>(run: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    this.runs++;
    try {
      return await run();
    } finally {
      this.ms += performance.now() - t0;
    }
  }
}

export class ModelSessions implements Sessions {
  readonly stats = new RunStats();

  private constructor(
    readonly manifest: Manifest,
    readonly executionProvider: ExecutionProvider,
    readonly vision: GraphSession,
    readonly decoder: ort.InferenceSession,
    readonly hasSlidingInput: boolean,
    /** The decoder's file when it is a decoder-loop graph: greedy requests run their whole loop in one call. */
    readonly loopFile: string | undefined,
    /** decodeLoop 'search': the GreedySearch / BeamSearch graphs beside decoder.onnx. */
    readonly search: SearchSessions | null = null,
  ) {}

  get greedyInGraph(): boolean {
    return this.loopFile !== undefined;
  }

  static async create(dir: string, manifest: Manifest, ep: ExecutionProvider, threads?: number, decodeLoop: DecodeLoop = 'auto'): Promise<ModelSessions> {
    const concat = decodeLoop === 'graph-concat';
    const loopFile = concat ? manifest.files.decoderLoopConcat : manifest.files.decoderLoop;
    if ((decodeLoop === 'graph' || concat) && !loopFile) {
      const file = concat ? 'decoder-loop-concat.onnx' : 'decoder-loop.onnx';
      throw new EngineError('invalid-params', `${dir} has no ${file} (converted by an older version): convert it again, or decode on the host`);
    }
    if (decodeLoop === 'search' && !manifest.files.decoderSearch) {
      throw new EngineError('invalid-params', `${dir} has no decoder-search.onnx (converted by an older version): convert it again, or decode on the host`);
    }
    const inGraph = loopFile !== undefined && (decodeLoop === 'graph' || concat || (decodeLoop === 'auto' && ep === 'cuda'));
    // The KV cache (present_* fed back as past_*) stays on the GPU where onnxruntime-node can bind
    // device buffers (WebGPU); elsewhere it makes a round trip through host memory every step.
    const presents = Array.from({ length: manifest.text.numLayers }, (_, i) => [`present_key.${i}`, `present_value.${i}`]).flat();
    // The vision tower loads on its own thread while the decoder loads on this one.
    const [vision, decoder] = await openAll<[GraphSession, ort.InferenceSession]>([
      createSessionBeside(join(dir, manifest.files.vision), ep, threads),
      createSession(join(dir, inGraph ? loopFile : manifest.files.decoder), ep, threads, presents),
    ]);
    let search: SearchSessions | null = null;
    try {
      if (decodeLoop === 'search') search = await SearchSessions.create(dir, manifest, ep, threads);
    } catch (e) {
      await Promise.allSettled([vision.release(), decoder.release()]);
      throw e;
    }
    const sessions = new ModelSessions(manifest, ep, vision, decoder, decoder.inputNames.includes('attention_bias_sliding'), inGraph ? loopFile : undefined, search);
    try {
      sessions.checkInterface();
    } catch (e) {
      await sessions.release();
      throw e;
    }
    return sessions;
  }

  private checkInterface(): void {
    const need = (session: GraphSession, kind: 'input' | 'output', names: string[], file: string): void => {
      const have = kind === 'input' ? session.inputNames : session.outputNames;
      const missing = names.filter((n) => !have.includes(n));
      if (missing.length > 0) {
        throw new EngineError('model-invalid', `${file} lacks ${kind}s ${missing.join(', ')} (converted by an incompatible version?)`);
      }
    };
    const { files, text, image, kvDtype } = this.manifest;
    need(this.vision, 'input', ['pixel_values'], files.vision);
    need(this.vision, 'output', ['image_features'], files.vision);
    const layers = Array.from({ length: text.numLayers }, (_, i) => i);
    const decoderFile = this.loopFile ?? files.decoder;
    need(this.decoder, 'input', ['input_ids', 'image_features', 'position_ids', 'attention_bias', ...layers.flatMap((i) => [`past_key.${i}`, `past_value.${i}`])], decoderFile);
    need(this.decoder, 'output', ['logits', ...layers.flatMap((i) => [`present_key.${i}`, `present_value.${i}`])], decoderFile);
    if (this.greedyInGraph) need(this.decoder, 'output', ['generated_ids'], decoderFile);
    if (text.layerTypes.includes('sliding') && !this.hasSlidingInput) {
      throw new EngineError('model-invalid', `${decoderFile} has sliding-window layers but no attention_bias_sliding input`);
    }
    // The shapes and types the manifest implies (null: any size), so that a manifest that
    // disagrees with its graphs is refused here, naming the mismatch, not at every request.
    const features = metadataOf(this.vision, 'output', 'image_features');
    const kv = [null, text.numKvHeads, null, text.headDim];
    const checks: Array<[GraphSession, 'input' | 'output', string, ort.Tensor.Type[], Array<number | null>, string]> = [
      [this.vision, 'input', 'pixel_values', ['float32'], [null, 3, image.size, image.size], files.vision],
      [this.vision, 'output', 'image_features', ['float32', 'float16'], [null, image.numImageTokens, text.hiddenSize], files.vision],
      [this.decoder, 'input', 'input_ids', ['int64'], [null, null], decoderFile],
      [this.decoder, 'input', 'image_features', features?.isTensor ? [features.type] : ['float32', 'float16'], [null, null, text.hiddenSize], decoderFile],
      [this.decoder, 'input', 'position_ids', ['int64'], [null, null], decoderFile],
      [this.decoder, 'input', 'attention_bias', ['float32'], [null, 1, null, null], decoderFile],
      [this.decoder, 'output', 'logits', ['float32'], [null, null, text.vocabSize], decoderFile],
      ...layers.flatMap((i) =>
        (['past_key', 'past_value', 'present_key', 'present_value'] as const).map(
          (n): [GraphSession, 'input' | 'output', string, ort.Tensor.Type[], Array<number | null>, string] => [
            this.decoder,
            n.startsWith('past') ? 'input' : 'output',
            `${n}.${i}`,
            [kvDtype],
            kv,
            decoderFile,
          ],
        ),
      ),
    ];
    for (const [session, kind, name, types, shape, file] of checks) checkValue(session, kind, name, types, shape, file, this.manifest.name);
  }

  /** `fetches`: the outputs wanted (default all); others stay where the graph made them. */
  async run(session: GraphSession, feeds: Record<string, ort.Tensor>, fetches?: string[]): Promise<ort.InferenceSession.OnnxValueMapType> {
    return this.stats.time(() => (fetches ? session.run(feeds, fetches) : session.run(feeds)));
  }

  /** `pixels`: `count` images, each float32 CHW of image.size^2; returns image_features [count, N, hidden]. */
  async encodeImages(pixels: Float32Array, count: number): Promise<ort.Tensor> {
    const s = checkPixelCount(this.manifest, pixels, count);
    const out = await this.run(this.vision, { pixel_values: new ort.Tensor('float32', pixels, [count, 3, s, s]) });
    return out.image_features as ort.Tensor;
  }

  async release(): Promise<void> {
    await Promise.allSettled([this.vision.release(), this.decoder.release(), this.search?.release()]);
  }

  sequence(imageFeatures: ort.Tensor, textIds: readonly (readonly number[])[]): DecoderSequence {
    return new DecoderSequence(this, imageFeatures, textIds);
  }

  get decodeLoop(): 'host' | 'graph' | 'search' {
    return this.search ? 'search' : this.greedyInGraph ? 'graph' : 'host';
  }

  /** Beams reorder the cache on the host; a cache kept in GPU memory cannot be (see index.ts). */
  get reordersOnHost(): boolean {
    return !keepsOutputsOnDevice(this.executionProvider);
  }

  get warnings(): string[] {
    return modelWarnings(this.manifest, this.executionProvider);
  }
}

/** What a converted model's status warns of on `ep`: precision or speed it loses there. */
export function modelWarnings(m: Pick<Manifest, 'dtype' | 'converter'>, ep: ExecutionProvider): string[] {
  const warnings: string[] = [];
  if (ep === 'webgpu' && hasFp16Matmuls(m)) warnings.push(WEBGPU_FP16_WARNING);
  if (ep !== 'cpu' && (m.dtype === 'int8' || m.converter?.weights?.vision === 'int8')) warnings.push(INT8_OFF_CPU_WARNING);
  return warnings;
}

// Measured on the WebGPU EP (lavapipe): an fp16 MatMul with K = 4304 is off by up to 1.4 against the
// exact product (0.03 on the CPU EP): its shaders accumulate in fp16. MatMulNBits with fp16
// activations is off by 0.055 at K = 16384 (0.002 on the CPU EP).
const WEBGPU_FP16_WARNING =
  'this model has fp16 matmuls, which the WebGPU execution provider accumulates in fp16: outputs of full-size models degrade. For WebGPU convert with --dtype int4 (fp32 vision tower and activations, the defaults) or fp32';

// The int8 layers (DynamicQuantizeLinear + MatMulInteger) are written for onnxruntime's CPU int8
// GEMMs; GPU providers may lack those kernels and hand the nodes back to the CPU.
const INT8_OFF_CPU_WARNING =
  'this model has int8 layers, a CPU format: on a GPU execution provider onnxruntime may run them on the CPU, slowly. For a GPU convert with --dtype int4 or fp16';

/**
 * fp16 matmuls anywhere: an fp16 decoder, int4 layers computing in fp16, or an fp16 vision tower
 * (older int4 conversions have one and no record of their vision weights).
 */
function hasFp16Matmuls(m: Pick<Manifest, 'dtype' | 'converter'>): boolean {
  const vision = m.converter?.weights?.vision ?? (m.dtype === 'fp32' ? 'fp32' : 'fp16');
  const int4 = m.converter?.int4 as { activations?: string } | undefined;
  return m.dtype === 'fp16' || vision === 'fp16' || int4?.activations === 'fp16';
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
    if (sessions.greedyInGraph) this.greedy = (maxNew, minNew) => this.runGreedyLoop(maxNew, minNew);
    const search = sessions.search;
    if (search) {
      this.greedy = (maxNew, minNew) => sessions.stats.time(() => search.greedy(imageFeatures, textIds, maxNew, minNew));
      this.beam = (o) => (search.scoresLikeHost(o) ? sessions.stats.time(() => search.beam(imageFeatures, textIds, o)) : null);
    }
    // A cache in device memory (WebGPU) cannot be gathered: there finished rows are fed pads.
    if (sessions.reordersOnHost) this.compact = (keep) => this.keepRows(keep);
  }

  /** StepModel.compact, where the cache is on the host. */
  readonly compact?: (keep: readonly number[]) => void;

  /**
   * Drops the rows not in `keep`, and the cache slots that are padding in every row kept (the pads
   * that made room for a longer prompt that is gone), from the cache and the row layouts.
   */
  private keepRows(keep: readonly number[]): void {
    const rows = keep.map((r) => this.rows[r]);
    const slots: number[] = [];
    for (let j = 0; j < this.length; j++) if (rows.some((row) => row.kinds[j] !== SlotKind.Pad)) slots.push(j);
    const all = slots.length === this.length;
    this.cache.select(keep, all ? undefined : slots);
    this.rows = rows.map((src) => {
      const copy = new RowLayout(slots.length + 64);
      for (const j of slots) copy.push(src.kinds[j] as SlotKind, src.positions[j]);
      return copy;
    });
  }

  /** Positions filled so far (image + pads + text + generated). */
  get length(): number {
    return this.rows[0]?.length ?? 0;
  }

  async prefill(): Promise<Float32Array> {
    const ids = this.layOutPrompt();
    return logitsOf(await this.runDecoder(ids, ids.length / this.rows.length, this.imageFeatures, 0, this.length));
  }

  /** StepModel.greedy, present when the decoder is decoder-loop.onnx or with the search ops. */
  readonly greedy?: (maxNewTokens: number, minNewTokens: number) => Promise<number[][]>;

  /** StepModel.beam, present with the search ops. */
  readonly beam?: (o: BeamRequest) => Promise<number[]> | null;

  /**
   * The whole greedy generation in one run of decoder-loop.onnx: the prefill, then up to
   * `maxNewTokens - 1` steps inside the graph. Each row's ids, possibly past its eos.
   */
  private async runGreedyLoop(maxNewTokens: number, minNewTokens: number): Promise<number[][]> {
    const ids = this.layOutPrompt();
    const b = this.rows.length;
    const k = this.length;
    const slots = new BigInt64Array(b * k);
    const next = new BigInt64Array(b);
    this.rows.forEach((row, r) => {
      for (let j = 0; j < k; j++) slots[r * k + j] = row.kinds[j] === SlotKind.Pad ? PAD_POSITION : BigInt(row.positions[j]);
      next[r] = BigInt(row.nextPosition());
    });
    const scalar = (v: number) => new ort.Tensor('int64', BigInt64Array.of(BigInt(v)), []);
    const out = await this.runDecoder(ids, ids.length / b, this.imageFeatures, 0, k, {
      greedy_steps: scalar(maxNewTokens - 1),
      min_new_tokens: scalar(minNewTokens),
      next_position: new ort.Tensor('int64', next, [b, 1]),
      slot_positions: new ort.Tensor('int64', slots, [b, k]),
    });
    const generated = out.generated_ids as ort.Tensor;
    const n = generated.dims[1];
    const data = generated.data as BigInt64Array;
    return Array.from({ length: b }, (_, r) => Array.from(data.subarray(r * n, (r + 1) * n), Number));
  }

  /** input_ids of the prefill ([B, T], left-padded to the longest prompt) and each row's layout. */
  private layOutPrompt(): BigInt64Array {
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
    return ids;
  }

  async next(tokens: readonly number[]): Promise<Float32Array> {
    if (tokens.length !== this.rows.length) throw new Error(`${tokens.length} tokens for ${this.rows.length} rows`);
    const ids = BigInt64Array.from(tokens, (x) => BigInt(x));
    const start = this.length;
    for (const row of this.rows) row.push(SlotKind.Generated, row.nextPosition());
    const hidden = this.sessions.manifest.text.hiddenSize;
    const noImage = new ort.Tensor('float32', new Float32Array(0), [this.rows.length, 0, hidden]);
    return logitsOf(await this.runDecoder(ids, 1, noImage, start, 1));
  }

  /** Frees the KV cache (device memory with WebGPU); the sequence cannot continue afterwards. */
  dispose(): void {
    this.cache.dispose();
  }

  reorder(sources: readonly number[]): void {
    this.cache.reorder(sources);
    this.rows = sources.map((s) => this.rows[s].copy());
  }

  private async runDecoder(
    ids: BigInt64Array,
    t: number,
    image: ort.Tensor,
    qStart: number,
    qLength: number,
    extra: Record<string, ort.Tensor> = {},
  ): Promise<ort.InferenceSession.OnnxValueMapType> {
    const b = this.rows.length;
    const k = this.length;
    const positions = new BigInt64Array(b * qLength);
    this.rows.forEach((row, r) => {
      for (let j = 0; j < qLength; j++) positions[r * qLength + j] = BigInt(row.positions[qStart + j]);
    });
    const bias = buildAttentionBias(this.rows, qStart, qLength, null);
    const feeds: Record<string, ort.Tensor> = {
      ...extra,
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
    if (this.sessions.greedyInGraph && !extra.greedy_steps) Object.assign(feeds, hostLoopFeeds(b, k));
    this.cache.feed(feeds);
    // A whole greedy loop: only its ids leave the graph (not the cache: the sequence ends here).
    if (extra.greedy_steps) return this.sessions.run(this.sessions.decoder, feeds, ['generated_ids']);
    const out = await this.sessions.run(this.sessions.decoder, feeds);
    this.cache.update(out);
    return out;
  }
}

/** decoder-loop.onnx's loop inputs for a plain run (no steps in the graph; the values are unused). */
function hostLoopFeeds(batch: number, slots: number): Record<string, ort.Tensor> {
  const zero = () => new ort.Tensor('int64', new BigInt64Array(1), []);
  return {
    greedy_steps: zero(),
    min_new_tokens: zero(),
    next_position: new ort.Tensor('int64', new BigInt64Array(batch), [batch, 1]),
    slot_positions: new ort.Tensor('int64', new BigInt64Array(batch * slots), [batch, slots]),
  };
}

function logitsOf(out: ort.InferenceSession.OnnxValueMapType): Float32Array {
  return (out.logits as ort.Tensor).data as Float32Array;
}
