// Incremental decoding for streaming: text appears token by token, and the concatenation of
// what is emitted equals the final decode. A trailing run of byte tokens that is still an
// incomplete UTF-8 sequence is held back (it would show as U+FFFD, then change).
import type { TextTokenizer } from './tokenizer.js';

export class TextStream {
  private readonly ids: number[] = [];
  private emitted = '';

  constructor(
    private readonly tokenizer: TextTokenizer,
    private readonly skipSpecialTokens = true,
  ) {}

  /** Adds a generated token; returns the new text that became final (maybe ''). */
  push(id: number): string {
    this.ids.push(id);
    const tokens = this.tokenizer.tokens(this.ids, this.skipSpecialTokens);
    let end = tokens.length;
    const bytes: number[] = [];
    while (end > 0 && this.tokenizer.isByteToken(tokens[end - 1])) {
      bytes.unshift(parseInt(tokens[end - 1].slice(3, 5), 16));
      end--;
    }
    const stable = bytes.length > 0 && isIncompleteUtf8(bytes) ? this.tokenizer.decodeTokens(tokens.slice(0, end)) : this.tokenizer.decodeTokens(tokens);
    return this.advance(stable);
  }

  /** Text not emitted yet (a dangling partial UTF-8 sequence shows as U+FFFD, as in a full decode). */
  flush(): string {
    return this.advance(this.text);
  }

  /** The full decoded text so far. */
  get text(): string {
    return this.tokenizer.decode(this.ids, { skipSpecialTokens: this.skipSpecialTokens });
  }

  private advance(stable: string): string {
    if (!stable.startsWith(this.emitted)) return ''; // never retract emitted text
    const delta = stable.slice(this.emitted.length);
    this.emitted = stable;
    return delta;
  }
}

/** True if `bytes` is valid UTF-8 except that its last character is not complete yet. */
function isIncompleteUtf8(bytes: readonly number[]): boolean {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    const len = b < 0x80 ? 1 : b >> 5 === 0b110 ? 2 : b >> 4 === 0b1110 ? 3 : b >> 3 === 0b11110 ? 4 : 0;
    if (len === 0) return false;
    for (let k = 1; k < len; k++) {
      if (i + k >= bytes.length) return true;
      if (bytes[i + k] >> 6 !== 0b10) return false;
    }
    i += len;
  }
  return false;
}
