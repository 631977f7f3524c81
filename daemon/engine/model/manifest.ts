// Reads and validates a converted model folder's manifest.json (format described in DESIGN.md).
// Every problem is reported as an EngineError naming the file and the field, because a person
// pointing the daemon at the wrong folder should learn what is wrong without reading code.
import { readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EngineError } from '../errors.js';
import { errorMessage } from '../../common/errors.js';

export type Architecture = 'paligemma' | 'paligemma2';
/** The weight formats of a converted decoder, and those of its vision tower. */
export const WEIGHT_DTYPES = ['fp32', 'fp16', 'int4', 'int8'] as const;
export const VISION_DTYPES = ['fp32', 'fp16', 'int8'] as const;
export type WeightDtype = (typeof WEIGHT_DTYPES)[number];
export type KvDtype = 'float32' | 'float16';
export type LayerType = 'full' | 'sliding';

export interface Manifest {
  format: 'paligemma-onnx';
  formatVersion: 1;
  name: string;
  architecture: Architecture;
  dtype: WeightDtype;
  kvDtype: KvDtype;
  image: {
    size: number;
    patchSize: number;
    numImageTokens: number;
    mean: [number, number, number];
    std: [number, number, number];
    rescale: number;
  };
  text: {
    hiddenSize: number;
    numLayers: number;
    numHeads: number;
    numKvHeads: number;
    headDim: number;
    vocabSize: number;
    layerTypes: LayerType[];
    slidingWindow: number | null;
    maxPositions: number;
    /** Gemma 2's final logit softcap, NOT applied by decoder.onnx (see DESIGN.md); null for Gemma 1 (and when absent). */
    finalLogitSoftcap: number | null;
  };
  tokens: { bos: number; eos: number; pad: number; image: number; newline: number; loc0: number; seg0: number };
  /**
   * decoderLoop: decoder.onnx with greedy decoding in the graph (absent in older conversions);
   * decoderLoopConcat: its earlier variant that grows the cache by Concat, for A/B benchmarks.
   */
  files: {
    vision: string;
    decoder: string;
    decoderLoop?: string;
    decoderLoopConcat?: string;
    /** decoderSearch / decoderBeamSearch: the decoder inside onnxruntime's GreedySearch / BeamSearch ops (absent in older conversions). */
    decoderSearch?: string;
    decoderBeamSearch?: string;
    tokenizer: string;
  };
  /**
   * Every file the converter wrote beside the manifest (name relative to the folder), as written:
   * the model's identity covers the weights through these (absent in older conversions).
   */
  checksums?: Record<string, FileChecksum>;
  source?: ManifestSource;
  /** How the converter built the graphs (DESIGN.md); absent in hand-made folders. */
  converter?: ConverterRecord;
}

export interface FileChecksum {
  bytes: number;
  /** Modification time (ms) when written: a file with the same size and time is not hashed again. */
  mtimeMs: number;
  /** `sha256:<hex>` */
  sha256: string;
}

export interface ManifestSource {
  kind: 'huggingface' | 'random' | 'onnx-community';
  path?: string;
  preset?: string;
  seed?: number;
  tokenizer?: string;
  variant?: string;
  /** sha256 of each source file (checkpoint, config, tokenizer). */
  files?: Record<string, string>;
}

export type ActivationDtype = 'fp32' | 'fp16';

export interface ConverterRecord {
  weights: { vision: (typeof VISION_DTYPES)[number]; decoder: WeightDtype };
  /** 'fused': onnxruntime contrib ops in the vision and decoder layers; 'standard': standard ONNX ops only. */
  graphOps?: 'fused' | 'standard';
  int4?: { blockSize: number; zeroPoints: boolean; accuracyLevel: number; /** absent in conversions before it existed: fp32 */ activations?: ActivationDtype };
  /** int8: the layers per output channel (symmetric); the embedding table and tied lm_head in 8-bit blocks of `tableBlockSize`. */
  int8?: { tableBlockSize: number; accuracyLevel: number };
}

export const MANIFEST_FILE = 'manifest.json';

/** Loads `<dir>/manifest.json`, checks it field by field and checks that the files it names exist. */
export async function loadManifest(dir: string): Promise<Manifest> {
  const path = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new EngineError('model-missing', `no converted model at ${dir}: ${MANIFEST_FILE} not found (run 'paligemma convert' first)`, { cause: e });
    }
    throw new EngineError('model-invalid', `cannot read ${path}: ${errorMessage(e)}`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new EngineError('model-invalid', `${path} is not valid JSON: ${errorMessage(e)}`, { cause: e });
  }
  const manifest = validateManifest(json, path);
  await checkFilesExist(dir, manifest, path);
  return manifest;
}

/** Reads and validates `<dir>/manifest.json` synchronously (no check of the files it names). */
export function readManifestSync(dir: string): Manifest {
  const path = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new EngineError('model-invalid', `cannot read ${path}: ${errorMessage(e)}`, { cause: e });
  }
  try {
    return validateManifest(JSON.parse(text), path);
  } catch (e) {
    if (e instanceof SyntaxError) throw new EngineError('model-invalid', `${path} is not valid JSON: ${e.message}`, { cause: e });
    throw e;
  }
}

async function checkFilesExist(dir: string, manifest: Manifest, path: string): Promise<void> {
  for (const [key, file] of Object.entries(manifest.files)) {
    const filePath = join(dir, file);
    const info = await stat(filePath).catch(() => null);
    if (!info || !info.isFile()) {
      throw new EngineError('model-missing', `${path} names files.${key} = '${file}', but ${filePath} does not exist`);
    }
  }
}

/** Checks the shape of a parsed manifest; `where` names the file in error messages. */
export function validateManifest(json: unknown, where = MANIFEST_FILE): Manifest {
  const path = (field: string, k: string): string => (field ? `${field}.${k}` : k);
  const bad = (field: string, want: string): never => {
    throw new EngineError('model-invalid', `${where}: '${field}' must be ${want}`);
  };
  const obj = (v: unknown, field: string): Record<string, unknown> =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : bad(field, 'an object');
  const int = (o: Record<string, unknown>, k: string, field: string, min = 0): number => {
    const v = o[k];
    return typeof v === 'number' && Number.isInteger(v) && v >= min ? v : bad(path(field, k), `an integer >= ${min}`);
  };
  const num = (o: Record<string, unknown>, k: string, field: string): number => {
    const v = o[k];
    return typeof v === 'number' && Number.isFinite(v) ? v : bad(path(field, k), 'a finite number');
  };
  const str = (o: Record<string, unknown>, k: string, field: string): string => {
    const v = o[k];
    return typeof v === 'string' && v.length > 0 ? v : bad(path(field, k), 'a non-empty string');
  };
  const oneOf = <T extends string>(o: Record<string, unknown>, k: string, field: string, values: readonly T[]): T => {
    const v = o[k];
    return values.includes(v as T) ? (v as T) : bad(path(field, k), `one of ${values.map((x) => `'${x}'`).join(', ')}`);
  };
  const triple = (o: Record<string, unknown>, k: string, field: string): [number, number, number] => {
    const v = o[k];
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      return bad(path(field, k), 'an array of 3 numbers');
    }
    return [v[0], v[1], v[2]];
  };

  const root = obj(json, '(root)');
  if (root.format !== 'paligemma-onnx') bad('format', "'paligemma-onnx'");
  if (root.formatVersion !== 1) {
    throw new EngineError('model-invalid', `${where}: formatVersion ${JSON.stringify(root.formatVersion)} is not supported (this engine reads version 1); convert the model again`);
  }
  const image = obj(root.image, 'image');
  const text = obj(root.text, 'text');
  const tokens = obj(root.tokens, 'tokens');
  const files = obj(root.files, 'files');

  const numLayers = int(text, 'numLayers', 'text', 1);
  const layerTypesRaw = text.layerTypes;
  if (!Array.isArray(layerTypesRaw) || layerTypesRaw.length !== numLayers) {
    bad('text.layerTypes', `an array of ${numLayers} entries ('full' or 'sliding')`);
  }
  const layerTypes = (layerTypesRaw as unknown[]).map((t, i) => (t === 'full' || t === 'sliding' ? t : bad(`text.layerTypes[${i}]`, "'full' or 'sliding'")));
  const sw = text.slidingWindow;
  const slidingWindow =
    sw === null || sw === undefined ? null : typeof sw === 'number' && Number.isInteger(sw) && sw >= 1 ? sw : bad('text.slidingWindow', 'a positive integer or null');
  if (layerTypes.includes('sliding') && slidingWindow === null) {
    bad('text.slidingWindow', 'set when text.layerTypes has sliding layers');
  }
  const numHeads = int(text, 'numHeads', 'text', 1);
  const numKvHeads = int(text, 'numKvHeads', 'text', 1);
  if (numHeads % numKvHeads !== 0) bad('text.numKvHeads', `a divisor of text.numHeads (${numHeads})`);

  const size = int(image, 'size', 'image', 1);
  const patchSize = int(image, 'patchSize', 'image', 1);
  const numImageTokens = int(image, 'numImageTokens', 'image', 1);
  if (size % patchSize !== 0 || (size / patchSize) ** 2 !== numImageTokens) {
    bad('image.numImageTokens', `(image.size / image.patchSize)^2 = ${(size / patchSize) ** 2}`);
  }
  const softcap = text.finalLogitSoftcap;
  const finalLogitSoftcap =
    softcap === null || softcap === undefined
      ? null
      : typeof softcap === 'number' && softcap > 0 && Number.isFinite(softcap)
        ? softcap
        : bad('text.finalLogitSoftcap', 'a positive number or null');
  const vocabSize = int(text, 'vocabSize', 'text', 1);
  const tokenIds = {
    bos: int(tokens, 'bos', 'tokens'),
    eos: int(tokens, 'eos', 'tokens'),
    pad: int(tokens, 'pad', 'tokens'),
    image: int(tokens, 'image', 'tokens'),
    newline: int(tokens, 'newline', 'tokens'),
    loc0: int(tokens, 'loc0', 'tokens'),
    seg0: int(tokens, 'seg0', 'tokens'),
  };
  for (const [k, v] of Object.entries(tokenIds)) {
    if (k !== 'image' && v >= vocabSize) bad(`tokens.${k}`, `below text.vocabSize (${vocabSize})`);
  }

  return {
    format: 'paligemma-onnx',
    formatVersion: 1,
    name: str(root, 'name', ''),
    architecture: oneOf(root, 'architecture', '', ['paligemma', 'paligemma2'] as const),
    dtype: oneOf(root, 'dtype', '', WEIGHT_DTYPES),
    kvDtype: oneOf(root, 'kvDtype', '', ['float32', 'float16'] as const),
    image: {
      size,
      patchSize,
      numImageTokens,
      mean: triple(image, 'mean', 'image'),
      std: triple(image, 'std', 'image'),
      rescale: num(image, 'rescale', 'image'),
    },
    text: {
      hiddenSize: int(text, 'hiddenSize', 'text', 1),
      numLayers,
      numHeads,
      numKvHeads,
      headDim: int(text, 'headDim', 'text', 1),
      vocabSize,
      layerTypes,
      slidingWindow,
      maxPositions: int(text, 'maxPositions', 'text', 1),
      finalLogitSoftcap,
    },
    tokens: tokenIds,
    files: {
      vision: str(files, 'vision', 'files'),
      decoder: str(files, 'decoder', 'files'),
      ...(files.decoderLoop !== undefined ? { decoderLoop: str(files, 'decoderLoop', 'files') } : {}),
      ...(files.decoderLoopConcat !== undefined ? { decoderLoopConcat: str(files, 'decoderLoopConcat', 'files') } : {}),
      ...(files.decoderSearch !== undefined ? { decoderSearch: str(files, 'decoderSearch', 'files') } : {}),
      ...(files.decoderBeamSearch !== undefined ? { decoderBeamSearch: str(files, 'decoderBeamSearch', 'files') } : {}),
      tokenizer: str(files, 'tokenizer', 'files'),
    },
    ...(root.checksums !== undefined ? { checksums: checksums(obj(root.checksums, 'checksums')) } : {}),
    ...(root.source !== undefined ? { source: source(obj(root.source, 'source')) } : {}),
    ...(root.converter !== undefined ? { converter: converter(obj(root.converter, 'converter')) } : {}),
  };

  function checksums(o: Record<string, unknown>): Record<string, FileChecksum> {
    const out: Record<string, FileChecksum> = {};
    for (const [file, v] of Object.entries(o)) {
      const field = `checksums[${JSON.stringify(file)}]`;
      const c = obj(v, field);
      const sha = str(c, 'sha256', field);
      if (!/^sha256:[0-9a-f]{64}$/.test(sha)) bad(`${field}.sha256`, "'sha256:' and 64 hex digits");
      out[file] = { bytes: int(c, 'bytes', field), mtimeMs: num(c, 'mtimeMs', field), sha256: sha };
    }
    return out;
  }

  function source(o: Record<string, unknown>): ManifestSource {
    const s: ManifestSource = { kind: oneOf(o, 'kind', 'source', ['huggingface', 'random', 'onnx-community'] as const) };
    for (const k of ['path', 'preset', 'tokenizer', 'variant'] as const) if (o[k] !== undefined) s[k] = str(o, k, 'source');
    if (o.seed !== undefined) s.seed = int(o, 'seed', 'source');
    if (o.files !== undefined) {
      const files = obj(o.files, 'source.files');
      s.files = Object.fromEntries(Object.keys(files).map((k) => [k, str(files, k, 'source.files')]));
    }
    return s;
  }

  function converter(o: Record<string, unknown>): ConverterRecord {
    const w = obj(o.weights, 'converter.weights');
    const c: ConverterRecord = {
      weights: {
        vision: oneOf(w, 'vision', 'converter.weights', VISION_DTYPES),
        decoder: oneOf(w, 'decoder', 'converter.weights', WEIGHT_DTYPES),
      },
    };
    if (o.graphOps !== undefined) c.graphOps = oneOf(o, 'graphOps', 'converter', ['fused', 'standard'] as const);
    if (o.int4 !== undefined) {
      const q = obj(o.int4, 'converter.int4');
      if (typeof q.zeroPoints !== 'boolean') bad('converter.int4.zeroPoints', 'true or false');
      c.int4 = { blockSize: int(q, 'blockSize', 'converter.int4', 1), zeroPoints: q.zeroPoints as boolean, accuracyLevel: int(q, 'accuracyLevel', 'converter.int4') };
      if (q.activations !== undefined) c.int4.activations = oneOf(q, 'activations', 'converter.int4', ['fp32', 'fp16'] as const);
    }
    if (o.int8 !== undefined) {
      const q = obj(o.int8, 'converter.int8');
      c.int8 = { tableBlockSize: int(q, 'tableBlockSize', 'converter.int8', 1), accuracyLevel: int(q, 'accuracyLevel', 'converter.int8') };
    }
    return c;
  }
}
