// From an image reference in a document to the image file on this machine. The server runs where
// the files are (as the daemon does), so only file: documents are resolved, and the daemon is
// given the path; remote URLs are never fetched.
import { stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { isRemote, resolveImagePath } from '../alttext/references/paths.js';
import type { ImageReference } from '../alttext/references/types.js';

export interface ResolvedImage {
  /** File system path, for the daemon. */
  path: string;
  /** file: URI, for the client (hover thumbnails, links). */
  uri: string;
  name: string;
}

/** The first candidate file that exists, or undefined (remote, computed, not found, not a file: document). */
export async function resolveImage(documentUri: string, ref: ImageReference, workspaceFolders: string[]): Promise<ResolvedImage | undefined> {
  if (!ref.src || isRemote(ref.src)) return undefined;
  let doc: URL;
  try {
    doc = new URL(documentUri);
  } catch {
    return undefined;
  }
  if (doc.protocol !== 'file:') return undefined;
  const documentPath = decodeURIComponent(doc.pathname);
  const folder = workspaceFolders
    .map((f) => uriPath(f))
    .filter((p): p is string => p !== undefined && (documentPath === p || documentPath.startsWith(p.endsWith('/') ? p : p + '/')))
    .sort((a, b) => b.length - a.length)[0];
  for (const candidate of resolveImagePath(ref.src, { documentPath, workspaceFolderPath: folder, urlEncoded: ref.syntax !== 'path' })) {
    const url = new URL('file:///');
    url.pathname = candidate;
    const path = fileURLToPath(url);
    if (await isFile(path)) return { path, uri: url.href, name: candidate.slice(candidate.lastIndexOf('/') + 1) };
  }
  return undefined;
}

function uriPath(uri: string): string | undefined {
  try {
    const u = new URL(uri);
    return u.protocol === 'file:' ? decodeURIComponent(u.pathname).replace(/\/$/, '') || '/' : undefined;
  } catch {
    return undefined;
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
