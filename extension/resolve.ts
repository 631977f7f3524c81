// From an image reference in a document to the image file's URI (the first candidate that exists).
import * as vscode from 'vscode';
import { isRemote, resolveImagePath } from '../daemon/alttext/references/paths.js';
import type { ImageReference } from '../daemon/alttext/references/types.js';
import { exists } from './imageRef.js';

export async function resolveReference(document: vscode.TextDocument, ref: ImageReference): Promise<vscode.Uri | undefined> {
  return resolveSrc(document.uri, ref.src, ref.syntax !== 'path');
}

export async function resolveSrc(documentUri: vscode.Uri, src: string, urlEncoded: boolean): Promise<vscode.Uri | undefined> {
  if (!src || isRemote(src)) return undefined;
  const folder = vscode.workspace.getWorkspaceFolder(documentUri);
  // Untitled documents have no folder of their own: resolve against the first workspace folder.
  const base = documentUri.scheme === 'untitled' ? vscode.workspace.workspaceFolders?.[0]?.uri : undefined;
  const documentPath = base ? base.path + '/untitled' : documentUri.path;
  const root = folder ?? (base ? { uri: base } : undefined);
  const scheme = base ?? documentUri;
  for (const path of resolveImagePath(src, { documentPath, workspaceFolderPath: root?.uri.path, urlEncoded })) {
    const uri = scheme.with({ path, query: '', fragment: '' });
    if (await exists(uri)) return uri;
  }
  return undefined;
}
