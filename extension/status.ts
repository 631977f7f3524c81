// The status bar item: what the daemon is doing, with Restart / Show Logs links in its tooltip.
import * as vscode from 'vscode';
import type { DaemonClient } from './client.js';

export class DaemonStatus implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('paligemma.status', vscode.StatusBarAlignment.Right, 100);
  private readonly subscription: vscode.Disposable;

  constructor(private readonly client: DaemonClient) {
    this.item.name = 'PaliGemma';
    this.item.command = 'paligemma.showLogs';
    this.subscription = client.onDidChange(() => this.update());
    this.update();
    this.item.show();
  }

  /** Shown instead of the daemon state when the extension could not activate. */
  showFatal(message: string): void {
    this.item.text = '$(error) PaliGemma';
    this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
    this.item.tooltip = this.tooltip(`**PaliGemma is not available**\n\n${escape(message)}`);
  }

  private update(): void {
    const { state, model, busy } = this.client;
    let text: string;
    let detail: string;
    let background: vscode.ThemeColor | undefined;
    switch (state.kind) {
      case 'stopped':
        text = '$(circle-slash) PaliGemma';
        detail = 'The daemon is not running here; it starts on the first request.';
        break;
      case 'starting':
        text = '$(loading~spin) PaliGemma';
        detail = 'Starting the daemon…';
        break;
      case 'loading':
        text = `$(loading~spin) PaliGemma${state.fraction !== undefined ? ` ${Math.round(state.fraction * 100)}%` : ''}`;
        detail = `${escape(state.message)}…`;
        break;
      case 'error':
        text = '$(error) PaliGemma';
        detail = `**Error:** ${escape(state.message)}`;
        background = new vscode.ThemeColor('statusBarItem.errorBackground');
        break;
      case 'ready': {
        const ep = model?.executionProvider;
        text = busy > 0 ? '$(sync~spin) PaliGemma' : `$(check) PaliGemma${ep ? ` · ${ep}` : ''}`;
        const name = model?.name ?? model?.path;
        detail =
          model?.state === 'ready'
            ? `Model **${escape(name ?? '?')}**${model.architecture ? ` (${model.architecture}, ${model.dtype ?? ''}, ${model.imageSize ?? '?'} px)` : ''} on **${ep ?? '?'}**`
            : `Connected; the model${name ? ` ${escape(name)}` : ''} loads on the first request.`;
        if (model?.decodeLoop === 'graph') detail += '\n\nGreedy decoding runs inside the graph (one GPU call per request)';
        if (model?.maxBatch && model.maxBatch > 1) detail += `\n\nUp to ${model.maxBatch} waiting requests run together as one batch`;
        if (model?.providerNotes?.length) detail += `\n\nProvider choice: ${model.providerNotes.map(escape).join('; ')}`;
        if (busy > 0) detail += `\n\n$(sync~spin) ${busy} request${busy > 1 ? 's' : ''} running`;
        if (model?.warnings?.length) {
          detail += `\n\n$(warning) ${model.warnings.map(escape).join('\n\n$(warning) ')}`;
          background = new vscode.ThemeColor('statusBarItem.warningBackground');
        }
        break;
      }
    }
    this.item.text = text;
    this.item.backgroundColor = background;
    this.item.tooltip = this.tooltip(detail);
  }

  private tooltip(detail: string): vscode.MarkdownString {
    const logUri = vscode.Uri.file(this.client.logPath);
    const openLog = `command:vscode.open?${encodeURIComponent(JSON.stringify([logUri]))}`;
    const md = new vscode.MarkdownString(
      `${detail}\n\n---\n\n[$(debug-restart) Restart](command:paligemma.restartDaemon) · ` +
        `[$(output) Show Logs](command:paligemma.showLogs) · [$(file) Daemon Log](${openLog}) · ` +
        `[$(settings-gear) Select Model](command:paligemma.selectModel)`,
      true,
    );
    md.isTrusted = { enabledCommands: ['paligemma.restartDaemon', 'paligemma.showLogs', 'paligemma.selectModel', 'vscode.open'] };
    return md;
  }

  dispose(): void {
    this.subscription.dispose();
    this.item.dispose();
  }
}

function escape(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+!<>|-]/g, '\\$&');
}
