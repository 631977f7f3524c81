// Running one daemon request for the user: a cancellable notification that streams the answer as it
// is generated, and errors turned into messages that say what to do.
import { randomUUID } from 'node:crypto';
import * as vscode from 'vscode';
import { ResponseError } from 'vscode-jsonrpc';
import { ErrorCodes } from '../../daemon/protocol.js';
import type { DaemonClient } from '../client.js';

export class Cancelled extends Error {}

/**
 * `title` is the action ("Describing"), `subject` what it works on (a file name); the notification
 * reads "Describing: cat.png — a cat on a …" while the answer streams in.
 */
export async function runWithProgress<R>(
  client: DaemonClient,
  title: string,
  subject: string,
  request: (streamId: string, token: vscode.CancellationToken) => Promise<R>,
): Promise<R | undefined> {
  try {
    return await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title, cancellable: true },
      async (progress, token) => {
        const streamId = randomUUID();
        progress.report({ message: subject });
        const tokens = client.onTokens((n) => {
          if (n.streamId === streamId) progress.report({ message: `${subject} — ${n.text.length > 120 ? '…' + n.text.slice(-120) : n.text}` });
        });
        try {
          const result = await request(streamId, token);
          if (token.isCancellationRequested) throw new Cancelled();
          return result;
        } finally {
          tokens.dispose();
        }
      },
    );
  } catch (err) {
    if (isCancellation(err)) return undefined;
    await showError(err);
    return undefined;
  }
}

export function isCancellation(err: unknown): boolean {
  return err instanceof Cancelled || (err instanceof ResponseError && err.code === ErrorCodes.Cancelled);
}

export async function showError(err: unknown): Promise<void> {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof ResponseError && (err.code === ErrorCodes.ModelMissing || err.code === ErrorCodes.ModelInvalid)) {
    const choice = await vscode.window.showErrorMessage(`PaliGemma: ${message}`, 'Select Model…', 'Convert Checkpoint…');
    if (choice === 'Select Model…') await vscode.commands.executeCommand('paligemma.selectModel');
    if (choice === 'Convert Checkpoint…') await vscode.commands.executeCommand('paligemma.convertModel');
    return;
  }
  if (err instanceof ResponseError && err.code === ErrorCodes.ProviderUnavailable) {
    const choice = await vscode.window.showErrorMessage(`PaliGemma: ${message}`, 'Use CPU', 'Show Logs');
    if (choice === 'Use CPU') await vscode.workspace.getConfiguration('paligemma').update('executionProvider', 'cpu', vscode.ConfigurationTarget.Global);
    if (choice === 'Show Logs') await vscode.commands.executeCommand('paligemma.showLogs');
    return;
  }
  const choice = await vscode.window.showErrorMessage(`PaliGemma: ${message}`, 'Show Logs');
  if (choice) await vscode.commands.executeCommand('paligemma.showLogs');
}
