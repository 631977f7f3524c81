// One object owning what the extension runs: the daemon client, the status item, the log and the
// commands (rust-analyzer's ctx.ts pattern). A failed activation leaves every command in its
// "disabled" variant, which says why instead of failing silently.
import * as vscode from 'vscode';
import { DaemonClient } from './client.js';
import { handleErrorsWith, showError } from './commands/run.js';
import { RELOAD_MODEL_SETTINGS, RESTART_DAEMON_SETTINGS } from './config.js';
import { FirstRun, MODEL_COMMANDS, modelAvailability } from './firstRun.js';
import { DaemonStatus } from './status.js';
import { errorMessage } from '../daemon/client/shared.js';

/** What E's image inspector offers (extension/inspector/index.ts). */
export interface InspectorApi {
  open(image?: vscode.Uri, task?: import('../webview/messages.js').InspectorTask): Promise<void>;
}

export type CommandHandler = (...args: unknown[]) => unknown;

export class Ctx implements vscode.Disposable {
  readonly client: DaemonClient;
  readonly status: DaemonStatus;
  readonly firstRun: FirstRun;
  inspector: InspectorApi | undefined;
  private fatal: string | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    readonly extension: vscode.ExtensionContext,
    readonly log: vscode.LogOutputChannel,
  ) {
    this.client = new DaemonClient(extension.extensionUri, log);
    this.status = new DaemonStatus(this.client);
    this.firstRun = new FirstRun(this);
    handleErrorsWith(log, (action) => this.firstRun.run(action));
    this.disposables.push(this.client, this.status);
    this.disposables.push(vscode.workspace.onDidChangeConfiguration((e) => this.onConfigChange(e)));
  }

  /** Registers a command whose disabled variant (after a failed activation) explains the failure. */
  registerCommand(name: string, handler: CommandHandler): void {
    this.disposables.push(
      vscode.commands.registerCommand(name, async (...args: unknown[]) => {
        if (this.fatal !== undefined) {
          const choice = await vscode.window.showErrorMessage(`PaliGemma is not available: ${this.fatal}`, 'Show Logs');
          if (choice) this.log.show();
          return;
        }
        try {
          // With no model yet, the command waits for the user to get one (or stops quietly).
          if (MODEL_COMMANDS.has(name) && !(await this.firstRun.ensureModel())) return undefined;
          return await handler(...args);
        } catch (err) {
          this.log.error(`${name}: failed`);
          await showError(err);
          return undefined;
        }
      }),
    );
  }

  push(...disposables: vscode.Disposable[]): void {
    this.disposables.push(...disposables);
  }

  /** Activation failed after the commands were registered: keep them, in their disabled variant. */
  setFatal(message: string): void {
    this.fatal = message;
    this.status.showFatal(message);
  }

  private async onConfigChange(e: vscode.ConfigurationChangeEvent): Promise<void> {
    if (RELOAD_MODEL_SETTINGS.some((s) => e.affectsConfiguration(s))) {
      this.status.update();
      // A folder that is not there is reported by the status and the next command, not loaded.
      if (modelAvailability(this.client).kind !== 'missing') {
        this.client.reloadModel().catch((err: unknown) => this.log.error(`reloading the model: ${errorMessage(err)}`));
      }
    }
    if (RESTART_DAEMON_SETTINGS.some((s) => e.affectsConfiguration(s)) && this.client.connected) {
      const choice = await vscode.window.showInformationMessage(
        'PaliGemma: this setting takes effect when the daemon restarts (it is shared by every VS Code window).',
        'Restart now',
      );
      if (choice) await vscode.commands.executeCommand('paligemma.restartDaemon');
    }
  }

  dispose(): void {
    for (const d of this.disposables.splice(0).reverse()) d.dispose();
  }
}
