// From an image reference in a document to the image file on this machine, for hovers. The server
// runs where the files are (as the daemon does), so only file: documents are resolved (on POSIX
// paths), and the daemon is given the path; remote URLs are never fetched.
import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';
import { nodeFileAccess } from '../alttext/imageFiles.js';
import { isRemote, resolveImagePath } from '../alttext/references/paths.js';
import type { ImageReference } from '../alttext/references/types.js';
import { localPath } from './session.js';

export interface ResolvedImage {
  /** File system path, for the daemon. */
  path: string;
  /** file: URI, for the client (hover thumbnails, links). */
  uri: string;
  name: string;
}

/**
 * The first candidate file that exists, or undefined (remote, computed, not found, not a file:
 * document). `workspaceFolderPath`: where site-root paths (`/img/x.png`) start.
 */
export async function resolveImage(documentUri: string, ref: ImageReference, workspaceFolderPath: string | undefined): Promise<ResolvedImage | undefined> {
  if (!ref.src || isRemote(ref.src)) return undefined;
  const documentPath = localPath(documentUri);
  if (!documentPath) return undefined;
  for (const candidate of resolveImagePath(ref.src, { documentPath, workspaceFolderPath, urlEncoded: ref.syntax !== 'path' })) {
    const st = await nodeFileAccess.stat(candidate).catch(() => undefined);
    if (st?.type === 'file') return { path: candidate, uri: pathToFileURL(candidate).href, name: basename(candidate) };
  }
  return undefined;
}
