// Running one daemon request for the user: a cancellable notification that streams the answer as it
// is generated, and errors turned into messages that say what to do.
import { randomUUID } from 'node:crypto';
import * as vscode from 'vscode';
import { ResponseError } from 'vscode-jsonrpc';
import { ErrorCodes } from '../../daemon/protocol.js';
import type { DaemonClient } from '../client.js';
import { readConfig } from '../config.js';
import { ACTION_LABELS, userError, type UserAction } from '../userErrors.js';

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
    return await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, async (progress, token) => {
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
    });
  } catch (err) {
    if (isCancellation(err)) return undefined;
    await showError(err, subject);
    return undefined;
  }
}

export function isCancellation(err: unknown): boolean {
  return err instanceof Cancelled || (err instanceof ResponseError && err.code === ErrorCodes.Cancelled);
}

let errorLog: vscode.LogOutputChannel | undefined;
let errorActions: ((action: UserAction) => Promise<unknown>) | undefined;

/** Set at activation: where the raw error goes, and what the buttons on an error message do. */
export function handleErrorsWith(log: vscode.LogOutputChannel, run: (action: UserAction) => Promise<unknown>): void {
  errorLog = log;
  errorActions = run;
}

/**
 * Shows an error in the user's words (userErrors.ts), with its buttons; the daemon's own text goes
 * to the log. `file` is the image or document the request was about.
 */
export async function showError(err: unknown, file?: string): Promise<void> {
  const cfg = readConfig();
  const e = userError(err, { file, modelPath: cfg.modelPath || undefined, executionProvider: cfg.executionProvider });
  const raw =
    err instanceof ResponseError
      ? `${err.message} (code ${err.code}${err.data ? `, ${JSON.stringify(err.data)}` : ''})`
      : err instanceof Error
        ? (err.stack ?? err.message)
        : String(err);
  errorLog?.error(`${file ? `${file}: ` : ''}${raw}`);
  if (!e) return;
  const actions = e.actions.includes('showLogs') ? e.actions : [...e.actions, 'showLogs' as const];
  const labels = actions.map((a) => ACTION_LABELS[a]);
  const choice = await vscode.window.showErrorMessage(e.message, ...labels);
  const action = actions[labels.indexOf(choice ?? '')];
  if (action) await errorActions?.(action);
}
