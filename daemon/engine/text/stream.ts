// Incremental decoding for streaming: text appears token by token, and the concatenation of
// what is emitted equals the final decode. A trailing run of byte tokens is held back until a
// non-byte token (or flush) ends it: the run decodes as one piece, and one more byte can still
// turn it into U+FFFD per byte (an incomplete character, or a complete one followed by a stray
// continuation byte), which would retract text already shown.
//
// Each push decodes only a window of recent tokens (like transformers' TextStreamer and the Rust
// DecodeStream): the text of tokens [0, x) is a fixed head plus the window's text of [start, x)
// whenever the window starts at a token that settles every "start of text" rule of the decoder
// (Strip / Metaspace look at the first characters) and no byte run crosses the window start. The
// window moves to the last such token before the read offset, so a push costs O(window), not
// O(output). Decoders whose pieces can interact across tokens in other ways (ByteLevel,
// WordPiece, CTC, a multi-character Replace after Fuse) keep the window at token 0: exact but
// quadratic, as before.
import type { TextTokenizer } from './tokenizer.js';

/** How far back `push` looks for a new window start (the window only grows past that). */
const MAX_START_PROBES = 8;

export class TextStream {
  private readonly ids: number[] = [];
  /** Token strings of every pushed id that takes part in decoding. */
  private readonly toks: string[] = [];
  /** Tokens [0, read) have been emitted; their text is head + `readText`. */
  private read = 0;
  /** Window start: `readText` is the decode of tokens [start, read). */
  private start = 0;
  private readText = '';
  private readonly window: WindowRule | undefined;

  constructor(
    private readonly tokenizer: TextTokenizer,
    private readonly skipSpecialTokens = true,
  ) {
    this.window = windowRule(tokenizer.decoderConfig);
  }

  /** Adds a generated token; returns the new text that became final (maybe ''). */
  push(id: number): string {
    this.ids.push(id);
    for (const t of this.tokenizer.tokens([id], this.skipSpecialTokens)) this.toks.push(t);
    let end = this.toks.length;
    while (end > this.read && this.tokenizer.isByteToken(this.toks[end - 1])) end--;
    return this.advance(end);
  }

  /** Text not emitted yet (a dangling partial UTF-8 sequence shows as U+FFFD, as in a full decode). */
  flush(): string {
    return this.advance(this.toks.length);
  }

  /** The full decoded text so far. */
  get text(): string {
    return this.tokenizer.decode(this.ids, { skipSpecialTokens: this.skipSpecialTokens });
  }

  /** Emits the text of tokens [read, end); never retracts emitted text. */
  private advance(end: number): string {
    // Text that ends earlier than what is out already can only equal it or be a retraction.
    if (end <= this.read) return '';
    const text = this.tokenizer.decodeTokens(this.toks.slice(this.start, end));
    if (!text.startsWith(this.readText)) return '';
    const delta = text.slice(this.readText.length);
    this.read = end;
    this.readText = text;
    this.moveStart();
    return delta;
  }

  private moveStart(): void {
    if (!this.window) return;
    const lowest = Math.max(this.start + 1, this.read - MAX_START_PROBES);
    for (let s = this.read - 1; s >= lowest; s--) {
      if (this.canStartAt(s)) {
        this.start = s;
        this.readText = this.tokenizer.decodeTokens(this.toks.slice(s, this.read));
        return;
      }
    }
  }

  /**
   * A window may start at a token that is not a byte token (so no byte run crosses the start and
   * the window's first piece is fixed) and whose own text has a character no Strip removes (so
   * the decoder's start-of-text stripping ends inside it, in the window and in the full text).
   */
  private canStartAt(s: number): boolean {
    const t = this.toks[s];
    if (this.tokenizer.isByteToken(t)) return false;
    for (const c of this.tokenizer.decodeTokens([t])) if (!this.window!.stripChars.has(c)) return true;
    return false;
  }
}

interface WindowRule {
  stripChars: Set<string>;
}

/** The window rule for a tokenizer.json `decoder`, or undefined when pieces interact across tokens. */
function windowRule(decoder: unknown): WindowRule | undefined {
  if (decoder === null || decoder === undefined) return { stripChars: new Set() }; // tokens joined by spaces
  const steps = isObject(decoder) && decoder.type === 'Sequence' && Array.isArray(decoder.decoders) ? decoder.decoders : [decoder];
  const stripChars = new Set<string>();
  let fused = false;
  for (const d of steps) {
    if (!isObject(d)) return undefined;
    switch (d.type) {
      case 'ByteFallback': // byte runs are merged by TextTokenizer, never across the window start
      case 'Metaspace': // per piece; only the first piece is special, fixed by the window start
        break;
      case 'Fuse':
        fused = true;
        break;
      case 'Strip':
        if (typeof d.content !== 'string') return undefined;
        stripChars.add(d.content);
        break;
      case 'Replace': {
        // per piece before Fuse; after it, a pattern of one character cannot span two tokens
        const pattern = isObject(d.pattern) ? d.pattern.String : undefined;
        if (fused && !(typeof pattern === 'string' && [...pattern].length === 1)) return undefined;
        break;
      }
      default:
        return undefined;
    }
  }
  return { stripChars };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}
