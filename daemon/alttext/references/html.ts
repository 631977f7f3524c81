// <img> elements in HTML (whole documents, or fragments embedded in Markdown), located with parse5.
import { parse, parseFragment } from 'parse5';
import type { DefaultTreeAdapterTypes } from 'parse5';
import { attributeValueSite, isDecorativeMarkup } from './attributes.js';
import type { ImageReference } from './types.js';

type Node = DefaultTreeAdapterTypes.Node;
type Element = DefaultTreeAdapterTypes.Element;

export interface HtmlParseOptions {
  /** Parse as a fragment (HTML inside Markdown) rather than a document. */
  fragment?: boolean;
  /** Offset of `html` inside the whole document text, added to every span. */
  base?: number;
  /** The whole document text (spans are computed against it); defaults to `html`. */
  documentText?: string;
}

export function parseHtmlImages(html: string, options: HtmlParseOptions = {}): ImageReference[] {
  const base = options.base ?? 0;
  const text = options.documentText ?? html;
  const root = options.fragment ? parseFragment(html, { sourceCodeLocationInfo: true }) : parse(html, { sourceCodeLocationInfo: true });
  const images: ImageReference[] = [];
  const visit = (node: Node): void => {
    if ('tagName' in node && node.tagName === 'img') {
      const image = imageFromElement(node, text, base);
      if (image) images.push(image);
    }
    if ('childNodes' in node) for (const child of node.childNodes) visit(child);
    if ('content' in node && node.content) visit(node.content as Node);
  };
  visit(root as Node);
  return images;
}

function imageFromElement(el: Element, text: string, base: number): ImageReference | undefined {
  const loc = el.sourceCodeLocation;
  const attrLocs = loc?.attrs;
  const start = loc?.startTag ?? loc;
  if (!loc || !attrLocs || !start) return undefined;
  const value = (name: string) => el.attrs.find((a) => a.name === name)?.value;
  const spanOf = (name: string) => {
    const l = attrLocs[name];
    return l ? { start: base + l.startOffset, end: base + l.endOffset } : undefined;
  };
  const src = value('src');
  const srcAttr = spanOf('src');
  if (!src || !srcAttr) return undefined;
  const srcSite = attributeValueSite(text, srcAttr);
  const insertAt = Math.max(...Object.values(attrLocs).map((l) => base + l.endOffset));
  const altAttr = spanOf('alt');
  const altSite = altAttr ? attributeValueSite(text, altAttr) : undefined;
  return {
    syntax: 'html',
    src,
    srcSpan: srcSite.valueSpan ?? srcAttr,
    span: { start: base + start.startOffset, end: base + start.endOffset },
    alt: {
      dialect: 'html',
      value: value('alt'),
      dynamic: false,
      valueSpan: altSite?.quote ? altSite.valueSpan : undefined,
      quote: altSite?.quote,
      attributeSpan: altAttr,
      valueless: altSite !== undefined && altSite.valueSpan === undefined,
      insertAt,
      decorative: isDecorativeMarkup(value('role'), value('aria-hidden')),
    },
  };
}
