// url(...) references in CSS (and SCSS / Less, whose url() tokens are the same), found with css-tree's
// CSS Syntax 3 tokenizer so that comments and strings are handled as a browser would.
import * as T from 'css-tree/tokenizer';
import { string as cssString, url as cssUrl } from 'css-tree/utils';
import type { ImageReference } from './types.js';

export function parseCssImages(text: string): ImageReference[] {
  const tokens: { type: number; start: number; end: number }[] = [];
  T.tokenize(text, (type, start, end) => {
    if (type !== T.WhiteSpace && type !== T.Comment) tokens.push({ type, start, end });
  });
  const found: ImageReference[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.type === T.Url) {
      // url(a.png) and url( "a.png" ) are one token in the spec when unquoted.
      const source = text.slice(t.start, t.end);
      const open = source.indexOf('(') + 1;
      const inner = source.slice(open, source.endsWith(')') ? -1 : undefined);
      const lead = inner.length - inner.trimStart().length;
      const value = inner.trim();
      found.push({
        syntax: 'css',
        src: cssUrl.decode(source),
        srcSpan: { start: t.start + open + lead, end: t.start + open + lead + value.length },
        span: { start: t.start, end: t.end },
      });
    } else if (t.type === T.Function && /^url\($/i.test(text.slice(t.start, t.end))) {
      const str = tokens[i + 1];
      const close = tokens[i + 2];
      if (str?.type !== T.String) continue;
      const end = close?.type === T.RightParenthesis ? close.end : str.end;
      found.push({
        syntax: 'css',
        src: cssString.decode(text.slice(str.start, str.end)),
        srcSpan: { start: str.start + 1, end: str.end - 1 },
        span: { start: t.start, end },
      });
    }
  }
  return found.filter((r) => r.src && !r.src.startsWith('data:'));
}
