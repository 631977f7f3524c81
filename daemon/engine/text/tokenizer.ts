// The model's tokenizer (tokenizer.json through @huggingface/tokenizers) with decoding that
// reproduces Hugging Face `tokenizers` (Rust) output exactly, which the JS library alone does not:
// - ids outside the vocabulary (the embedding is padded past it) decode to nothing, not `<unk>`;
// - an added token marked `normalized` is decoded as its normalised form (with a Prepend('▁')
//   normalizer that is a leading space, which is why HF prints `box <loc0093>`);
// - ByteFallback turns a run of `<0xNN>` tokens into its UTF-8 text, or into one U+FFFD per byte
//   when the run is not valid UTF-8 (the JS library decodes such runs leniently).
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { EngineError } from '../errors.js';
import { errorMessage } from '../../common/errors.js';

interface AddedTokenInfo {
  content: string;
  special: boolean;
  normalized: boolean;
}

const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export class TextTokenizer {
  private readonly added = new Map<number, AddedTokenInfo>();
  private readonly byteFallback: boolean;
  /** tokenizer.json's `decoder` (TextStream checks that it decodes token by token). */
  readonly decoderConfig: unknown;

  constructor(
    readonly hf: Tokenizer,
    tokenizerJson: { decoder?: unknown },
  ) {
    this.decoderConfig = tokenizerJson.decoder ?? null;
    const normalize = hf.normalizer ? (s: string) => hf.normalizer!(s) as unknown as string : (s: string) => s;
    for (const [id, t] of hf.get_added_tokens_decoder()) {
      this.added.set(id, { content: t.normalized ? normalize(t.content) : t.content, special: t.special, normalized: t.normalized });
    }
    this.byteFallback = JSON.stringify(tokenizerJson.decoder ?? null).includes('"ByteFallback"');
  }

  /** Token ids of `text`, without the special tokens a post-processor would add. */
  encode(text: string): number[] {
    return this.hf.encode(text, { add_special_tokens: false }).ids;
  }

  /** The id of a token string (e.g. `<loc0000>`), or undefined. */
  tokenId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  token(id: number): string | undefined {
    return this.added.get(id)?.content ?? this.hf.id_to_token(id);
  }

  isSpecial(id: number): boolean {
    return this.added.get(id)?.special ?? false;
  }

  /** Like HF `decode(ids, skip_special_tokens)`. */
  decode(ids: readonly number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    return this.decodeTokens(this.tokens(ids, opts.skipSpecialTokens ?? true));
  }

  /** Token strings that take part in decoding (unknown ids and, if asked, special tokens dropped). */
  tokens(ids: readonly number[], skipSpecialTokens: boolean): string[] {
    const out: string[] = [];
    for (const id of ids) {
      const a = this.added.get(id);
      if (a) {
        if (!(skipSpecialTokens && a.special)) out.push(a.content);
        continue;
      }
      const t = this.hf.id_to_token(id);
      if (t !== undefined) out.push(t);
    }
    return out;
  }

  decodeTokens(tokens: readonly string[]): string {
    if (tokens.length === 0) return '';
    const merged = this.byteFallback ? mergeByteRuns(tokens) : [...tokens];
    return this.hf.decoder ? this.hf.decoder.decode(merged) : merged.join(' ');
  }

  /** True when `token` is a ByteFallback byte token such as `<0xE6>`. */
  isByteToken(token: string): boolean {
    return this.byteFallback && BYTE_TOKEN.test(token);
  }
}

/** Rust ByteFallback: a run of byte tokens becomes its UTF-8 text, or U+FFFD per byte if invalid. */
function mergeByteRuns(tokens: readonly string[]): string[] {
  const out: string[] = [];
  let run: number[] = [];
  const flush = () => {
    if (run.length === 0) return;
    try {
      out.push(utf8.decode(Uint8Array.from(run)));
    } catch {
      for (let i = 0; i < run.length; i++) out.push('\uFFFD');
    }
    run = [];
  };
  for (const t of tokens) {
    const m = BYTE_TOKEN.exec(t);
    if (m) run.push(parseInt(m[1], 16));
    else {
      flush();
      out.push(t);
    }
  }
  flush();
  return out;
}

/** Parses a tokenizer.json (and its tokenizer_config.json, if given). */
export function tokenizerFromJson(tokenizerJson: unknown, config: unknown = {}): TextTokenizer {
  if (typeof tokenizerJson !== 'object' || tokenizerJson === null || !('model' in tokenizerJson)) {
    throw new EngineError('model-invalid', 'tokenizer.json has no tokenizer model');
  }
  try {
    return new TextTokenizer(new Tokenizer(tokenizerJson, (config ?? {}) as object), tokenizerJson as { decoder?: unknown });
  } catch (e) {
    throw new EngineError('model-invalid', `tokenizer.json cannot be used: ${errorMessage(e)}`, { cause: e });
  }
}

/** Loads `file` (a tokenizer.json), with tokenizer_config.json from the same folder when present. */
export async function loadTokenizer(file: string): Promise<TextTokenizer> {
  const json = await readJson(file, true);
  const config = await readJson(join(dirname(file), 'tokenizer_config.json'), false);
  return tokenizerFromJson(json, config ?? {});
}

async function readJson(file: string, required: boolean): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if (!required) return undefined;
    throw new EngineError('model-missing', `${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { cause: e });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new EngineError('model-invalid', `${file} is not valid JSON: ${errorMessage(e)}`, { cause: e });
  }
}
