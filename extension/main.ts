// Extension entry point. Activation is cheap (no daemon, no model): the daemon starts on the first
// request that needs it. See ctx.ts for what is owned where.
import * as vscode from 'vscode';
import { daemonProgram } from './client.js';
import { registerCluster } from './cluster.js';
import { registerAltTextCommands } from './commands/altText.js';
import { registerDownloadCommand } from './commands/download.js';
import { registerImageTaskCommands } from './commands/imageTasks.js';
import { chooseModelFolder, registerModelCommands } from './commands/model.js';
import { Ctx } from './ctx.js';
import { registerInspector } from './inspector/index.js';
import { startLanguageServer } from './lsp.js';
import { registerAltTextPaste } from './paste/altTextPaste.js';
import { migrateTokenSetting, registerTokenCommands } from './token/command.js';
import { errorMessage } from '../daemon/client/shared.js';

let ctx: Ctx | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('PaliGemma', { log: true });
  context.subscriptions.push(log);
  const c = new Ctx(context, log);
  ctx = c;
  context.subscriptions.push(c);

  c.registerCommand('paligemma.showLogs', () => log.show());
  c.registerCommand('paligemma.restartDaemon', () =>
    vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'Restarting the PaliGemma daemon' }, () => c.client.restart()),
  );
  registerImageTaskCommands(c);
  registerAltTextCommands(c);
  registerModelCommands(c);
  registerDownloadCommand(c);
  registerTokenCommands(c);
  c.registerCommand('paligemma.chooseModelFolder', () => chooseModelFolder(c));
  void migrateTokenSetting(c);
  c.client.pool = registerCluster(
    (name, handler) => c.registerCommand(name, handler),
    (d) => c.push(d),
    context.secrets,
    log,
  );

  try {
    c.inspector = registerInspector(context, c.client);
    // Diagnostics, quick fixes and hovers for documents.
    startLanguageServer(c);
    registerAltTextPaste(c);
    // Fail now, visibly, rather than on the first request.
    log.info(`daemon program: ${daemonProgram(context.extensionUri)}`);
  } catch (err) {
    const message = errorMessage(err);
    log.error(`activation failed: ${err instanceof Error && err.stack ? err.stack : message}`);
    c.setFatal(message);
    void vscode.window.showErrorMessage(`PaliGemma could not start: ${message}`, 'Show Logs').then((choice) => choice && log.show());
  }
}

export function deactivate(): void {
  ctx?.dispose();
  ctx = undefined;
}
