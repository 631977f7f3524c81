// The reference a paste inserts, with a placeholder alt, and the edit that later puts the model's
// text in its place: only while the reference stands in the document exactly as inserted (once),
// so a line the user changed meanwhile is left alone for the alt text diagnostic. No vscode here.
import { escapeAlt } from '../../daemon/alttext/escape.js';
import type { OffsetEdit } from '../../daemon/alttext/references/types.js';

/**
 * Says what belongs there, is flagged by the alt text diagnostic should it stay, and differs from
 * the built-in paste's "alt text", so the two edits can be told apart.
 */
export const PLACEHOLDER_ALT = 'image description';

export type PasteDialect = 'markdown' | 'mdx' | 'html';

export interface InsertedReference {
  text: string;
  /** Where the placeholder starts inside `text`. */
  altOffset: number;
}

/** `![image description](link)`, or `<img src="link" alt="image description">` in HTML. */
export function insertedReference(dialect: PasteDialect, link: string): InsertedReference {
  if (dialect === 'html') {
    const text = `<img src="${link.replace(/"/g, '%22')}" alt="${PLACEHOLDER_ALT}">`;
    return { text, altOffset: text.lastIndexOf(PLACEHOLDER_ALT) };
  }
  return { text: `![${PLACEHOLDER_ALT}](${link})`, altOffset: 2 };
}

/** Where `ref` stands in `document`, when it stands there exactly once. */
export function referenceOffset(document: string, ref: InsertedReference): number | undefined {
  const at = document.indexOf(ref.text);
  return at < 0 || document.indexOf(ref.text, at + 1) >= 0 ? undefined : at;
}

/** The edit replacing the placeholder with `alt` (escaped for the dialect); undefined when the reference was changed. */
export function placeholderEdit(document: string, ref: InsertedReference, alt: string, dialect: PasteDialect): OffsetEdit | undefined {
  const at = referenceOffset(document, ref);
  if (at === undefined) return undefined;
  const start = at + ref.altOffset;
  return { start, end: start + PLACEHOLDER_ALT.length, newText: escapeAlt(alt, dialect) };
}
