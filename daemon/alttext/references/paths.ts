// Image paths in any text, and turning an image reference into candidate file paths. Works on
// POSIX-style URI paths (vscode.Uri.path), so it needs no vscode import and behaves the same for
// local and remote workspaces.
import { posix } from 'node:path';
import { IMAGE_EXTENSIONS } from '../../common/images.js';
import type { ImageReference } from './types.js';

const EXT = IMAGE_EXTENSIONS.join('|');
// A run of path characters ending in an image extension; quotes, brackets, parentheses and
// whitespace delimit it (spaces inside paths only count inside quotes, handled below).
const BARE_PATH = new RegExp(String.raw`(?<![\w./\\~@-])((?:\.{0,2}/)?[\w@~%+.,-]+(?:/[\w@~%+.,-]+)*\.(?:${EXT}))(?![\w/.-])`, 'gi');
const QUOTED_PATH = new RegExp(String.raw`(["'\`])((?:(?!\1)[^\n\\])+?\.(?:${EXT}))\1`, 'gi');

export function hasImageExtension(path: string): boolean {
  const clean = stripQueryAndHash(path).toLowerCase();
  return IMAGE_EXTENSIONS.some((ext) => clean.endsWith('.' + ext));
}

/** http:, https:, data:, protocol-relative //host: never read (hovers never fetch anything). */
export function isRemote(src: string): boolean {
  if (src.startsWith('//')) return true;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(src);
  return !!scheme && scheme[1].toLowerCase() !== 'file' && !/^[a-z]:[\\/]/i.test(src);
}

export function stripQueryAndHash(src: string): string {
  return src.replace(/[?#].*$/s, '');
}

/** Image-looking paths anywhere in a text (comments, strings, config files): quoted ones may hold spaces. */
export function findImagePaths(text: string): ImageReference[] {
  const found = new Map<number, ImageReference>();
  for (const m of text.matchAll(QUOTED_PATH)) {
    const start = m.index! + 1;
    const src = m[2];
    if (isRemote(src)) continue;
    found.set(start, { syntax: 'path', src, srcSpan: { start, end: start + src.length }, span: { start, end: start + src.length } });
  }
  for (const m of text.matchAll(BARE_PATH)) {
    const start = m.index!;
    const src = m[1];
    if (found.has(start) || [...found.values()].some((r) => r.span.start <= start && start < r.span.end)) continue;
    const before = text.slice(Math.max(0, start - 12), start);
    if (/[a-z][a-z0-9+.-]*:\/*$/i.test(before)) continue; // the tail of a URL
    found.set(start, { syntax: 'path', src, srcSpan: { start, end: start + src.length }, span: { start, end: start + src.length } });
  }
  return [...found.values()].sort((a, b) => a.span.start - b.span.start);
}

export interface ResolveContext {
  /** URI path of the document that holds the reference. */
  documentPath: string;
  /** URI path of the workspace folder holding the document, if any. */
  workspaceFolderPath?: string;
  /** Decode %xx escapes (URLs in Markdown and HTML are URL-encoded; paths in code are not). */
  urlEncoded: boolean;
}

/**
 * Candidate URI paths for an image reference, most likely first; the caller keeps the first that
 * exists. Remote and empty references give none.
 */
export function resolveImagePath(src: string, ctx: ResolveContext): string[] {
  if (!src || isRemote(src)) return [];
  let path = stripQueryAndHash(src);
  if (/^file:/i.test(path)) {
    try {
      return [decodeURIComponent(new URL(path).pathname)];
    } catch {
      return [];
    }
  }
  if (ctx.urlEncoded) {
    try {
      path = decodeURIComponent(path);
    } catch {
      // A stray % is a literal percent sign.
    }
  }
  path = path.replace(/\\/g, '/');
  if (/^[a-z]:\//i.test(path)) return [posix.normalize('/' + path)];
  if (!path) return [];
  const docDir = posix.dirname(ctx.documentPath);
  const candidates: string[] = [];
  if (path.startsWith('/')) {
    // Site-root paths in docs (`/img/x.png`) are relative to the workspace; otherwise absolute.
    if (ctx.workspaceFolderPath) candidates.push(posix.join(ctx.workspaceFolderPath, path));
    candidates.push(posix.normalize(path));
  } else if (path.startsWith('~/')) {
    return [];
  } else {
    candidates.push(posix.join(docDir, path));
    if (ctx.workspaceFolderPath && !path.startsWith('.')) candidates.push(posix.join(ctx.workspaceFolderPath, path));
  }
  return [...new Set(candidates)];
}
