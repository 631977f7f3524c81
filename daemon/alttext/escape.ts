// Escaping generated alt text for the place it is written, so that the parser reads back exactly
// the text that was generated (the tests round-trip every dialect through its real parser).
import type { AltDialect } from './references/types.js';

/** One line, single spaces: alt text is an attribute, not a paragraph. */
export function normalizeAltText(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/**
 * Inside the brackets of `![...]`: everything Markdown would read as syntax gets a backslash, `|`
 * included (a GFM table cell would end there; `\|` reads back as `|` everywhere).
 */
export function escapeMarkdownLabel(text: string, mdx = false): string {
  const special = mdx ? /[\\[\]*_`<>{}|]/g : /[\\[\]*_`<>|]/g;
  return text.replace(special, '\\$&').replace(/&(?=#?[a-z0-9]+;)/gi, '\\&'); // only an ampersand that would start a character reference
}

/** An HTML attribute value in the given quotes. */
export function escapeHtmlAttribute(text: string, quote: '"' | "'"): string {
  const escaped = text.replace(/&/g, '&amp;');
  return quote === '"' ? escaped.replace(/"/g, '&quot;') : escaped.replace(/'/g, '&#39;');
}

/**
 * A JSX string attribute value. JSX strings have no backslash escapes, but compilers decode HTML
 * character references in them, so quotes and ampersands become references; braces are literal there.
 */
export function escapeJsxAttribute(text: string, quote: '"' | "'"): string {
  const escaped = text.replace(/&/g, '&amp;');
  return quote === '"' ? escaped.replace(/"/g, '&quot;') : escaped.replace(/'/g, '&apos;');
}

export function escapeAlt(text: string, dialect: AltDialect, quote: '"' | "'" = '"'): string {
  switch (dialect) {
    case 'markdown':
      return escapeMarkdownLabel(text);
    case 'mdx':
      return escapeMarkdownLabel(text, true);
    case 'html':
      return escapeHtmlAttribute(text, quote);
    case 'jsx':
      return escapeJsxAttribute(text, quote);
  }
}
