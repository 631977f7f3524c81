// PaliGemma prompts: the task prefixes of the mix checkpoints, and the token layout the HF
// processor builds for `processor(text='<image>' + prefix, images=image)`:
// `<image>` x N, `<bos>`, the prefix's tokens, `\n` (which ends the prompt).
import { EngineError } from '../errors.js';
import type { TextTokenizer } from './tokenizer.js';

export type PromptTask =
  | { task: 'caption'; lang?: string; detail?: 'short' | 'long' }
  | { task: 'ocr' }
  | { task: 'answer'; question: string; lang?: string }
  | { task: 'detect'; objects: string | readonly string[] }
  | { task: 'segment'; objects: string | readonly string[] };

const LANG = /^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})?$/;

/** The prefix for a task: `caption en`, `describe en`, `ocr`, `answer en ...`, `detect a ; b`, `segment a`. */
export function buildPrompt(t: PromptTask): string {
  switch (t.task) {
    case 'caption':
      if (t.detail !== undefined && t.detail !== 'short' && t.detail !== 'long') {
        throw new EngineError('invalid-params', `caption detail must be 'short' or 'long', got '${String(t.detail)}'`);
      }
      return `${t.detail === 'long' ? 'describe' : 'caption'} ${lang(t.lang)}`;
    case 'ocr':
      return 'ocr';
    case 'answer': {
      const q = oneLine(typeof t.question === 'string' ? t.question : '');
      if (!q) throw new EngineError('invalid-params', 'the question is empty');
      return `answer ${lang(t.lang)} ${q}`;
    }
    case 'detect':
    case 'segment': {
      const list = typeof t.objects === 'string' ? t.objects.split(';') : Array.isArray(t.objects) ? t.objects.flatMap((o) => String(o).split(';')) : [];
      const objects = list.map(oneLine).filter((o) => o.length > 0);
      if (objects.length === 0) throw new EngineError('invalid-params', `name at least one object to ${t.task}`);
      return `${t.task} ${objects.join(' ; ')}`;
    }
    default:
      throw new EngineError('invalid-params', `unknown task '${String((t as { task?: unknown }).task)}'`);
  }
}

function lang(code: string | undefined): string {
  const l = (code ?? 'en').trim();
  if (!LANG.test(l)) throw new EngineError('invalid-params', `'${l}' is not a language code (like 'en', 'de' or 'zh-TW')`);
  return l;
}

/** User text on one line: a newline would end the prompt, so line breaks become spaces. */
export function oneLine(text: string): string {
  return text
    .replace(/[\r\n\u2028\u2029]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

export interface PromptTokenIds {
  bos: number;
  image: number;
  newline?: number;
}

/**
 * Prompt ids exactly as the HF processor makes them: `<image>` x numImageTokens, `<bos>`, the
 * tokens of `prefix + '\n'`. The prefix must be one line and may not contain special tokens
 * (`<eos>`, `<image>`, ...): they would act as control tokens, not text.
 */
export function encodePrompt(tokenizer: TextTokenizer, tokens: PromptTokenIds, prefix: string, numImageTokens: number, opts: { maxTokens?: number } = {}): number[] {
  if (typeof prefix !== 'string') throw new EngineError('invalid-params', 'the prompt must be a string');
  if (/[\r\n]/.test(prefix)) throw new EngineError('invalid-params', 'the prompt must be a single line (a newline ends a PaliGemma prompt)');
  if (!Number.isInteger(numImageTokens) || numImageTokens < 0) throw new EngineError('invalid-params', `bad number of image tokens: ${numImageTokens}`);
  const text = tokenizer.encode(prefix + '\n');
  // The last token is the newline (a special token in some tokenizers); byte tokens are text.
  const special = text.slice(0, -1).filter((id) => tokenizer.isSpecial(id) && !tokenizer.isByteToken(tokenizer.token(id) ?? ''));
  if (special.length > 0) {
    throw new EngineError('invalid-params', `the prompt contains the special token ${tokenizer.token(special[0])}, which cannot be used as text`);
  }
  if (tokens.newline !== undefined && text[text.length - 1] !== tokens.newline) {
    throw new EngineError('model-invalid', `the tokenizer does not end the prompt with the newline token ${tokens.newline}`);
  }
  const ids = new Array<number>(numImageTokens).fill(tokens.image);
  ids.push(tokens.bos, ...text);
  if (opts.maxTokens !== undefined && ids.length > opts.maxTokens) {
    throw new EngineError('prompt-too-long', `the prompt needs ${ids.length} tokens (${numImageTokens} for the image), more than the model's ${opts.maxTokens}`);
  }
  return ids;
}
