// Diagnostics, quick fixes and hovers for documents come from `paligemma lsp` (daemon/lsp/), the
// language server other editors use too, through vscode-languageclient. The extension keeps its
// commands, inspector and status bar; the server forwards model runs to the shared daemon.
import * as vscode from 'vscode';
import { CloseAction, ErrorAction, LanguageClient, TransportKind, type LanguageClientOptions, type ServerOptions } from 'vscode-languageclient/node';
import type { LspInitializationOptions, LspTrustParams } from '../daemon/protocol.js';
import { LspTrust } from '../daemon/protocol.js';
import { daemonProgram } from './client.js';
import { readConfig } from './config.js';
import type { Ctx } from './ctx.js';
import { MAX_RESTARTS, RESTART_WINDOW_MS, RestartBudget } from './lspRestarts.js';
import { errorMessage } from '../daemon/client/shared.js';

/** Commands the server's hovers link to (registered by this extension). */
const HOVER_COMMANDS = ['paligemma.describeFromHover', 'paligemma.openInspector'];

export function startLanguageServer(ctx: Ctx): LanguageClient {
  const program = daemonProgram(ctx.extension.extensionUri);
  const serverOptions: ServerOptions = {
    // The extension host's own executable is Electron on the desktop: run it as plain Node.
    command: readConfig().nodePath || process.execPath,
    args: [program, 'lsp'],
    transport: TransportKind.stdio,
    options: { env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' } },
  };
  const budget = new RestartBudget();
  // A function: a restarted server is told the trust of that moment.
  const initializationOptions = (): LspInitializationOptions => ({
    trusted: vscode.workspace.isTrusted,
    thumbnails: true,
    hoverCommands: HOVER_COMMANDS,
  });
  const clientOptions: LanguageClientOptions = {
    // Every text document: hovers work on image paths in any file; the server checks alt text only
    // in the languages of paligemma.altText.fileTypes (and .mdx, whatever its language id).
    documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
    initializationOptions,
    outputChannel: ctx.log,
    markdown: { isTrusted: { enabledCommands: HOVER_COMMANDS }, supportHtml: false },
    errorHandler: {
      error: () => ({ action: ErrorAction.Continue }),
      closed: () => {
        if (budget.crashed()) return { action: CloseAction.Restart, handled: true };
        const message = `PaliGemma: the alt-text and hover server stopped ${MAX_RESTARTS + 1} times in ${RESTART_WINDOW_MS / 60_000} minutes and is not restarted. Run "PaliGemma: Restart Language Server" after looking at the log.`;
        void vscode.window.showErrorMessage(message, 'Show Logs').then((choice) => choice && ctx.log.show());
        return { action: CloseAction.DoNotRestart, handled: true };
      },
    },
  };
  const client = new LanguageClient('paligemma', 'PaliGemma', serverOptions, clientOptions);

  const languagesContext = () => void vscode.commands.executeCommand('setContext', 'paligemma.altTextLanguages', readConfig().altText.fileTypes);
  languagesContext();
  ctx.push(
    vscode.workspace.onDidChangeConfiguration((e) => e.affectsConfiguration('paligemma.altText') && languagesContext()),
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      const params: LspTrustParams = { trusted: true };
      if (client.isRunning()) void client.sendNotification(LspTrust.method, params);
    }),
    { dispose: () => void client.dispose().catch(() => undefined) },
  );
  ctx.registerCommand('paligemma.restartLanguageServer', async () => {
    budget.reset();
    await client.restart();
  });
  client.start().catch((err: unknown) => {
    const message = errorMessage(err);
    ctx.log.error(`the language server did not start: ${message}`);
  });
  return client;
}
