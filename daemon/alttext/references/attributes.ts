// Reading an attribute's value position out of its source text, shared by the HTML, JSX and MDX parsers
// (their parsers give the span of the whole attribute and the decoded value, not where the value is).
import type { Span } from './types.js';

/** Element names treated as images in MDX and JSX (`Image` is the Next.js / Astro component). */
export const JSX_IMAGE_ELEMENTS = new Set(['img', 'Image']);

export interface AttributeValueSite {
  /** Inside the quotes, or the bare value; undefined for an attribute without `=`. */
  valueSpan?: Span;
  quote: '"' | "'" | '';
}

/** `attr` is the span of `name = "value"` in `text`. */
export function attributeValueSite(text: string, attr: Span): AttributeValueSite {
  const source = text.slice(attr.start, attr.end);
  const eq = source.indexOf('=');
  if (eq < 0) return { quote: '' };
  let i = eq + 1;
  while (i < source.length && /\s/.test(source[i])) i++;
  const q = source[i];
  if ((q === '"' || q === "'") && source.length - i >= 2 && source[source.length - 1] === q) {
    return { valueSpan: { start: attr.start + i + 1, end: attr.end - 1 }, quote: q };
  }
  return { valueSpan: { start: attr.start + i, end: attr.end }, quote: '' };
}

/** role="presentation"/"none" or aria-hidden="true": the author says the image is decorative. */
export function isDecorativeMarkup(role: string | undefined, ariaHidden: string | boolean | undefined): boolean {
  const roles = (role ?? '').toLowerCase().split(/\s+/);
  if (roles.includes('presentation') || roles.includes('none')) return true;
  return ariaHidden === true || (typeof ariaHidden === 'string' && ariaHidden.trim().toLowerCase() === 'true');
}
