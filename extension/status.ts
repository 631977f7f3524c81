// The status bar item: statusView.ts decides the words; this renders them, with the links row
// (Download / Choose Folder / Convert when there is no model; Restart, Show Logs, Daemon Log,
// Select Model otherwise) in its Markdown tooltip.
import * as vscode from 'vscode';
import type { DaemonClient } from './client.js';
import { readConfig } from './config.js';
import { modelAvailability, noModelError } from './firstRun.js';
import { escape, statusView, type StatusView, type ViewState } from './statusView.js';
import { userError } from './userErrors.js';

const LINKS: Record<StatusView['links'][number], [label: string, command: string]> = {
  download: ['$(cloud-download) Download…', 'paligemma.downloadModel'],
  chooseFolder: ['$(folder-opened) Choose Folder…', 'paligemma.chooseModelFolder'],
  convert: ['$(tools) Convert Checkpoint…', 'paligemma.convertModel'],
  restart: ['$(debug-restart) Restart', 'paligemma.restartDaemon'],
  showLogs: ['$(output) Show Logs', 'paligemma.showLogs'],
  selectModel: ['$(settings-gear) Select Model', 'paligemma.selectModel'],
};

export class DaemonStatus implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('paligemma.status', vscode.StatusBarAlignment.Right, 100);
  private readonly subscription: vscode.Disposable;

  constructor(private readonly client: DaemonClient) {
    this.item.name = 'PaliGemma';
    this.subscription = client.onDidChange(() => this.update());
    this.update();
    this.item.show();
  }

  /** Shown instead of the daemon state when the extension could not activate. */
  showFatal(message: string): void {
    this.render({ text: '$(error) PaliGemma', detail: `**PaliGemma is not available**\n\n${escape(message)}`, background: 'error', links: ['showLogs'] });
  }

  /** Settings changed: the model may have appeared or gone. */
  update(): void {
    this.render(statusView(this.viewState()));
  }

  private viewState(): ViewState {
    const { state, model, busy } = this.client;
    const cfg = readConfig();
    // A configured folder that is gone is reported whatever the daemon still holds: it is not what
    // the settings ask for. No model at all only shows while none is loaded.
    const a = modelAvailability(this.client);
    const modelLess = state.kind === 'stopped' || (state.kind === 'ready' && model?.state !== 'ready');
    if (a.kind === 'missing' || (a.kind === 'none' && modelLess)) return { kind: 'noModel', message: noModelError(a).message };
    switch (state.kind) {
      case 'stopped':
      case 'starting':
        return { kind: state.kind };
      case 'loading':
        return { kind: 'loading', name: model?.name ?? lastSegment(cfg.modelPath || model?.path), fraction: state.fraction };
      case 'error':
        return {
          kind: 'error',
          message:
            userError(state.error ?? new Error(state.message), { modelPath: cfg.modelPath || model?.path, executionProvider: cfg.executionProvider })?.message ?? state.message,
        };
      case 'ready':
        return { kind: 'ready', model, busy };
    }
  }

  private render(v: StatusView): void {
    this.item.text = v.text;
    this.item.backgroundColor = v.background ? new vscode.ThemeColor(`statusBarItem.${v.background}Background`) : undefined;
    // A click does the first thing the tooltip offers (get a model; else show the logs).
    this.item.command = v.links[0] === 'download' ? 'paligemma.downloadModel' : 'paligemma.showLogs';
    const logUri = vscode.Uri.file(this.client.logPath);
    const links = v.links.map((l) => `[${LINKS[l][0]}](command:${LINKS[l][1]})`);
    if (v.links.includes('showLogs')) links.push(`[$(file) Daemon Log](command:vscode.open?${encodeURIComponent(JSON.stringify([logUri]))})`);
    const md = new vscode.MarkdownString(`${v.detail}\n\n---\n\n${links.join(' · ')}`, true);
    md.isTrusted = { enabledCommands: [...Object.values(LINKS).map(([, c]) => c), 'vscode.open'] };
    this.item.tooltip = md;
  }

  dispose(): void {
    this.subscription.dispose();
    this.item.dispose();
  }
}

function lastSegment(path: string | undefined): string | undefined {
  return (
    path
      ?.replace(/[\\/]+$/, '')
      .split(/[\\/]/)
      .pop() || undefined
  );
}
