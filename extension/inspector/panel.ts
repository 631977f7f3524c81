// One inspector webview panel: the VS Code half of InspectorController.
import * as vscode from 'vscode';
import type { ImageRef } from '../../daemon/protocol.js';
import type { ImageSource, InspectorImage, InspectorTask, WebviewMessage } from '../../webview/messages.js';
import { IMAGE_EXTENSIONS, isImagePath } from '../../daemon/client/shared.js';
import { imageRefFor } from '../imageRef.js';
import { InspectorController, type DaemonRequester, type InspectorHost } from './controller.js';
import { readConfig } from '../config.js';
import { inspectorHtml } from './html.js';

export const INSPECTOR_VIEW_TYPE = 'paligemma.inspector';

export function uriSource(uri: vscode.Uri): Extract<ImageSource, { kind: 'uri' }> {
  return { kind: 'uri', uri: uri.toString(), name: uri.path.split('/').pop() || uri.toString() };
}

export class InspectorPanel implements vscode.Disposable {
  readonly controller: InspectorController;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly onDisposeCallbacks: Array<() => void> = [];
  private imageRoots: vscode.Uri[] = [];

  constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly extensionUri: vscode.Uri,
    daemon: DaemonRequester,
    source: ImageSource | undefined,
  ) {
    const host: InspectorHost = {
      postMessage: (m) => panel.webview.postMessage(m),
      imageRef: (s) => this.imageRef(s),
      showable: (s) => this.showable(s),
      sourceFromUri: (u) => this.sourceFromUri(u),
      pickImage: () => pickImage(),
      writeClipboard: async (text) => {
        await vscode.env.clipboard.writeText(text);
        vscode.window.setStatusBarMessage('$(check) Text copied', 2000);
      },
      onImageChanged: (s) => this.setTitle(s),
      taskDefaults: () => {
        const config = readConfig();
        return { maxNewTokens: config.maxNewTokens, language: config.captionLanguage };
      },
    };
    if (source?.kind === 'uri') this.imageRoots = [parentOf(vscode.Uri.parse(source.uri))];
    this.applyOptions();
    this.controller = new InspectorController(host, daemon, source);
    if (source) this.setTitle(source);
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'inspector.svg');
    panel.webview.html = inspectorHtml({
      cspSource: panel.webview.cspSource,
      scriptUri: panel.webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview.js')).toString(),
      styleUri: panel.webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', 'inspector.css')).toString(),
    });
    this.disposables.push(
      panel.webview.onDidReceiveMessage((m: WebviewMessage) => this.controller.handle(m)),
      panel.onDidDispose(() => this.dispose()),
    );
  }

  get source(): ImageSource | undefined {
    return this.controller.image;
  }

  onDidDispose(callback: () => void): void {
    this.onDisposeCallbacks.push(callback);
  }

  reveal(): void {
    this.panel.reveal(undefined, false);
  }

  async show(source: ImageSource): Promise<void> {
    await this.controller.setImage(source);
  }

  runTask(task: InspectorTask): void {
    this.controller.runTask(task);
  }

  private setTitle(source: ImageSource): void {
    this.panel.title = `Inspect ${source.name}`;
  }

  private applyOptions(): void {
    this.panel.webview.options = {
      enableScripts: true,
      localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, 'dist'), vscode.Uri.joinPath(this.extensionUri, 'media'), ...this.imageRoots],
    };
  }

  private async imageRef(source: ImageSource): Promise<ImageRef> {
    if (source.kind === 'data') return { data: source.data, mimeType: source.mimeType };
    return imageRefFor(vscode.Uri.parse(source.uri));
  }

  private async showable(source: ImageSource): Promise<InspectorImage> {
    if (source.kind === 'data') return { source };
    const uri = vscode.Uri.parse(source.uri);
    const root = parentOf(uri);
    if (!this.imageRoots.some((r) => r.toString() === root.toString())) {
      this.imageRoots = [root];
      this.applyOptions();
    }
    return { source, src: this.panel.webview.asWebviewUri(uri).toString() };
  }

  private async sourceFromUri(text: string): Promise<ImageSource> {
    let uri: vscode.Uri;
    try {
      uri = vscode.Uri.parse(text, true);
    } catch {
      throw new Error(`Not a file: ${text}`);
    }
    if (!isImagePath(uri.path)) throw new Error(`${uri.path.split('/').pop()} is not an image (${IMAGE_EXTENSIONS.join(', ')}).`);
    const stat = await Promise.resolve(vscode.workspace.fs.stat(uri)).catch(() => undefined);
    if (!stat || stat.type & vscode.FileType.Directory) throw new Error(`${uri.fsPath} does not exist or is not a file.`);
    return uriSource(uri);
  }

  dispose(): void {
    this.controller.dispose();
    for (const d of this.disposables.splice(0)) d.dispose();
    for (const cb of this.onDisposeCallbacks.splice(0)) cb();
  }
}

function parentOf(uri: vscode.Uri): vscode.Uri {
  return vscode.Uri.joinPath(uri, '..');
}

async function pickImage(): Promise<ImageSource | undefined> {
  const picked = await vscode.window.showOpenDialog({
    canSelectMany: false,
    openLabel: 'Inspect',
    filters: { Images: [...IMAGE_EXTENSIONS] },
  });
  return picked?.[0] ? uriSource(picked[0]) : undefined;
}
