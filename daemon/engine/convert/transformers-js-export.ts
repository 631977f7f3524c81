// The transformers.js / onnx-community export layout, written by the converter from the same
// layers as decoder.onnx, so that transformers.js and our engine can run identical graphs:
//   config.json, generation_config.json, preprocessor_config.json, tokenizer.json, tokenizer_config.json
//   onnx/vision_encoder<suffix>.onnx       pixel_values -> image_features (vision.onnx's graph)
//   onnx/embed_tokens<suffix>.onnx         input_ids -> inputs_embeds (the embedding table, unscaled)
//   onnx/decoder_model_merged<suffix>.onnx inputs_embeds, attention_mask [B, total], position_ids,
//                                          past_key_values.{i}.key/.value -> logits [B, 1, vocab], present.{i}.*
// Each graph keeps its weights in `<file>.onnx_data` beside it, as the Hub's exports do. The
// decoder builds its bias from the 2-D mask the way transformers.js's exports do: causal over
// the whole sequence, padding masked (the prompt is therefore not bidirectional).
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { MASKED } from '../model/masks.js';
import type { WeightDtype } from '../model/manifest.js';
import { GraphBuilder } from '../onnx/builder.js';
import { ExternalDataWriter } from '../onnx/external-data.js';
import { Blocks, type Precision } from './blocks.js';
import type { ModelConfig } from './config.js';
import { decoderStep, embeddingTable, type KvDtype } from './decoder-graph.js';
import type { ImageSettings, TokenIds } from './source-files.js';
import { buildVisionGraph } from './vision-graph.js';
import type { WeightSource } from './weights.js';

/** transformers.js's file suffix of each of our weight formats (its `dtype` option: fp32, fp16, q4). */
export const TRANSFORMERS_JS_SUFFIX: Record<WeightDtype, string> = { fp32: '', fp16: '_fp16', int4: '_q4', int8: '_quantized' };
export const TRANSFORMERS_JS_DTYPE: Record<WeightDtype, string> = { fp32: 'fp32', fp16: 'fp16', int4: 'q4', int8: 'q8' };

export interface ExportSource {
  cfg: ModelConfig;
  /** The checkpoint's (or preset's) config.json, written with the kept layer counts. */
  rawConfig: Record<string, unknown>;
  weights: WeightSource;
  image: ImageSettings;
  tokens: TokenIds;
  /** tokenizer.json to copy, or its content. */
  tokenizer: string | Record<string, unknown>;
  /** tokenizer_config.json / generation_config.json to copy when the source has them. */
  tokenizerConfig?: string;
  generationConfig?: string;
}

export interface ExportOptions {
  dir: string;
  dtype: WeightDtype;
  textLayers: number;
  visionLayers: number;
  precision: { vision: Precision; decoder: Precision; kv: KvDtype };
  onLayer?: (what: 'vision' | 'decoder', i: number) => void;
  /** Keeps every writer so that the caller can close them on failure. */
  writers: ExternalDataWriter[];
  writeSync?: typeof import('node:fs').writeSync;
}

/** Writes the export into `o.dir` (an empty folder). */
export function writeTransformersJsExport(src: ExportSource, o: ExportOptions): void {
  const { cfg } = src;
  const suffix = TRANSFORMERS_JS_SUFFIX[o.dtype];
  mkdirSync(join(o.dir, 'onnx'), { recursive: true });
  const graph = (name: string, p: Precision, build: (b: Blocks) => void) => {
    const file = join(o.dir, 'onnx', `${name}${suffix}.onnx`);
    const data = new ExternalDataWriter(`${file}_data`, o.writeSync);
    o.writers.push(data);
    const g = new GraphBuilder({ name, externalData: data, externalThreshold: 1024, opset: 17 });
    build(new Blocks(g, src.weights, p));
    data.close();
    g.save(file);
  };
  graph('vision_encoder', o.precision.vision, (b) => buildVisionGraph(b, cfg, o.visionLayers, (i) => o.onLayer?.('vision', i)));
  graph('embed_tokens', o.precision.decoder, (b) => {
    const ids = b.g.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
    b.g.output('inputs_embeds', embeddingTable(b, cfg).gather(ids), 'float32', ['batch_size', 'sequence_length', cfg.text.hiddenSize]);
  });
  graph('decoder_model_merged', o.precision.decoder, (b) => buildMergedDecoder(b, cfg, o.textLayers, o.precision.kv, (i) => o.onLayer?.('decoder', i)));
  writeSideFiles(src, o);
}

/** decoder_model_merged: our decoder layers behind the export's interface. */
function buildMergedDecoder(b: Blocks, cfg: ModelConfig, numLayers: number, kvDtype: KvDtype, onLayer: (i: number) => void): void {
  const g = b.g;
  const t = cfg.text;
  const embeds = g.input('inputs_embeds', 'float32', ['batch_size', 'sequence_length', t.hiddenSize]);
  const mask = g.input('attention_mask', 'int64', ['batch_size', 'total_sequence_length']);
  const positionIds = g.input('position_ids', 'int64', ['batch_size', 'sequence_length']);
  const past = Array.from({ length: numLayers }, (_, i) => ({
    key: g.input(`past_key_values.${i}.key`, kvDtype, ['batch_size', t.numKvHeads, 'past_sequence_length', t.headDim]),
    value: g.input(`past_key_values.${i}.value`, kvDtype, ['batch_size', t.numKvHeads, 'past_sequence_length', t.headDim]),
  }));

  // Query i (at slot past + i) sees key slot j when j <= past + i and mask[j] = 1.
  const dim = (x: string, axis: number) => g.op('Gather', [g.op('Shape', [x]), g.constant('int64', [axis], [])], { axis: 0 });
  const total = dim(mask, 1);
  const pastLen = g.op('Sub', [total, dim(embeds, 1)]);
  const one = g.constant('int64', [1], []);
  const querySlots = g.op('Unsqueeze', [g.op('Range', [pastLen, total, one]), g.int64s([1])]); // [S, 1]
  const keySlots = g.op('Unsqueeze', [g.op('Range', [g.constant('int64', [0], []), total, one]), g.int64s([0])]); // [1, T]
  const padded = g.op('Unsqueeze', [g.op('Equal', [mask, g.constant('int64', [0], [])]), g.int64s([1, 2])]); // [B, 1, 1, T]
  const toBias = (masked: string) => g.op('Where', [g.op('Or', [masked, padded]), g.scalar('float32', MASKED), g.scalar('float32', 0)]);
  const future = g.op('Greater', [keySlots, querySlots]);
  const bias = toBias(future);
  const sliding = t.layerTypes.slice(0, numLayers).includes('sliding');
  const biasSliding = sliding ? toBias(g.op('Or', [future, g.op('LessOrEqual', [keySlots, g.op('Sub', [querySlots, g.constant('int64', [t.slidingWindow!], [])])])])) : null;

  const out = decoderStep({
    b,
    cfg,
    numLayers,
    kvDtype,
    io: { inputIds: '', imageFeatures: null, embeds, positionIds, bias, biasSliding, past },
    onLayer,
    presentName: (i, kind) => `present.${i}.${kind}`,
  });
  g.output('logits', g.op('Unsqueeze', [out.logits, g.int64s([1])]), 'float32', ['batch_size', 1, t.vocabSize]);
  out.presents.forEach((p, i) => {
    g.output(`present.${i}.key`, p.key, kvDtype, ['batch_size', t.numKvHeads, 'total_sequence_length', t.headDim]);
    g.output(`present.${i}.value`, p.value, kvDtype, ['batch_size', t.numKvHeads, 'total_sequence_length', t.headDim]);
  });
}

function writeJson(path: string, value: unknown): void {
  writeFileSync(path, JSON.stringify(value, null, 2) + '\n');
}

function writeSideFiles(src: ExportSource, o: ExportOptions): void {
  const { cfg, image, tokens } = src;
  const raw = structuredClone(src.rawConfig);
  // The kept layer counts, and the fields transformers.js reads for its cache shapes whatever
  // defaults the source config relied on.
  raw.text_config = {
    ...(raw.text_config as Record<string, unknown>),
    num_hidden_layers: o.textLayers,
    num_attention_heads: cfg.text.numHeads,
    num_key_value_heads: cfg.text.numKvHeads,
    head_dim: cfg.text.headDim,
    hidden_size: cfg.text.hiddenSize,
    vocab_size: cfg.text.vocabSize,
  };
  raw.vision_config = { ...(raw.vision_config as Record<string, unknown>), num_hidden_layers: o.visionLayers };
  raw.image_token_index = tokens.image;
  writeJson(join(o.dir, 'config.json'), raw);
  writeJson(join(o.dir, 'preprocessor_config.json'), {
    image_processor_type: 'SiglipImageProcessor',
    processor_class: 'PaliGemmaProcessor',
    do_convert_rgb: true,
    do_resize: true,
    size: { height: image.size, width: image.size },
    resample: 3,
    do_rescale: true,
    rescale_factor: image.rescale,
    do_normalize: true,
    image_mean: image.mean,
    image_std: image.std,
    image_seq_length: cfg.numImageTokens,
  });
  if (typeof src.tokenizer === 'string') copyFileSync(src.tokenizer, join(o.dir, 'tokenizer.json'));
  else writeJson(join(o.dir, 'tokenizer.json'), src.tokenizer);
  if (src.tokenizerConfig && existsSync(src.tokenizerConfig)) copyFileSync(src.tokenizerConfig, join(o.dir, 'tokenizer_config.json'));
  else writeJson(join(o.dir, 'tokenizer_config.json'), { bos_token: '<bos>', eos_token: '<eos>', pad_token: '<pad>', unk_token: '<unk>', tokenizer_class: 'GemmaTokenizer' });
  if (src.generationConfig && existsSync(src.generationConfig)) copyFileSync(src.generationConfig, join(o.dir, 'generation_config.json'));
  else writeJson(join(o.dir, 'generation_config.json'), { bos_token_id: tokens.bos, eos_token_id: tokens.eos, pad_token_id: tokens.pad });
}

/** tokenizer_config.json next to a tokenizer.json (the random presets' template has one). */
export function siblingTokenizerConfig(tokenizerJson: string): string {
  return join(dirname(tokenizerJson), 'tokenizer_config.json');
}
