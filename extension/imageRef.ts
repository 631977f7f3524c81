// How the daemon gets an image: a path when the file is on the daemon's machine (a file: URI in the
// extension host, which runs where the workspace is), else the bytes read through VS Code.
import * as vscode from 'vscode';
import { imageMimeType } from '../daemon/common/images.js';
import type { ImageRef } from '../daemon/protocol.js';

export async function imageRefFor(uri: vscode.Uri): Promise<ImageRef> {
  if (uri.scheme === 'file') return { path: uri.fsPath };
  const bytes = await vscode.workspace.fs.readFile(uri);
  return { data: Buffer.from(bytes).toString('base64'), mimeType: imageMimeType(uri.path) };
}

export async function exists(uri: vscode.Uri): Promise<boolean> {
  try {
    const stat = await vscode.workspace.fs.stat(uri);
    return (stat.type & vscode.FileType.File) !== 0;
  } catch {
    return false;
  }
}
