// The text edits that set an image's alt text or mark it decorative. They only ever touch the alt
// label / attribute (and, for decorative images, add a role or a marker comment): never the path.
import { MARKDOWN_DECORATIVE_MARKER, MDX_DECORATIVE_MARKER } from './references/markdown.js';
import type { ImageReference, OffsetEdit } from './references/types.js';
import { escapeAlt, normalizeAltText } from './escape.js';

export class AltEditError extends Error {}

export function altTextEdits(image: ImageReference, altText: string): OffsetEdit[] {
  const site = image.alt;
  if (!site) throw new AltEditError(`a ${image.syntax} image reference has no alt text`);
  if (site.dynamic) throw new AltEditError('the alt text is computed by an expression; edit it by hand');
  const alt = normalizeAltText(altText);
  const edits: OffsetEdit[] = [];
  if (site.dialect === 'markdown' || site.dialect === 'mdx') {
    const label = site.valueSpan!;
    edits.push({ start: label.start, end: label.end, newText: escapeAlt(alt, site.dialect) });
    // `![label][]` / `![label]` use the label to find the definition: keep it as an explicit reference.
    if (site.reference?.type === 'collapsed') {
      edits.push({ start: image.span.end - 1, end: image.span.end - 1, newText: site.reference.rawLabel });
    } else if (site.reference?.type === 'shortcut') {
      edits.push({ start: image.span.end, end: image.span.end, newText: `[${site.reference.rawLabel}]` });
    }
  } else if (site.valueSpan && site.quote) {
    edits.push({ start: site.valueSpan.start, end: site.valueSpan.end, newText: escapeAlt(alt, site.dialect, site.quote) });
  } else if (site.attributeSpan) {
    edits.push({ ...site.attributeSpan, newText: `alt="${escapeAlt(alt, site.dialect, '"')}"` });
  } else {
    edits.push({ start: site.insertAt, end: site.insertAt, newText: ` alt="${escapeAlt(alt, site.dialect, '"')}"` });
  }
  return checked(image, edits);
}

/** Empty alt text plus the marker that says "decorative on purpose". */
export function decorativeEdits(image: ImageReference): OffsetEdit[] {
  const site = image.alt;
  if (!site) throw new AltEditError(`a ${image.syntax} image reference has no alt text`);
  const edits = site.value === '' ? [] : altTextEdits({ ...image, alt: { ...site, dynamic: false } }, '');
  if (!site.decorative) {
    if (site.dialect === 'markdown' || site.dialect === 'mdx') {
      const marker = site.dialect === 'mdx' ? MDX_DECORATIVE_MARKER : MARKDOWN_DECORATIVE_MARKER;
      edits.push({ start: image.span.end, end: image.span.end, newText: marker });
    } else {
      edits.push({ start: site.insertAt, end: site.insertAt, newText: ' role="presentation"' });
    }
  }
  return checked(image, edits);
}

function checked(image: ImageReference, edits: OffsetEdit[]): OffsetEdit[] {
  const src = image.srcSpan;
  for (const e of edits) {
    const overlaps = e.start === e.end ? e.start > src.start && e.start < src.end : e.start < src.end && e.end > src.start;
    if (overlaps) throw new AltEditError('internal error: an alt text edit would change the image path');
  }
  return normalizeEdits(edits);
}

/**
 * Sorted, with edits that touch merged into one (VS Code rejects a WorkspaceEdit whose ranges
 * overlap, and the order of two inserts at one offset must be kept). Overlapping edits are a bug.
 */
export function normalizeEdits(edits: OffsetEdit[]): OffsetEdit[] {
  const sorted = edits.map((e, i) => ({ ...e, i })).sort((a, b) => a.start - b.start || a.end - b.end || a.i - b.i);
  const out: OffsetEdit[] = [];
  for (const { start, end, newText } of sorted) {
    const last = out[out.length - 1];
    if (last && start < last.end) throw new AltEditError(`overlapping edits at ${start}`);
    if (last && start === last.end) {
      last.end = end;
      last.newText += newText;
      continue;
    }
    out.push({ start, end, newText });
  }
  return out;
}

/** The text after the edits (edits are on offsets of `text`). */
export function applyEdits(text: string, edits: OffsetEdit[]): string {
  let result = '';
  let at = 0;
  for (const e of normalizeEdits(edits)) {
    result += text.slice(at, e.start) + e.newText;
    at = e.end;
  }
  return result + text.slice(at);
}
