// The extension's settings, read in one place; which changes need what (reload model / restart daemon).
import * as vscode from 'vscode';
import type { ExecutionProviderSetting } from '../daemon/protocol.js';

export type AltTextSeverity = 'error' | 'warning' | 'information' | 'hint' | 'off';

export interface Config {
  modelPath: string;
  executionProvider: ExecutionProviderSetting;
  keepAliveMinutes: number;
  loadCache: boolean;
  maxNewTokens: number;
  captionLanguage: string;
  nodePath: string;
  hover: { enabled: boolean; describeOnHover: boolean; thumbnailWidth: number };
  altText: { fileTypes: string[]; severity: AltTextSeverity; exclude: string };
}

export function readConfig(): Config {
  const c = vscode.workspace.getConfiguration('paligemma');
  return {
    modelPath: c.get<string>('modelPath', '').trim(),
    executionProvider: c.get<ExecutionProviderSetting>('executionProvider', 'auto'),
    keepAliveMinutes: Math.max(0, c.get<number>('keepAlive', 5)),
    loadCache: c.get<boolean>('loadCache', false),
    maxNewTokens: Math.min(512, Math.max(1, Math.round(c.get<number>('maxNewTokens', 64)))),
    captionLanguage: c.get<string>('captionLanguage', 'en').trim() || 'en',
    nodePath: c.get<string>('nodePath', '').trim(),
    hover: {
      enabled: c.get<boolean>('hover.enabled', true),
      // Never in an untrusted workspace, whatever the user setting says.
      describeOnHover: c.get<boolean>('hover.describeOnHover', false) && vscode.workspace.isTrusted,
      thumbnailWidth: c.get<number>('hover.thumbnailWidth', 240),
    },
    altText: {
      fileTypes: c.get<string[]>('altText.fileTypes', ['markdown', 'mdx', 'html', 'javascriptreact', 'typescriptreact']),
      severity: c.get<AltTextSeverity>('altText.severity', 'warning'),
      exclude: c.get<string>('altText.exclude', ''),
    },
  };
}

/** Settings read only when the daemon starts: changing them asks to restart it. */
export const RESTART_DAEMON_SETTINGS = ['paligemma.keepAlive', 'paligemma.loadCache', 'paligemma.nodePath'];
/** Settings the running daemon applies by loading the model again. */
export const RELOAD_MODEL_SETTINGS = ['paligemma.modelPath', 'paligemma.executionProvider'];

/**
 * Writes a setting where it is set now (Workspace when the workspace sets it, so the new value is
 * not hidden by it), else in User settings, which every window reads (the scopes in package.json).
 */
export async function updateSetting(key: string, value: unknown): Promise<void> {
  const config = vscode.workspace.getConfiguration('paligemma');
  const target = config.inspect(key)?.workspaceValue !== undefined ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
  await config.update(key, value, target);
}
