// What the CLI's output lines mean for a progress notification: `paligemma convert` prints
// `[ NN%] message`; `paligemma download --json` prints one JSON object per line on stdout,
// {"progress": DownloadProgress}... then {"result": DownloadResult} or {"error": {...}}
// (daemon/cli/download.ts). vscode-free.
import { formatBytes } from '../../daemon/client/shared.js';
import type { DownloadProgress, DownloadResult } from '../../daemon/protocol.js';

/** A position in a long task: an overall percentage (when known) and what is going on. */
export interface ProgressStep {
  percent?: number;
  message?: string;
}

/** `[ 42%] writing decoder.onnx` -> { percent: 42, message: 'writing decoder.onnx' }. */
export function convertProgress(line: string): ProgressStep | undefined {
  const m = /^\[\s*(\d+(?:\.\d+)?)%\]\s*(.*)$/.exec(line);
  return m ? { percent: Number(m[1]), message: m[2] } : undefined;
}

export interface DownloadFailureInfo {
  /** The CLI's DownloadFailure: unauthorized (401), gated (403), not-found, network, disk-space, cancelled, ... */
  reason: string;
  code?: string;
  message: string;
}

export type DownloadEvent = { kind: 'progress'; progress: DownloadProgress } | { kind: 'result'; result: DownloadResult } | { kind: 'error'; error: DownloadFailureInfo };

/** One stdout line of `paligemma download --json`; undefined for anything else. */
export function parseDownloadLine(line: string): DownloadEvent | undefined {
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!isObject(o)) return undefined;
  if (isObject(o.progress) && typeof o.progress.phase === 'string') return { kind: 'progress', progress: o.progress as unknown as DownloadProgress };
  if (isObject(o.result) && typeof o.result.path === 'string') return { kind: 'result', result: o.result as unknown as DownloadResult };
  if (isObject(o.error) && typeof o.error.message === 'string') {
    const e = o.error;
    return {
      kind: 'error',
      error: { reason: typeof e.reason === 'string' ? e.reason : 'unknown', code: typeof e.code === 'string' ? e.code : undefined, message: e.message as string },
    };
  }
  return undefined;
}

/**
 * The notification for a download event: the bar follows the bytes (counting files kept from an
 * earlier, interrupted run); conversion after a checkpoint download shows its share in the message,
 * since the bar is full by then and a progress bar cannot go back.
 */
export function describeDownload(p: DownloadProgress): ProgressStep {
  switch (p.phase) {
    case 'download': {
      const percent = p.total > 0 ? (100 * p.bytes) / p.total : undefined;
      const file = p.file ? ` · ${p.file}` : '';
      const retry = p.message ? ` (${p.message})` : '';
      return { percent, message: `${formatBytes(p.bytes)} of ${formatBytes(p.total)}${file}${retry}` };
    }
    case 'convert': {
      const share = p.fraction !== undefined ? `${Math.round(p.fraction * 100)}% ` : '';
      return { percent: 100, message: `converting ${share}${p.message ? `· ${p.message}` : ''}`.trim() };
    }
    case 'done':
      return { percent: 100, message: p.message };
    default:
      return { message: p.message };
  }
}

/** The child's environment: the token travels as HF_TOKEN (never on the command line, where `ps` shows it). */
export function cliEnvironment(base: NodeJS.ProcessEnv, token: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, ELECTRON_RUN_AS_NODE: '1' };
  if (token?.trim()) env.HF_TOKEN = token.trim();
  return env;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
