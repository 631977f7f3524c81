// The image inspector: a webview showing an image with its caption, text, answers and detections.
//
// Activation calls `registerInspector(context, client)`. The package.json contributions it relies on:
//   commands:          paligemma.openInspector ("PaliGemma: Inspect Image")
//   menus:             explorer/context and editor/title for images (resourceExtname) and the image
//                      preview (activeCustomEditorId == imagePreview.previewEditor)
//   activationEvents:  onWebviewPanel:paligemma.inspector (restores panels after a reload)
import * as vscode from 'vscode';
import type { ImageSource, InspectorTask } from '../../webview/messages.js';
import { isImagePath } from '../../daemon/client/shared.js';
import type { DaemonRequester } from './controller.js';
import { INSPECTOR_VIEW_TYPE, InspectorPanel, uriSource } from './panel.js';
import { restoreState } from '../../webview/state.js';

export type { DaemonRequester } from './controller.js';
export { INSPECTOR_VIEW_TYPE } from './panel.js';

export const OPEN_INSPECTOR_COMMAND = 'paligemma.openInspector';

export interface Inspector extends vscode.Disposable {
  /** Opens (or reveals) the inspector for an image; with a task, runs it there as if its button was pressed. */
  open(image?: vscode.Uri, task?: InspectorTask): Promise<void>;
}

/**
 * Registers the inspector command and the panel serializer.
 * `daemon` is anything with the client's `sendRequest(type, params, token)`; `onTokens` is optional.
 */
export function registerInspector(context: vscode.ExtensionContext, daemon: DaemonRequester): Inspector {
  const panels = new Set<InspectorPanel>();

  const track = (panel: InspectorPanel): InspectorPanel => {
    panels.add(panel);
    panel.onDidDispose(() => panels.delete(panel));
    return panel;
  };

  const create = (source: ImageSource | undefined): InspectorPanel => {
    const webviewPanel = vscode.window.createWebviewPanel(
      INSPECTOR_VIEW_TYPE,
      source ? `Inspect ${source.name}` : 'Image Inspector',
      { viewColumn: vscode.ViewColumn.Active, preserveFocus: false },
      { enableScripts: true, localResourceRoots: [] },
    );
    return track(new InspectorPanel(webviewPanel, context.extensionUri, daemon, source));
  };

  const open = async (image?: vscode.Uri, task?: InspectorTask): Promise<void> => {
    const uri = image ?? activeImageUri();
    if (uri && !isImagePath(uri.path)) {
      void vscode.window.showErrorMessage(`PaliGemma: ${uri.path.split('/').pop()} is not an image file.`);
      return;
    }
    const source = uri ? uriSource(uri) : undefined;
    let panel = source ? [...panels].find((p) => p.source?.kind === 'uri' && p.source.uri === source.uri) : undefined;
    if (panel) panel.reveal();
    else panel = create(source);
    if (task) panel.runTask(task);
  };

  const disposables: vscode.Disposable[] = [
    vscode.commands.registerCommand(OPEN_INSPECTOR_COMMAND, (arg?: unknown) => open(toUri(arg))),
    vscode.window.registerWebviewPanelSerializer(INSPECTOR_VIEW_TYPE, {
      async deserializeWebviewPanel(webviewPanel: vscode.WebviewPanel, saved: unknown) {
        // The webview saved its state (image included); the new panel re-shows that image.
        const state = restoreState(saved);
        track(new InspectorPanel(webviewPanel, context.extensionUri, daemon, state.image?.source));
      },
    }),
  ];
  const inspector: Inspector = {
    open,
    dispose() {
      for (const d of disposables.splice(0)) d.dispose();
      for (const p of [...panels]) p.dispose();
    },
  };
  context.subscriptions.push(inspector);
  return inspector;
}

/** A command argument as a URI: a Uri (menus), a URI string or a serialized Uri (command links). */
function toUri(arg: unknown): vscode.Uri | undefined {
  if (arg instanceof vscode.Uri) return arg;
  if (typeof arg === 'string' && arg.length > 0) return vscode.Uri.parse(arg);
  const o = arg as { scheme?: unknown; authority?: unknown; path?: unknown; query?: unknown; fragment?: unknown } | undefined;
  if (o && typeof o.scheme === 'string' && typeof o.path === 'string') {
    const part = (v: unknown) => (typeof v === 'string' ? v : undefined);
    return vscode.Uri.from({ scheme: o.scheme, path: o.path, authority: part(o.authority), query: part(o.query), fragment: part(o.fragment) });
  }
  return undefined;
}

/** The image in the active editor tab: VS Code's own image preview, or an image opened as text. */
function activeImageUri(): vscode.Uri | undefined {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  if (input instanceof vscode.TabInputCustom && isImagePath(input.uri.path)) return input.uri;
  if (input instanceof vscode.TabInputText && isImagePath(input.uri.path)) return input.uri;
  return undefined;
}
