// The `paligemma serve` arguments with which an editor starts the shared daemon, from its settings:
// one place for the extension (extension/client.ts) and the language server (lsp/daemonLink.ts).
import type { ExecutionProviderSetting } from '../protocol.js';

export interface DaemonStartSettings {
  keepAliveMinutes: number;
  executionProvider: ExecutionProviderSetting;
  /** Empty: the daemon's default model. */
  modelPath: string;
  /** CPU loads through onnxruntime's saved graphs and pre-packed weights (`serve --load-cache`). */
  loadCache: boolean;
}

export function serveArgs(s: DaemonStartSettings): string[] {
  const args = ['--keep-alive-ms', String(Math.round(s.keepAliveMinutes * 60_000)), '--ep', s.executionProvider];
  if (s.modelPath) args.push('--model', s.modelPath);
  if (s.loadCache) args.push('--load-cache');
  return args;
}
