// How the daemon gets an image: a path when the file is on the daemon's machine (a file: URI in the
// extension host, which runs where the workspace is), else the bytes read through VS Code, sent
// inline only when they fit in one message to the daemon.
import * as vscode from 'vscode';
import { checkInlineImage } from '../daemon/client/messageWriter.js';
import { imageMimeType } from '../daemon/client/shared.js';
import type { ImageRef } from '../daemon/protocol.js';
import { errorMessage } from '../daemon/client/shared.js';

export async function imageRefFor(uri: vscode.Uri): Promise<ImageRef> {
  if (uri.scheme === 'file') return { path: uri.fsPath };
  // Checked before reading: a huge remote file is not pulled over only to be refused.
  const { size } = await vscode.workspace.fs.stat(uri);
  try {
    checkInlineImage(size);
  } catch (e) {
    throw new Error(`${uri.path.split('/').pop()} cannot be sent to the model: ${errorMessage(e)}`, { cause: e });
  }
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
