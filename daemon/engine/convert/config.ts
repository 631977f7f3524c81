// Normalises a Hugging Face PaliGemma `config.json` (written by transformers 4.x or 5.x) into the
// dimensions the graph builders need. Fields a config omits take the defaults of the model type's
// configuration class in transformers (configuration_paligemma / gemma / gemma2 / siglip), which
// is what `from_pretrained` would do; the weight shapes are checked against the result later.
import { EngineError } from '../errors.js';

export type Architecture = 'paligemma' | 'paligemma2';
export type Activation = 'gelu_tanh' | 'gelu_erf';
export type LayerType = 'full' | 'sliding';

export interface TextConfig {
  modelType: 'gemma' | 'gemma2';
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  maxPositions: number;
  activation: Activation;
  /** Attention scores are multiplied by this (head_dim^-0.5, or query_pre_attn_scalar^-0.5 for Gemma 2). */
  attnScale: number;
  attnSoftcap: number | null;
  finalSoftcap: number | null;
  slidingWindow: number | null;
  layerTypes: LayerType[];
  tieWordEmbeddings: boolean;
}

export interface VisionConfig {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  imageSize: number;
  patchSize: number;
  numChannels: number;
  layerNormEps: number;
  activation: Activation;
}

export interface ModelConfig {
  architecture: Architecture;
  text: TextConfig;
  vision: VisionConfig;
  projectionDim: number;
  imageTokenIndex: number;
  numImageTokens: number;
}

type Json = Record<string, unknown>;

function invalid(message: string): EngineError {
  return new EngineError('model-invalid', `config.json: ${message}`);
}

function num(obj: Json, key: string, fallback: number | undefined, where: string): number {
  const v = obj[key];
  if (v === undefined || v === null) {
    if (fallback === undefined) throw invalid(`${where}.${key} is missing`);
    return fallback;
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(`${where}.${key} is not a number`);
  return v;
}

function optNum(obj: Json, key: string, fallback: number | null): number | null {
  const v = obj[key];
  if (v === undefined) return fallback;
  if (v === null) return null;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(`text_config.${key} is not a number`);
  return v;
}

function activation(name: unknown, where: string): Activation {
  // gelu_pytorch_tanh, gelu_new and gelu_fast are all the tanh approximation.
  if (name === 'gelu_pytorch_tanh' || name === 'gelu_new' || name === 'gelu_fast') return 'gelu_tanh';
  if (name === 'gelu') return 'gelu_erf';
  throw invalid(`${where}: unsupported activation ${JSON.stringify(name)}`);
}

// transformers' GemmaConfig / Gemma2Config defaults (text_config omitted fields).
const GEMMA_DEFAULTS = {
  vocab_size: 256000,
  hidden_size: 3072,
  intermediate_size: 24576,
  num_hidden_layers: 28,
  num_attention_heads: 16,
  num_key_value_heads: 16,
  head_dim: 256,
  max_position_embeddings: 8192,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
};
const GEMMA2_DEFAULTS = {
  vocab_size: 256000,
  hidden_size: 2304,
  intermediate_size: 9216,
  num_hidden_layers: 26,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  head_dim: 256,
  max_position_embeddings: 8192,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  query_pre_attn_scalar: 256,
  sliding_window: 4096,
  final_logit_softcapping: 30.0,
  attn_logit_softcapping: 50.0,
};
// PaliGemmaConfig's own text default when text_config is absent altogether.
const PALIGEMMA_TEXT_DEFAULTS = {
  model_type: 'gemma',
  hidden_size: 2048,
  num_hidden_layers: 18,
  intermediate_size: 16384,
  num_attention_heads: 8,
  num_key_value_heads: 1,
};
// SiglipVisionConfig defaults (a vision_config dict with omitted fields) ...
const SIGLIP_DEFAULTS = {
  hidden_size: 768,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  num_channels: 3,
  image_size: 224,
  patch_size: 16,
  layer_norm_eps: 1e-6,
};
// ... and PaliGemmaConfig's when vision_config is absent altogether.
const PALIGEMMA_VISION_DEFAULTS = {
  intermediate_size: 4096,
  hidden_size: 1152,
  patch_size: 14,
  image_size: 224,
  num_hidden_layers: 27,
  num_attention_heads: 16,
};

function ropeTheta(t: Json, fallback: number): number {
  const params = t.rope_parameters ?? t.rope_scaling;
  if (params !== undefined && params !== null) {
    if (typeof params !== 'object') throw invalid('text_config.rope_parameters is not an object');
    const p = params as Json;
    const type = p.rope_type ?? p.type ?? 'default';
    if (type !== 'default') throw invalid(`text_config: rope type ${JSON.stringify(type)} is not supported`);
    if (typeof p.rope_theta === 'number') return p.rope_theta;
  }
  return num(t, 'rope_theta', fallback, 'text_config');
}

function layerTypes(t: Json, numLayers: number, gemma2: boolean): LayerType[] {
  if (!gemma2) return Array.from({ length: numLayers }, () => 'full');
  const given = t.layer_types;
  if (Array.isArray(given)) {
    if (given.length !== numLayers) throw invalid(`text_config.layer_types has ${given.length} entries for ${numLayers} layers`);
    return given.map((x, i) => {
      if (x === 'sliding_attention') return 'sliding';
      if (x === 'full_attention') return 'full';
      throw invalid(`text_config.layer_types[${i}] = ${JSON.stringify(x)}`);
    });
  }
  // Gemma 2: sliding window on even layers (layer_idx % 2 == 0).
  return Array.from({ length: numLayers }, (_, i) => (i % 2 === 0 ? 'sliding' : 'full'));
}

export function normalizeConfig(raw: unknown): ModelConfig {
  if (!raw || typeof raw !== 'object') throw invalid('not a JSON object');
  const c = raw as Json;
  if (c.model_type !== 'paligemma') {
    throw new EngineError('model-invalid', `config.json: model_type ${JSON.stringify(c.model_type)} is not supported (expected "paligemma")`);
  }
  const rawText = (c.text_config ?? null) as Json | null;
  const t: Json = rawText ? { ...rawText } : { ...PALIGEMMA_TEXT_DEFAULTS };
  const textType = (t.model_type ?? 'gemma') as string;
  if (textType !== 'gemma' && textType !== 'gemma2') {
    throw new EngineError('model-invalid', `config.json: text model_type ${JSON.stringify(textType)} is not supported (gemma or gemma2)`);
  }
  const gemma2 = textType === 'gemma2';
  const d: Record<string, number> = gemma2 ? GEMMA2_DEFAULTS : GEMMA_DEFAULTS;
  const w = 'text_config';
  const hiddenSize = num(t, 'hidden_size', d.hidden_size, w);
  const numHeads = num(t, 'num_attention_heads', d.num_attention_heads, w);
  const numKvHeads = num(t, 'num_key_value_heads', d.num_key_value_heads, w);
  const headDim = num(t, 'head_dim', d.head_dim, w);
  const numLayers = num(t, 'num_hidden_layers', d.num_hidden_layers, w);
  if (numHeads % numKvHeads !== 0) throw invalid(`${numHeads} heads are not a multiple of ${numKvHeads} kv heads`);
  // Gemma reads `hidden_activation` (hidden_act is ignored; None meant gelu_pytorch_tanh).
  const act = activation(t.hidden_activation ?? 'gelu_pytorch_tanh', 'text_config.hidden_activation');
  const text: TextConfig = {
    modelType: textType,
    hiddenSize,
    intermediateSize: num(t, 'intermediate_size', d.intermediate_size, w),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: num(t, 'vocab_size', (c.vocab_size as number | undefined) ?? d.vocab_size, w),
    rmsNormEps: num(t, 'rms_norm_eps', d.rms_norm_eps, w),
    ropeTheta: ropeTheta(t, d.rope_theta),
    maxPositions: num(t, 'max_position_embeddings', d.max_position_embeddings, w),
    activation: act,
    attnScale: gemma2 ? num(t, 'query_pre_attn_scalar', d.query_pre_attn_scalar, w) ** -0.5 : headDim ** -0.5,
    attnSoftcap: gemma2 ? optNum(t, 'attn_logit_softcapping', d.attn_logit_softcapping) : null,
    finalSoftcap: gemma2 ? optNum(t, 'final_logit_softcapping', d.final_logit_softcapping) : null,
    slidingWindow: gemma2 ? optNum(t, 'sliding_window', d.sliding_window) : null,
    layerTypes: layerTypes(t, numLayers, gemma2),
    tieWordEmbeddings: (t.tie_word_embeddings ?? c.tie_word_embeddings ?? true) !== false,
  };
  if (text.slidingWindow === null) text.layerTypes = text.layerTypes.map(() => 'full');

  const rawVision = (c.vision_config ?? null) as Json | null;
  const v: Json = rawVision ? { ...SIGLIP_DEFAULTS, ...rawVision } : { ...SIGLIP_DEFAULTS, ...PALIGEMMA_VISION_DEFAULTS };
  if (v.model_type !== undefined && v.model_type !== 'siglip_vision_model') {
    throw new EngineError('model-invalid', `config.json: vision model_type ${JSON.stringify(v.model_type)} is not supported`);
  }
  const vw = 'vision_config';
  const vision: VisionConfig = {
    hiddenSize: num(v, 'hidden_size', undefined, vw),
    intermediateSize: num(v, 'intermediate_size', undefined, vw),
    numLayers: num(v, 'num_hidden_layers', undefined, vw),
    numHeads: num(v, 'num_attention_heads', undefined, vw),
    imageSize: num(v, 'image_size', undefined, vw),
    patchSize: num(v, 'patch_size', undefined, vw),
    numChannels: num(v, 'num_channels', undefined, vw),
    layerNormEps: num(v, 'layer_norm_eps', undefined, vw),
    activation: activation(v.hidden_act ?? 'gelu_pytorch_tanh', 'vision_config.hidden_act'),
  };
  if (vision.hiddenSize % vision.numHeads !== 0) throw invalid('vision hidden_size is not a multiple of its heads');
  if (vision.imageSize % vision.patchSize !== 0) throw invalid('vision image_size is not a multiple of patch_size');
  const numImageTokens = (vision.imageSize / vision.patchSize) ** 2;
  return {
    architecture: gemma2 ? 'paligemma2' : 'paligemma',
    text,
    vision,
    projectionDim: num(c, 'projection_dim', num(v, 'projection_dim', 2048, vw), 'config'),
    imageTokenIndex: num(c, 'image_token_index', num(c, 'image_token_id', 256000, 'config'), 'config'),
    numImageTokens,
  };
}
