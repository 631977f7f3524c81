// The first run: whether a model is there at all, and when a command needs one that is not, one
// notification with Download… / Choose Folder… / Convert Checkpoint…; once the chosen way ends
// with a model configured, the command that asked goes on (and loads it).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { downloadAndUse } from './commands/download.js';
import { chooseModelFolder, convertCheckpoint, modelsDir } from './commands/model.js';
import type { DaemonClient } from './client.js';
import { updateSetting } from './config.js';
import type { Ctx } from './ctx.js';
import { ACTION_LABELS, missingModelFolder, NO_MODEL_MESSAGE, type UserAction, type UserError } from './userErrors.js';

export type Availability = { kind: 'configured' } | { kind: 'missing'; path: string; where: string } | { kind: 'none' };

/** Commands that run the model: they first make sure there is one. */
export const MODEL_COMMANDS = new Set([
  'paligemma.describeImage',
  'paligemma.describeFromHover',
  'paligemma.extractText',
  'paligemma.askAboutImage',
  'paligemma.detectObjects',
  'paligemma.generateAltText',
  'paligemma.applyAltTextFix',
  'paligemma.fillMissingAltText',
  'paligemma.fillMissingAltTextWorkspace',
]);

/**
 * Where the model comes from, as the daemon this window starts would see it (the extension host
 * runs on the workspace's machine, so the paths are checked there): the setting, else a model the
 * running daemon already serves, else $PALIGEMMA_MODEL, else models/default.
 */
export function modelAvailability(client: DaemonClient): Availability {
  const config = vscode.workspace.getConfiguration('paligemma');
  const path = config.get<string>('modelPath', '').trim();
  if (path) return existsSync(path) ? { kind: 'configured' } : { kind: 'missing', path, where: settingScope(config.inspect<string>('modelPath')) };
  if (client.model?.path) return { kind: 'configured' };
  if (process.env.PALIGEMMA_MODEL) return { kind: 'configured' };
  return existsSync(join(modelsDir(), 'default')) ? { kind: 'configured' } : { kind: 'none' };
}

function settingScope(i: { workspaceFolderValue?: string; workspaceValue?: string; globalValue?: string } | undefined): string {
  if (i?.workspaceFolderValue) return 'folder settings';
  if (i?.workspaceValue) return 'Workspace settings';
  // In a remote window (SSH, code-server) User and Remote settings both land in the global value.
  return vscode.env.remoteName ? 'User or Remote settings' : 'User settings';
}

/** The message the status and the notification give for an availability that is not 'configured'. */
export function noModelError(a: Exclude<Availability, { kind: 'configured' }>): UserError {
  return a.kind === 'missing' ? missingModelFolder(a.path, a.where) : { message: NO_MODEL_MESSAGE, actions: ['download', 'chooseFolder', 'convert'] };
}

export class FirstRun {
  private offering: Promise<boolean> | undefined;

  constructor(private readonly ctx: Ctx) {}

  /**
   * True when a model is configured (now, or after the user got one through the notification);
   * false when the user closed it. Concurrent callers share one notification.
   */
  async ensureModel(): Promise<boolean> {
    const a = modelAvailability(this.ctx.client);
    if (a.kind === 'configured') return true;
    this.offering ??= this.offer(noModelError(a)).finally(() => (this.offering = undefined));
    return this.offering;
  }

  /** Shows `e` with its buttons; a model button runs its way to a model. True once one is configured. */
  async offer(e: UserError): Promise<boolean> {
    const labels = e.actions.map((a) => ACTION_LABELS[a]);
    const choice = await vscode.window.showWarningMessage(e.message, ...labels);
    const action = e.actions[labels.indexOf(choice ?? '')];
    return action ? this.run(action) : false;
  }

  /** Runs one of the error buttons; true when it leaves a model configured. */
  async run(action: UserAction): Promise<boolean> {
    switch (action) {
      case 'download':
        return (await downloadAndUse(this.ctx)) !== undefined;
      case 'chooseFolder':
        return (await chooseModelFolder(this.ctx)) !== undefined;
      case 'convert':
        return (await convertCheckpoint(this.ctx, undefined, true)) !== undefined;
      case 'useCpu':
        await updateSetting('executionProvider', 'cpu');
        return true;
      case 'restart':
        await vscode.commands.executeCommand('paligemma.restartDaemon');
        return false;
      case 'showLogs':
        this.ctx.log.show();
        return false;
    }
  }
}
