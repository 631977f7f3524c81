// Images in Markdown and MDX: `![alt](src)`, `![alt][ref]` + `[ref]: src`, HTML `<img>` inside Markdown,
// and `<img>` JSX elements in MDX. Values (decoded alt text and URLs) come from the mdast tree; the exact
// source spans of the alt label and the destination come from micromark's token events, which the
// tree does not keep.
import { fromMarkdown } from 'mdast-util-from-markdown';
import { mdxFromMarkdown } from 'mdast-util-mdx';
import { parse, postprocess, preprocess } from 'micromark';
import { mdxjs } from 'micromark-extension-mdxjs';
import type { Definition, Image, ImageReference as MdImageReference, Nodes } from 'mdast';
import type { MdxJsxAttribute, MdxJsxExpressionAttribute, MdxJsxFlowElement, MdxJsxTextElement } from 'mdast-util-mdx-jsx';
import { JSX_IMAGE_ELEMENTS, attributeValueSite, isDecorativeMarkup } from './attributes.js';
import { parseHtmlImages } from './html.js';
import type { ImageReference, Span } from './types.js';

export interface MarkdownParseOptions {
  mdx?: boolean;
}

/** The Markdown convention for "this image is decorative": an HTML comment right after the image. */
export const MARKDOWN_DECORATIVE_MARKER = '<!-- decorative -->';
/** MDX has no HTML comments; its comments are empty expressions. */
export const MDX_DECORATIVE_MARKER = '{/* decorative */}';
const MARKDOWN_DECORATIVE_RE = /^[ \t]*<!--\s*decorative\s*-->/i;
const MDX_DECORATIVE_RE = /^[ \t]*\{\s*\/\*\s*decorative\s*\*\/\s*\}/i;

interface ImageTokens {
  start: number;
  end: number;
  labelText?: Span;
  destination?: Span;
  reference?: Span;
}
interface DefinitionTokens {
  start: number;
  destination?: Span;
}

export function parseMarkdownImages(text: string, options: MarkdownParseOptions = {}): ImageReference[] {
  const mdx = options.mdx ?? false;
  const { images, definitions } = scanTokens(text, mdx);
  const tree = fromMarkdown(text, mdx ? { extensions: [mdxjs()], mdastExtensions: [mdxFromMarkdown()] } : undefined);

  const definitionNodes = new Map<string, Definition>();
  walk(tree, (node) => {
    if (node.type === 'definition' && !definitionNodes.has(node.identifier)) definitionNodes.set(node.identifier, node);
  });

  const found: ImageReference[] = [];
  const referenced = new Set<string>();
  walk(tree, (node) => {
    switch (node.type) {
      case 'image': {
        const image = inlineImage(node, images, text, mdx);
        if (image) found.push(image);
        break;
      }
      case 'imageReference': {
        const def = definitionNodes.get(node.identifier);
        const image = def && referenceImage(node, def, images, definitions, text, mdx);
        if (image) {
          found.push(image);
          referenced.add(node.identifier);
        }
        break;
      }
      case 'html':
        if (node.position?.start.offset !== undefined && node.position.end.offset !== undefined) {
          const { offset: start } = node.position.start;
          const source = text.slice(start, node.position.end.offset);
          if (/<img\b/i.test(source)) {
            found.push(...parseHtmlImages(source, { fragment: true, base: start, documentText: text }));
          }
        }
        break;
      case 'mdxJsxFlowElement':
      case 'mdxJsxTextElement': {
        const image = mdxImage(node, text);
        if (image) found.push(image);
        break;
      }
    }
  });

  // A definition is an image location only when an image uses it (others are plain links).
  for (const [id, def] of definitionNodes) {
    const tokens = def.position && definitions.get(def.position.start.offset!);
    if (!referenced.has(id) || !tokens?.destination || !def.position) continue;
    found.push({
      syntax: 'markdown-definition',
      src: def.url,
      srcSpan: tokens.destination,
      span: { start: def.position.start.offset!, end: def.position.end.offset! },
    });
  }
  return found.sort((a, b) => a.span.start - b.span.start);
}

function inlineImage(node: Image, images: Map<number, ImageTokens>, text: string, mdx: boolean): ImageReference | undefined {
  const tokens = node.position && images.get(node.position.start.offset!);
  if (!tokens?.labelText || !tokens.destination || !node.url) return undefined;
  return {
    syntax: 'markdown-inline',
    src: node.url,
    srcSpan: tokens.destination,
    span: { start: tokens.start, end: tokens.end },
    alt: markdownAlt(node.alt ?? '', tokens, text, mdx),
  };
}

function referenceImage(
  node: MdImageReference,
  def: Definition,
  images: Map<number, ImageTokens>,
  definitions: Map<number, DefinitionTokens>,
  text: string,
  mdx: boolean,
): ImageReference | undefined {
  const tokens = node.position && images.get(node.position.start.offset!);
  const defTokens = def.position && definitions.get(def.position.start.offset!);
  if (!tokens?.labelText || !defTokens?.destination || !def.url) return undefined;
  const alt = markdownAlt(node.alt ?? '', tokens, text, mdx);
  if (node.referenceType !== 'full') {
    alt.reference = { type: node.referenceType, rawLabel: text.slice(tokens.labelText.start, tokens.labelText.end) };
  }
  return {
    syntax: 'markdown-reference',
    src: def.url,
    srcSpan: defTokens.destination,
    span: { start: tokens.start, end: tokens.end },
    alt,
  };
}

function markdownAlt(value: string, tokens: ImageTokens, text: string, mdx: boolean): NonNullable<ImageReference['alt']> {
  const after = text.slice(tokens.end, tokens.end + 80);
  return {
    dialect: mdx ? 'mdx' : 'markdown',
    value,
    dynamic: false,
    valueSpan: tokens.labelText,
    insertAt: tokens.labelText!.start,
    decorative: (mdx ? MDX_DECORATIVE_RE : MARKDOWN_DECORATIVE_RE).test(after),
  };
}

function mdxImage(node: MdxJsxFlowElement | MdxJsxTextElement, text: string): ImageReference | undefined {
  if (!node.name || !JSX_IMAGE_ELEMENTS.has(node.name) || !node.position) return undefined;
  const attrs = node.attributes.filter((a): a is MdxJsxAttribute => a.type === 'mdxJsxAttribute');
  const hasSpread = node.attributes.some((a: MdxJsxAttribute | MdxJsxExpressionAttribute) => a.type === 'mdxJsxExpressionAttribute');
  const find = (name: string) => attrs.find((a) => a.name === name);
  const spanOf = (a: MdxJsxAttribute) => ({ start: a.position!.start.offset!, end: a.position!.end.offset! });
  const literal = (a: MdxJsxAttribute | undefined) => (typeof a?.value === 'string' ? a.value : undefined);

  const srcAttr = find('src');
  const src = literal(srcAttr);
  if (!srcAttr?.position || !src) return undefined;
  const srcSite = attributeValueSite(text, spanOf(srcAttr));
  const altAttr = find('alt');
  const altSpan = altAttr?.position ? spanOf(altAttr) : undefined;
  const altSite = altSpan ? attributeValueSite(text, altSpan) : undefined;
  const altExpr = altAttr && altAttr.value !== null && typeof altAttr.value === 'object' ? altAttr.value.value : undefined;
  const staticExpr = altExpr !== undefined ? stringLiteralExpression(altExpr) : undefined;
  const ariaHidden = find('aria-hidden');
  const ariaHiddenValue =
    ariaHidden === undefined ? undefined : ariaHidden.value == null ? true : typeof ariaHidden.value === 'string' ? ariaHidden.value : ariaHidden.value.value.trim();
  const positioned = attrs.filter((a) => a.position);
  const lastAttrEnd = Math.max(...positioned.map((a) => a.position!.end.offset!));
  return {
    syntax: 'mdx-jsx',
    src,
    srcSpan: srcSite.valueSpan ?? spanOf(srcAttr),
    span: { start: node.position.start.offset!, end: tagEnd(text, node.position.start.offset!, node.position.end.offset!) },
    alt: {
      dialect: 'jsx',
      value: altAttr === undefined ? undefined : altExpr !== undefined ? staticExpr : (literal(altAttr) ?? ''),
      dynamic: (altExpr !== undefined && staticExpr === undefined) || (altAttr === undefined && hasSpread),
      valueSpan: altSite?.quote && altExpr === undefined ? altSite.valueSpan : undefined,
      quote: altExpr === undefined ? altSite?.quote : '',
      attributeSpan: altSpan,
      valueless: altAttr !== undefined && altAttr.value == null,
      insertAt: lastAttrEnd,
      decorative: isDecorativeMarkup(literal(find('role')), ariaHiddenValue),
    },
  };
}

/** `{""}`, `{'x'}`: an expression that is only a string literal has a static value. */
export function stringLiteralExpression(expression: string): string | undefined {
  const m = /^\s*(["'])((?:(?!\1)[^\\\n]|\\.)*)\1\s*$/.exec(expression);
  if (!m) return undefined;
  return m[2].replace(/\\(.)/g, '$1');
}

/** The end of the start tag of an element that may have children. */
function tagEnd(text: string, start: number, end: number): number {
  // Quote-aware scan for the first `>` of the start tag; attribute values may contain `>`.
  let quote = '';
  let depth = 0;
  for (let i = start; i < end; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '{') depth++;
    else if (c === '}') depth--;
    else if (c === '>' && depth === 0) return i + 1;
  }
  return end;
}

function scanTokens(text: string, mdx: boolean) {
  const events = postprocess(
    parse(mdx ? { extensions: [mdxjs()] } : undefined)
      .document()
      .write(preprocess()(text, undefined, true)),
  );
  const images = new Map<number, ImageTokens>();
  const definitions = new Map<number, DefinitionTokens>();
  const stack: ImageTokens[] = [];
  let definition: DefinitionTokens | undefined;
  for (const [kind, token] of events) {
    const span = { start: token.start.offset, end: token.end.offset };
    const top = stack[stack.length - 1];
    if (kind === 'enter') {
      switch (token.type) {
        case 'image':
          stack.push({ start: span.start, end: span.end });
          break;
        case 'labelText':
          if (top && !top.labelText) top.labelText = span;
          break;
        case 'resourceDestinationString':
          if (top && !top.destination) top.destination = span;
          break;
        case 'referenceString':
          if (top && !top.reference) top.reference = span;
          break;
        case 'definition':
          definition = { start: span.start };
          break;
        case 'definitionDestinationString':
          if (definition) definition.destination = span;
          break;
      }
    } else if (token.type === 'image') {
      const done = stack.pop();
      if (done) images.set(done.start, done);
    } else if (token.type === 'definition' && definition) {
      definitions.set(definition.start, definition);
      definition = undefined;
    }
  }
  return { images, definitions };
}

function walk(node: Nodes, visit: (node: Nodes) => void): void {
  visit(node);
  if ('children' in node) for (const child of node.children) walk(child as Nodes, visit);
}
