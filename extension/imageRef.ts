// How the daemon gets an image: a path when the file is on the daemon's machine (a file: URI in the
// extension host, which runs where the workspace is), else the bytes read through VS Code.
import * as vscode from 'vscode';
import type { ImageRef } from '../daemon/protocol.js';

const MIME: Record<string, string> = {
  png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp',
  bmp: 'image/bmp', tif: 'image/tiff', tiff: 'image/tiff', avif: 'image/avif', svg: 'image/svg+xml',
};

export function mimeTypeOf(uri: vscode.Uri): string | undefined {
  return MIME[uri.path.split('.').pop()?.toLowerCase() ?? ''];
}

export async function imageRefFor(uri: vscode.Uri): Promise<ImageRef> {
  if (uri.scheme === 'file') return { path: uri.fsPath };
  const bytes = await vscode.workspace.fs.readFile(uri);
  return { data: Buffer.from(bytes).toString('base64'), mimeType: mimeTypeOf(uri) };
}

export async function exists(uri: vscode.Uri): Promise<boolean> {
  try {
    const stat = await vscode.workspace.fs.stat(uri);
    return (stat.type & vscode.FileType.File) !== 0;
  } catch {
    return false;
  }
}
