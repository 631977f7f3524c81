// Runs an onnx-community / transformers.js export the way transformers.js does (its
// decoder_forward + image_text_to_text path): vision_encoder -> image_features; embed_tokens ->
// inputs_embeds, with image features written over the <image> positions; decoder_model_merged
// with a 2-D attention_mask, 1-indexed position_ids from the mask's cumulative sum (its
// PaliGemma special case), past_key_values.{i}.key/.value fed back from present.{i}.*.
// A 2-D mask means the decoder's own causal mask applies to the prompt too: PaliGemma was
// trained with a bidirectional prefix, so outputs differ from the reference (see `warnings`).
import * as ort from 'onnxruntime-node';
import { EngineError } from '../errors.js';
import type { StepModel } from '../generate/decode.js';
import type { Manifest } from '../model/manifest.js';
import { createSession, createSessionBeside, openAll, type ExecutionProvider } from '../model/providers.js';
import type { GraphSession } from '../model/session-thread.js';
import { checkPixelCount, RunStats } from '../model/runtime.js';
import type { Sessions } from '../model/sessions.js';
import { float32ToFloat16, halfBitsToFloat } from '../onnx/builder.js';
import type { TransformersJsFolder } from './folder.js';

export const APPROXIMATE_ATTENTION =
  'approximate attention: this ONNX export (onnx-community / transformers.js layout) takes a 2-D attention mask, so the prompt ' +
  'attends causally instead of bidirectionally as PaliGemma was trained; answers can differ from the reference. ' +
  'Convert the original checkpoint (paligemma download google/... or paligemma convert) for exact results.';

type FloatType = 'float32' | 'float16';

function tensorMeta(session: GraphSession, name: string, kind: 'input' | 'output'): ort.InferenceSession.TensorValueMetadata | undefined {
  const list = kind === 'input' ? session.inputMetadata : session.outputMetadata;
  const m = list.find((x) => x.name === name);
  return m && m.isTensor ? m : undefined;
}

function toFloat32(t: ort.Tensor): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') {
    const h = t.data as Uint16Array;
    const out = new Float32Array(h.length);
    for (let i = 0; i < h.length; i++) out[i] = halfBitsToFloat(h[i]);
    return out;
  }
  throw new EngineError('model-invalid', `expected a float tensor, got ${t.type}`);
}

function floatTensor(type: FloatType, data: Float32Array, dims: number[]): ort.Tensor {
  return type === 'float16' ? new ort.Tensor('float16', float32ToFloat16(data), dims) : new ort.Tensor('float32', data, dims);
}

export class TransformersJsSessions implements Sessions {
  readonly stats = new RunStats();
  readonly warnings: string[] = [];
  /** The host runs every decoding loop, and the cache comes back to host memory every step. */
  readonly decodeLoop = 'host';
  readonly reordersOnHost = true;
  readonly manifest: Manifest;
  private readonly pastNames: string[];
  private readonly presentToPast = new Map<string, string>();

  private constructor(
    readonly folder: TransformersJsFolder,
    readonly executionProvider: ExecutionProvider,
    readonly vision: GraphSession,
    readonly embed: ort.InferenceSession,
    readonly decoder: ort.InferenceSession,
  ) {
    this.manifest = folder.manifest;
    const need = (s: GraphSession, inputs: string[], outputs: string[], file: string) => {
      const missing = [...inputs.filter((n) => !s.inputNames.includes(n)), ...outputs.filter((n) => !s.outputNames.includes(n))];
      if (missing.length) throw new EngineError('model-invalid', `${file} lacks ${missing.join(', ')} (not a transformers.js PaliGemma export?)`);
    };
    need(vision, ['pixel_values'], ['image_features'], folder.graphs.vision_encoder);
    need(embed, ['input_ids'], ['inputs_embeds'], folder.graphs.embed_tokens);
    need(decoder, ['inputs_embeds', 'attention_mask'], ['logits'], folder.graphs.decoder_model_merged);
    for (const out of decoder.outputNames) {
      if (!out.startsWith('present')) continue;
      const past = out.replace('present', 'past_key_values');
      if (!decoder.inputNames.includes(past)) throw new EngineError('model-invalid', `${folder.graphs.decoder_model_merged}: ${out} has no ${past} input`);
      this.presentToPast.set(out, past);
    }
    this.pastNames = [...this.presentToPast.values()];
    const mask = tensorMeta(decoder, 'attention_mask', 'input');
    if (mask && mask.shape.length !== 2) {
      throw new EngineError(
        'model-invalid',
        `${folder.graphs.decoder_model_merged}: attention_mask of rank ${mask.shape.length}, expected the 2-D mask of transformers.js exports`,
      );
    }
    this.warnings.push(APPROXIMATE_ATTENTION);
  }

  static async create(folder: TransformersJsFolder, ep: ExecutionProvider, threads?: number): Promise<TransformersJsSessions> {
    // The vision tower loads on its own thread while the other two load on this one.
    const [vision, embed, decoder] = await openAll<[GraphSession, ort.InferenceSession, ort.InferenceSession]>([
      createSessionBeside(folder.graphs.vision_encoder, ep, threads),
      createSession(folder.graphs.embed_tokens, ep, threads),
      createSession(folder.graphs.decoder_model_merged, ep, threads),
    ]);
    try {
      return new TransformersJsSessions(folder, ep, vision, embed, decoder);
    } catch (e) {
      await Promise.allSettled([vision.release(), embed.release(), decoder.release()]);
      throw e;
    }
  }

  async run(session: GraphSession, feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.OnnxValueMapType> {
    // transformers.js feeds only the inputs a graph declares; so do we.
    const picked = Object.fromEntries(Object.entries(feeds).filter(([k]) => session.inputNames.includes(k)));
    return this.stats.time(() => session.run(picked));
  }

  /** Same contract as ModelSessions.encodeImages: float32 image_features [count, N, hidden]. */
  async encodeImages(pixels: Float32Array, count: number): Promise<ort.Tensor> {
    const s = checkPixelCount(this.manifest, pixels, count);
    const type = (tensorMeta(this.vision, 'pixel_values', 'input')?.type ?? 'float32') as FloatType;
    const out = await this.run(this.vision, { pixel_values: floatTensor(type, pixels, [count, 3, s, s]) });
    const features = out.image_features as ort.Tensor;
    return new ort.Tensor('float32', toFloat32(features), features.dims as number[]);
  }

  /** Embeddings of token ids as float32 [rows, length, hidden]. */
  async embedTokens(ids: BigInt64Array, rows: number, length: number): Promise<Float32Array> {
    const out = await this.run(this.embed, { input_ids: new ort.Tensor('int64', ids, [rows, length]) });
    return toFloat32(out.inputs_embeds as ort.Tensor);
  }

  sequence(imageFeatures: ort.Tensor, textIds: readonly (readonly number[])[]): StepModel {
    return new TransformersJsSequence(this, imageFeatures, textIds);
  }

  /** Empty caches for `rows` rows, shaped from the graph (symbolic dims: batch -> rows, others 0). */
  emptyPast(rows: number): Record<string, ort.Tensor> {
    const out: Record<string, ort.Tensor> = {};
    for (const name of this.pastNames) {
      const meta = tensorMeta(this.decoder, name, 'input');
      if (!meta) throw new EngineError('model-invalid', `${name}: not a tensor input`);
      // As transformers.js: the batch dim is the row count, every other symbolic dim (the past length) 0.
      const dims = meta.shape.map((d) => (typeof d === 'number' ? d : /batch/.test(d) ? rows : 0));
      const type = meta.type as FloatType;
      out[name] = type === 'float16' ? new ort.Tensor('float16', new Uint16Array(0), dims) : new ort.Tensor('float32', new Float32Array(0), dims);
    }
    return out;
  }

  pastFrom(outputs: ort.InferenceSession.OnnxValueMapType): Record<string, ort.Tensor> {
    const past: Record<string, ort.Tensor> = {};
    for (const [present, name] of this.presentToPast) past[name] = outputs[present] as ort.Tensor;
    return past;
  }

  get decoderInputType(): FloatType {
    return (tensorMeta(this.decoder, 'inputs_embeds', 'input')?.type ?? 'float32') as FloatType;
  }

  async release(): Promise<void> {
    await Promise.allSettled([this.vision.release(), this.embed.release(), this.decoder.release()]);
  }
}

/** One generation over B prompts: rows laid out [pads][image][text], pads masked out. */
class TransformersJsSequence implements StepModel {
  readonly vocabSize: number;
  private past: Record<string, ort.Tensor> = {};
  /** Per row: the attention mask so far and the next position id. */
  private masks: number[][] = [];
  private nextPosition: number[] = [];

  constructor(
    private readonly s: TransformersJsSessions,
    private readonly imageFeatures: ort.Tensor,
    private readonly textIds: readonly (readonly number[])[],
  ) {
    this.vocabSize = s.manifest.text.vocabSize;
    if (imageFeatures.dims[0] !== textIds.length) throw new Error(`${imageFeatures.dims[0]} image feature rows for ${textIds.length} prompts`);
  }

  async prefill(): Promise<Float32Array> {
    const { tokens, text } = this.s.manifest;
    const rows = this.textIds.length;
    const n = this.imageFeatures.dims[1];
    const hidden = text.hiddenSize;
    const t = Math.max(...this.textIds.map((r) => r.length));
    const length = n + t;
    const ids = new BigInt64Array(rows * length);
    this.masks = [];
    this.nextPosition = [];
    const positions = new BigInt64Array(rows * length);
    this.textIds.forEach((row, r) => {
      const pad = t - row.length;
      const mask: number[] = [];
      let position = 1; // transformers.js: paligemma positions are 1-indexed
      for (let j = 0; j < length; j++) {
        const isPad = j < pad;
        ids[r * length + j] = BigInt(isPad ? tokens.pad : j < pad + n ? tokens.image : row[j - pad - n]);
        mask.push(isPad ? 0 : 1);
        positions[r * length + j] = BigInt(isPad ? 1 : position++);
      }
      this.masks.push(mask);
      this.nextPosition.push(position);
    });
    const embeds = await this.s.embedTokens(ids, rows, length);
    const features = this.imageFeatures.data as Float32Array;
    this.textIds.forEach((row, r) => {
      const pad = t - row.length;
      embeds.set(features.subarray(r * n * hidden, (r + 1) * n * hidden), (r * length + pad) * hidden);
    });
    this.past = this.s.emptyPast(rows);
    return this.runDecoder(embeds, rows, length, positions, false);
  }

  async next(tokens: readonly number[]): Promise<Float32Array> {
    const rows = this.masks.length;
    if (tokens.length !== rows) throw new Error(`${tokens.length} tokens for ${rows} rows`);
    const embeds = await this.s.embedTokens(
      BigInt64Array.from(tokens, (x) => BigInt(x)),
      rows,
      1,
    );
    const positions = new BigInt64Array(rows);
    for (let r = 0; r < rows; r++) {
      this.masks[r].push(1);
      positions[r] = BigInt(this.nextPosition[r]++);
    }
    return this.runDecoder(embeds, rows, 1, positions, true);
  }

  reorder(sources: readonly number[]): void {
    const rows = this.masks.length;
    for (const [name, tensor] of Object.entries(this.past)) {
      const perRow = tensor.data.length / rows;
      const src = tensor.data as Float32Array | Uint16Array;
      const dst = new (src.constructor as Float32ArrayConstructor | Uint16ArrayConstructor)(perRow * sources.length);
      sources.forEach((s, i) => dst.set(src.subarray(s * perRow, (s + 1) * perRow), i * perRow));
      const dims = [sources.length, ...tensor.dims.slice(1)];
      this.past[name] = tensor.type === 'float16' ? new ort.Tensor('float16', dst as Uint16Array, dims) : new ort.Tensor('float32', dst as Float32Array, dims);
    }
    this.masks = sources.map((s) => [...this.masks[s]]);
    this.nextPosition = sources.map((s) => this.nextPosition[s]);
  }

  private async runDecoder(embeds: Float32Array, rows: number, length: number, positions: BigInt64Array, cached: boolean): Promise<Float32Array> {
    const hidden = this.s.manifest.text.hiddenSize;
    const total = this.masks[0].length;
    const mask = new BigInt64Array(rows * total);
    this.masks.forEach((m, r) => m.forEach((v, j) => (mask[r * total + j] = BigInt(v))));
    const feeds: Record<string, ort.Tensor> = {
      inputs_embeds: floatTensor(this.s.decoderInputType, embeds, [rows, length, hidden]),
      attention_mask: new ort.Tensor('int64', mask, [rows, total]),
      position_ids: new ort.Tensor('int64', positions, [rows, length]),
      num_logits_to_keep: new ort.Tensor('int64', BigInt64Array.from([1n]), []),
      use_cache_branch: new ort.Tensor('bool', Uint8Array.from([cached ? 1 : 0]), [1]),
      ...this.past,
    };
    const out = await this.s.run(this.s.decoder, feeds);
    this.past = this.s.pastFrom(out);
    // logits [rows, kept, vocab]: the last kept position of each row.
    const logits = out.logits as ort.Tensor;
    const all = toFloat32(logits);
    const kept = logits.dims.length === 3 ? logits.dims[1] : 1;
    const v = this.vocabSize;
    if (logits.dims.at(-1) !== v) {
      throw new EngineError('model-invalid', `decoder logits have ${logits.dims.at(-1)} entries, config.json says vocab_size ${v}`);
    }
    const last = new Float32Array(rows * v);
    for (let r = 0; r < rows; r++) last.set(all.subarray((r * kept + kept - 1) * v, (r * kept + kept) * v), r * v);
    return last;
  }
}
