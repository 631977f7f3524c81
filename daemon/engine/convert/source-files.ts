// The non-weight files of a Hugging Face PaliGemma checkpoint: image processor settings and
// the special token ids, read from the files (never hard-coded: tiny test tokenizers differ).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EngineError } from '../errors.js';
import { errorMessage } from '../../common/errors.js';

export interface ImageSettings {
  size: number;
  mean: number[];
  std: number[];
  rescale: number;
  /** image_seq_length, when the processor config states it */
  seqLength?: number;
}

export interface TokenIds {
  bos: number;
  eos: number;
  pad: number;
  image: number;
  newline: number;
  loc0: number;
  seg0: number;
}

function readJson(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new EngineError('model-missing', `${path}: cannot read (${errorMessage(e)})`);
  }
  try {
    const v = JSON.parse(text);
    if (!v || typeof v !== 'object') throw new Error('not an object');
    return v;
  } catch {
    throw new EngineError('model-invalid', `${path}: not valid JSON`);
  }
}

export function readJsonFile(path: string): Record<string, unknown> {
  return readJson(path);
}

/** processor_config.json (transformers 5.x, nested) or preprocessor_config.json (4.x, flat). */
export function readImageSettings(dir: string): { settings: ImageSettings; file: string } {
  const candidates = ['processor_config.json', 'preprocessor_config.json'];
  for (const file of candidates) {
    const path = join(dir, file);
    if (!existsSync(path)) continue;
    const raw = readJson(path);
    const p = (raw.image_processor && typeof raw.image_processor === 'object' ? raw.image_processor : raw) as Record<string, unknown>;
    const size = p.size as { height?: number; width?: number; shortest_edge?: number } | number | undefined;
    let s: number | undefined;
    if (typeof size === 'number') s = size;
    else if (size && typeof size === 'object') {
      if (size.height !== undefined && size.width !== undefined && size.height !== size.width) {
        throw new EngineError('model-invalid', `${path}: non-square image size ${size.height}x${size.width}`);
      }
      s = size.height ?? size.shortest_edge;
    }
    if (typeof s !== 'number') throw new EngineError('model-invalid', `${path}: no image size`);
    const vec = (v: unknown, fallback: number[]): number[] => {
      if (v === undefined) return fallback;
      const a = typeof v === 'number' ? [v, v, v] : v;
      if (!Array.isArray(a) || a.length !== 3 || !a.every((x) => typeof x === 'number')) {
        throw new EngineError('model-invalid', `${path}: image mean/std must be 3 numbers`);
      }
      return a as number[];
    };
    const normalize = p.do_normalize !== false;
    const rescale = p.do_rescale !== false;
    return {
      file,
      settings: {
        size: s,
        mean: normalize ? vec(p.image_mean, [0.5, 0.5, 0.5]) : [0, 0, 0],
        std: normalize ? vec(p.image_std, [0.5, 0.5, 0.5]) : [1, 1, 1],
        rescale: rescale ? (typeof p.rescale_factor === 'number' ? p.rescale_factor : 1 / 255) : 1,
        seqLength: typeof p.image_seq_length === 'number' ? p.image_seq_length : typeof raw.image_seq_length === 'number' ? raw.image_seq_length : undefined,
      },
    };
  }
  throw new EngineError('model-missing', `${dir}: no processor_config.json or preprocessor_config.json`);
}

/** token string -> id, from tokenizer.json's added tokens and model vocabulary. */
export function tokenizerVocab(tokenizer: Record<string, unknown>): Map<string, number> {
  const map = new Map<string, number>();
  const model = tokenizer.model as { vocab?: unknown } | undefined;
  const vocab = model?.vocab;
  if (Array.isArray(vocab)) {
    vocab.forEach((entry, i) => map.set(Array.isArray(entry) ? String(entry[0]) : String(entry), i));
  } else if (vocab && typeof vocab === 'object') {
    for (const [k, v] of Object.entries(vocab as Record<string, number>)) map.set(k, v);
  }
  for (const t of (tokenizer.added_tokens as { id: number; content: string }[] | undefined) ?? []) map.set(t.content, t.id);
  return map;
}

function tokenString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

export function readTokenIds(dir: string, tokenizer: Record<string, unknown>, imageTokenIndex: number): TokenIds {
  const vocab = tokenizerVocab(tokenizer);
  const tcPath = join(dir, 'tokenizer_config.json');
  const tc = existsSync(tcPath) ? readJson(tcPath) : {};
  const id = (what: string, token: string | undefined): number => {
    const v = token === undefined ? undefined : vocab.get(token);
    if (v === undefined) throw new EngineError('model-invalid', `${dir}: tokenizer has no ${what} token ${token === undefined ? '' : JSON.stringify(token)}`);
    return v;
  };
  const image = id('image', '<image>');
  if (image !== imageTokenIndex) {
    throw new EngineError('model-invalid', `${dir}: config image_token_index ${imageTokenIndex} but the tokenizer's <image> is ${image}`);
  }
  return {
    bos: id('bos', tokenString(tc.bos_token) ?? '<bos>'),
    eos: id('eos', tokenString(tc.eos_token) ?? '<eos>'),
    pad: id('pad', tokenString(tc.pad_token) ?? '<pad>'),
    image,
    newline: id('newline', '\n'),
    loc0: id('<loc0000>', '<loc0000>'),
    seg0: id('<seg000>', '<seg000>'),
  };
}
