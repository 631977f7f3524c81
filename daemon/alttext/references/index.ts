// Which parser reads which VS Code language, and the one entry point the extension uses.
import { parseCssImages } from './css.js';
import { parseHtmlImages } from './html.js';
import { parseJsxImages } from './jsx.js';
import { parseMarkdownImages } from './markdown.js';
import { findImagePaths } from './paths.js';
import type { ImageReference } from './types.js';
import { errorMessage } from '../../common/errors.js';

export type ImageParser = 'markdown' | 'mdx' | 'html' | 'jsx' | 'tsx' | 'css';

const PARSERS: Record<string, ImageParser> = {
  markdown: 'markdown',
  mdx: 'mdx',
  html: 'html',
  vue: 'html',
  svelte: 'html',
  astro: 'html',
  php: 'html',
  javascriptreact: 'jsx',
  javascript: 'jsx',
  typescriptreact: 'tsx',
  css: 'css',
  scss: 'css',
  less: 'css',
};

// For documents whose language id says nothing (stock VS Code opens `.mdx` as plain text) and for
// files read from disk by the CLI.
const PARSERS_BY_EXTENSION: Record<string, ImageParser> = {
  md: 'markdown',
  markdown: 'markdown',
  mdx: 'mdx',
  html: 'html',
  htm: 'html',
  vue: 'html',
  svelte: 'html',
  astro: 'html',
  php: 'html',
  jsx: 'jsx',
  js: 'jsx',
  mjs: 'jsx',
  tsx: 'tsx',
  css: 'css',
  scss: 'css',
  less: 'css',
};

/** The parser for a document: by its language id, else by the extension of its path. */
export function parserFor(languageId: string | undefined, path?: string): ImageParser | undefined {
  const byLanguage = languageId ? PARSERS[languageId] : undefined;
  if (byLanguage || !path) return byLanguage;
  const ext = /\.([^./\\]+)$/.exec(path)?.[1]?.toLowerCase();
  return ext ? PARSERS_BY_EXTENSION[ext] : undefined;
}

export interface ParsedImages {
  references: ImageReference[];
  /** Set when the document does not parse (e.g. an MDX syntax error); references is then empty. */
  error?: string;
}

/** The structured image references of a document (the ones that can carry alt text, plus CSS url()). */
export function parseImages(text: string, languageId: string | undefined, path?: string): ParsedImages {
  const parser = parserFor(languageId, path);
  if (!parser) return { references: [] };
  try {
    switch (parser) {
      case 'markdown':
        return { references: parseMarkdownImages(text) };
      case 'mdx':
        return { references: parseMarkdownImages(text, { mdx: true }) };
      case 'html':
        return { references: parseHtmlImages(text) };
      case 'jsx':
        return { references: parseJsxImages(text) };
      case 'tsx':
        return { references: parseJsxImages(text, { typescript: true }) };
      case 'css':
        return { references: parseCssImages(text) };
    }
  } catch (err) {
    return { references: [], error: errorMessage(err) };
  }
}

/** Everything a hover may point at: structured references, then bare paths outside them. */
export function hoverableImages(text: string, languageId: string): ImageReference[] {
  const { references } = parseImages(text, languageId);
  const structured = references.filter((r) => r.src);
  const inside = (offset: number) => structured.some((r) => r.span.start <= offset && offset < r.span.end);
  return [...structured, ...findImagePaths(text).filter((p) => !inside(p.span.start))];
}

/** The reference under `offset` (innermost span), if any. */
export function referenceAt(references: ImageReference[], offset: number): ImageReference | undefined {
  const hits = references.filter((r) => (r.span.start <= offset && offset <= r.span.end) || (r.srcSpan.start <= offset && offset <= r.srcSpan.end));
  return hits.sort((a, b) => a.span.end - a.span.start - (b.span.end - b.span.start))[0];
}

export type { ImageReference, Span, AltSite, OffsetEdit } from './types.js';
