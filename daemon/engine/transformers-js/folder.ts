// A model folder in the onnx-community / transformers.js layout (what `paligemma download` installs
// for onnx-community/* repos): config.json, preprocessor_config.json, tokenizer.json and
// onnx/{vision_encoder,embed_tokens,decoder_model_merged}<suffix>.onnx per variant.
// It is described with the same Manifest as our converted folders, so the rest of the engine
// (prompt layout, image preprocessing, decoding) treats both alike.
import { existsSync, readdirSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { normalizeConfig } from '../convert/config.js';
import { readImageSettings, readJsonFile, readTokenIds } from '../convert/source-files.js';
import { EngineError } from '../errors.js';
import type { Manifest, WeightDtype } from '../model/manifest.js';

export const GRAPHS = ['vision_encoder', 'embed_tokens', 'decoder_model_merged'] as const;
export type GraphName = (typeof GRAPHS)[number];

export interface TransformersJsFolder {
  dir: string;
  variant: string;
  /** Paths of the three graphs, absolute. */
  graphs: Record<GraphName, string>;
  manifest: Manifest;
}

const GRAPH_FILE = /^(vision_encoder|embed_tokens|decoder_model_merged)(?:_([A-Za-z0-9]+))?\.onnx$/;

/** The variants with all three graphs ('fp32' = no suffix); null when `dir` is not in this layout. */
export function transformersJsVariants(dir: string): string[] | null {
  const onnxDir = join(dir, 'onnx');
  if (!existsSync(join(dir, 'config.json')) || !existsSync(onnxDir)) return null;
  const graphs = new Map<string, Set<string>>();
  for (const name of readdirSync(onnxDir)) {
    const m = GRAPH_FILE.exec(name);
    if (!m) continue;
    const variant = m[2] ?? 'fp32';
    graphs.set(variant, (graphs.get(variant) ?? new Set()).add(m[1]));
  }
  const complete = [...graphs].filter(([, g]) => GRAPHS.every((n) => g.has(n))).map(([v]) => v);
  return complete.length > 0 ? complete.sort() : null;
}

// Our manifest's dtype is informational for these graphs; 8-bit variants have no exact match.
const DTYPES: Record<string, WeightDtype> = { fp32: 'fp32', fp16: 'fp16', q4: 'int4', q4f16: 'int4', bnb4: 'int4' };

// Preferred when a folder holds several variants and none was asked for: smallest that keeps quality.
const PREFERENCE = ['q4f16', 'fp16', 'q4', 'fp32'];

/** The variant `readTransformersJsFolder` uses: `variant` if the folder has it, else the preferred one. */
export function chooseVariant(dir: string, variants: readonly string[], variant?: string): string {
  const chosen = variant ?? PREFERENCE.find((v) => variants.includes(v)) ?? variants[0];
  if (!variants.includes(chosen)) {
    throw new EngineError('model-missing', `${dir} has no '${chosen}' ONNX variant; it has ${variants.join(', ')}`);
  }
  return chosen;
}

/** The model's name: the export's `_name_or_path` (else the folder's name) and the variant. */
export function transformersJsModelName(dir: string, config: Record<string, unknown>, variant: string): string {
  const name = typeof config._name_or_path === 'string' && config._name_or_path ? config._name_or_path : basename(dir);
  return `${name} (${variant})`;
}

export function readTransformersJsFolder(dir: string, variant?: string): TransformersJsFolder {
  const variants = transformersJsVariants(dir);
  if (!variants) {
    throw new EngineError('model-missing', `${dir} has neither manifest.json nor onnx/{vision_encoder,embed_tokens,decoder_model_merged}*.onnx`);
  }
  const chosen = chooseVariant(dir, variants, variant);
  const suffix = chosen === 'fp32' ? '' : `_${chosen}`;
  const graphs = Object.fromEntries(GRAPHS.map((g) => [g, join(dir, 'onnx', `${g}${suffix}.onnx`)])) as Record<GraphName, string>;

  const configPath = join(dir, 'config.json');
  const raw = readJsonFile(configPath);
  const cfg = normalizeConfig(raw);
  const tokenizerPath = join(dir, 'tokenizer.json');
  const tokens = readTokenIds(dir, readJsonFile(tokenizerPath), cfg.imageTokenIndex);
  const { settings } = readImageSettings(dir);
  const manifest: Manifest = {
    format: 'paligemma-onnx',
    formatVersion: 1,
    name: transformersJsModelName(dir, raw, chosen),
    architecture: cfg.architecture,
    dtype: DTYPES[chosen] ?? 'fp32',
    // The past/present tensors' type is read from the graph when the sessions open.
    kvDtype: chosen.includes('16') ? 'float16' : 'float32',
    image: {
      size: settings.size,
      patchSize: cfg.vision.patchSize,
      numImageTokens: cfg.numImageTokens,
      mean: settings.mean as [number, number, number],
      std: settings.std as [number, number, number],
      rescale: settings.rescale,
    },
    text: {
      hiddenSize: cfg.text.hiddenSize,
      numLayers: cfg.text.numLayers,
      numHeads: cfg.text.numHeads,
      numKvHeads: cfg.text.numKvHeads,
      headDim: cfg.text.headDim,
      vocabSize: cfg.text.vocabSize,
      layerTypes: cfg.text.layerTypes,
      slidingWindow: cfg.text.layerTypes.includes('sliding') ? cfg.text.slidingWindow : null,
      maxPositions: cfg.text.maxPositions,
      finalLogitSoftcap: cfg.text.finalSoftcap,
    },
    tokens,
    // Relative to the folder, as in a converted manifest.
    files: { vision: relative(dir, graphs.vision_encoder), decoder: relative(dir, graphs.decoder_model_merged), tokenizer: 'tokenizer.json' },
    source: { kind: 'onnx-community', variant: chosen },
  };
  return { dir, variant: chosen, graphs, manifest };
}
