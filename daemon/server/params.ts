// Shape checks for every request's params: a client gets InvalidParams naming the field instead
// of a crash deep in the engine. Strings that become prompts are capped here (PromptTooLong).
import { isAbsolute } from 'node:path';
import type { AnswerParams, CaptionParams, DecodingOptions, DetectParams, GenerateParams, ImageRef, LoadModelParams, OcrParams, SegmentParams } from '../protocol.js';
import { ErrorCodes } from '../protocol.js';
import { invalidParams, RpcFailure } from './errors.js';

/** Longest free text (question, object names, raw prompt) accepted before tokenizing. */
export const MAX_PROMPT_CHARS = 2000;

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function onlyKeys(o: Obj, where: string, allowed: string[]): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw invalidParams(`${where}: unknown field '${k}' (expected ${allowed.join(', ')})`);
  }
}

function optString(o: Obj, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalidParams(`${where}.${key} must be a string`);
  return v;
}

function text(o: Obj, key: string, where: string): string {
  const v = o[key];
  if (typeof v !== 'string') throw invalidParams(`${where}.${key} must be a string`);
  if (v.trim() === '') throw invalidParams(`${where}.${key} must not be empty`);
  if (v.length > MAX_PROMPT_CHARS) {
    throw new RpcFailure(ErrorCodes.PromptTooLong, `${where}.${key} is ${v.length} characters; the limit is ${MAX_PROMPT_CHARS}`, 'prompt-too-long');
  }
  return v;
}

function language(o: Obj, where: string): string | undefined {
  const v = optString(o, 'language', where);
  if (v !== undefined && !/^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?$/.test(v)) {
    throw invalidParams(`${where}.language must be a language code like 'en' or 'pt-BR', got ${JSON.stringify(v.slice(0, 40))}`);
  }
  return v;
}

function streamId(o: Obj, where: string): string | undefined {
  return optString(o, 'streamId', where);
}

function cacheOnly(o: Obj, where: string): boolean | undefined {
  return optBoolean(o, 'cacheOnly', where);
}

function optBoolean(o: Obj, key: string, where: string): boolean | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw invalidParams(`${where}.${key} must be a boolean`);
  return v;
}

function params(p: unknown, where: string): Obj {
  if (!isObj(p)) throw invalidParams(`${where}: params must be an object`);
  return p;
}

export function imageRef(v: unknown, where: string): ImageRef {
  if (!isObj(v)) throw invalidParams(`${where}.image must be {path} or {data, mimeType?}`);
  if ('path' in v) {
    onlyKeys(v, `${where}.image`, ['path']);
    if (typeof v.path !== 'string' || v.path === '') throw invalidParams(`${where}.image.path must be a non-empty string`);
    if (v.path.includes('\0')) throw invalidParams(`${where}.image.path contains a NUL byte`);
    // The daemon's working directory is whichever client started it: a relative path would be
    // read from there, not from where the asking client is.
    if (!isAbsolute(v.path)) {
      throw invalidParams(`${where}.image.path must be an absolute path, not '${v.path}': resolve it against the client's working directory first`);
    }
    return { path: v.path };
  }
  if ('data' in v) {
    onlyKeys(v, `${where}.image`, ['data', 'mimeType']);
    if (typeof v.data !== 'string') throw invalidParams(`${where}.image.data must be a base64 string`);
    if (!/^[A-Za-z0-9+/\r\n]*={0,2}\s*$/.test(v.data)) throw invalidParams(`${where}.image.data is not valid base64`);
    const mimeType = optString(v, 'mimeType', `${where}.image`);
    return mimeType === undefined ? { data: v.data } : { data: v.data, mimeType };
  }
  throw invalidParams(`${where}.image must have 'path' or 'data'`);
}

function int(o: Obj, key: string, where: string, min: number, max: number): number | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalidParams(`${where}.${key} must be an integer in [${min}, ${max}]`);
  }
  return v;
}

function num(o: Obj, key: string, where: string, min: number, max: number): number | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw invalidParams(`${where}.${key} must be a number in [${min}, ${max}]`);
  }
  return v;
}

/** Normalised decoding options: absent fields are left out so equal requests share a cache key. */
export function decoding(v: unknown, where: string): DecodingOptions {
  if (v === undefined) return {};
  if (!isObj(v)) throw invalidParams(`${where}.decoding must be an object`);
  const w = `${where}.decoding`;
  onlyKeys(v, w, ['maxNewTokens', 'minNewTokens', 'strategy', 'numBeams', 'temperature', 'topK', 'topP', 'seed']);
  const out: DecodingOptions = {};
  const maxNewTokens = int(v, 'maxNewTokens', w, 1, 4096);
  const minNewTokens = int(v, 'minNewTokens', w, 0, 4096);
  if (v.strategy !== undefined && v.strategy !== 'greedy' && v.strategy !== 'beam' && v.strategy !== 'sample') {
    throw invalidParams(`${w}.strategy must be 'greedy', 'beam' or 'sample'`);
  }
  const numBeams = int(v, 'numBeams', w, 1, 16);
  const temperature = num(v, 'temperature', w, Number.MIN_VALUE, 100);
  const topK = int(v, 'topK', w, 0, 1 << 20);
  const topP = num(v, 'topP', w, Number.MIN_VALUE, 1);
  const seed = int(v, 'seed', w, 0, Number.MAX_SAFE_INTEGER);
  if (maxNewTokens !== undefined) out.maxNewTokens = maxNewTokens;
  if (minNewTokens !== undefined) out.minNewTokens = minNewTokens;
  if (v.strategy !== undefined) out.strategy = v.strategy;
  if (numBeams !== undefined) out.numBeams = numBeams;
  if (temperature !== undefined) out.temperature = temperature;
  if (topK !== undefined) out.topK = topK;
  if (topP !== undefined) out.topP = topP;
  if (seed !== undefined) out.seed = seed;
  if (out.minNewTokens !== undefined && out.maxNewTokens !== undefined && out.minNewTokens > out.maxNewTokens) {
    throw invalidParams(`${w}.minNewTokens (${out.minNewTokens}) exceeds maxNewTokens (${out.maxNewTokens})`);
  }
  return out;
}

export function caption(p: unknown): CaptionParams & { decoding: DecodingOptions } {
  const w = 'caption';
  const o = params(p, w);
  onlyKeys(o, w, ['image', 'language', 'detail', 'decoding', 'streamId', 'cacheOnly']);
  if (o.detail !== undefined && o.detail !== 'short' && o.detail !== 'long') {
    throw invalidParams(`${w}.detail must be 'short' or 'long'`);
  }
  return {
    image: imageRef(o.image, w),
    language: language(o, w),
    detail: o.detail as CaptionParams['detail'],
    decoding: decoding(o.decoding, w),
    streamId: streamId(o, w),
    cacheOnly: cacheOnly(o, w),
  };
}

export function ocr(p: unknown): OcrParams & { decoding: DecodingOptions } {
  const w = 'ocr';
  const o = params(p, w);
  onlyKeys(o, w, ['image', 'decoding', 'streamId', 'cacheOnly']);
  return { image: imageRef(o.image, w), decoding: decoding(o.decoding, w), streamId: streamId(o, w), cacheOnly: cacheOnly(o, w) };
}

export function detect(p: unknown): DetectParams & { decoding: DecodingOptions } {
  const w = 'detect';
  const o = params(p, w);
  onlyKeys(o, w, ['image', 'objects', 'decoding', 'streamId', 'cacheOnly']);
  if (!Array.isArray(o.objects) || o.objects.length === 0) throw invalidParams(`${w}.objects must be a non-empty array of strings`);
  const objects = o.objects.map((x, i) => {
    if (typeof x !== 'string' || x.trim() === '') throw invalidParams(`${w}.objects[${i}] must be a non-empty string`);
    if (x.includes(';')) throw invalidParams(`${w}.objects[${i}] must not contain ';' (it separates objects in the prompt)`);
    return x.trim();
  });
  text({ objects: objects.join(' ; ') }, 'objects', w);
  return { image: imageRef(o.image, w), objects, decoding: decoding(o.decoding, w), streamId: streamId(o, w), cacheOnly: cacheOnly(o, w) };
}

export function answer(p: unknown): AnswerParams & { decoding: DecodingOptions } {
  const w = 'answer';
  const o = params(p, w);
  onlyKeys(o, w, ['image', 'question', 'language', 'decoding', 'streamId', 'cacheOnly']);
  return {
    image: imageRef(o.image, w),
    question: text(o, 'question', w),
    language: language(o, w),
    decoding: decoding(o.decoding, w),
    streamId: streamId(o, w),
    cacheOnly: cacheOnly(o, w),
  };
}

export function segment(p: unknown): SegmentParams & { decoding: DecodingOptions; constrained: boolean } {
  const w = 'segment';
  const o = params(p, w);
  onlyKeys(o, w, ['image', 'object', 'decoding', 'streamId', 'cacheOnly', 'constrained']);
  return {
    image: imageRef(o.image, w),
    object: text(o, 'object', w).trim(),
    decoding: decoding(o.decoding, w),
    streamId: streamId(o, w),
    cacheOnly: cacheOnly(o, w),
    constrained: optBoolean(o, 'constrained', w) ?? true,
  };
}

export function generate(p: unknown): GenerateParams & { decoding: DecodingOptions } {
  const w = 'generate';
  const o = params(p, w);
  onlyKeys(o, w, ['image', 'prompt', 'decoding', 'streamId']);
  return { image: imageRef(o.image, w), prompt: text(o, 'prompt', w), decoding: decoding(o.decoding, w), streamId: streamId(o, w) };
}

export function loadModel(p: unknown): LoadModelParams {
  const w = 'loadModel';
  const o = params(p, w);
  onlyKeys(o, w, ['path', 'executionProvider']);
  if (typeof o.path !== 'string' || o.path === '') throw invalidParams(`${w}.path must be a non-empty string`);
  const ep = o.executionProvider;
  if (ep !== undefined && ep !== 'auto' && ep !== 'cuda' && ep !== 'webgpu' && ep !== 'cpu') {
    throw invalidParams(`${w}.executionProvider must be 'auto', 'cuda', 'webgpu' or 'cpu'`);
  }
  return ep === undefined ? { path: o.path } : { path: o.path, executionProvider: ep };
}

/** Requests without params (status, unloadModel, stop) accept none, an empty object or an empty array. */
export function none(p: unknown, where: string): void {
  if (p === undefined || p === null) return;
  if (Array.isArray(p) && p.length === 0) return;
  if (isObj(p) && Object.keys(p).length === 0) return;
  throw invalidParams(`${where} takes no params`);
}
