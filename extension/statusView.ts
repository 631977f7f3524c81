// What the status bar item says, as plain data (text, Markdown tooltip, colour), from the daemon's
// state: no model / starting / loading (percent) / ready on cuda|webgpu|cpu with the model name /
// busy (requests running) / error (one sentence) / a failed load while the old model serves (both).
// The daemon's provider notes hold raw loader output: the tooltip says in one line what they mean,
// the log keeps them. No vscode here.
import type { ModelStatus } from '../daemon/protocol.js';

export type ViewState =
  | { kind: 'noModel'; message: string }
  | { kind: 'stopped' }
  | { kind: 'starting' }
  | { kind: 'loading'; name?: string; fraction?: number }
  | { kind: 'ready'; model?: ModelStatus; busy: number }
  | { kind: 'error'; message: string };

export interface StatusView {
  text: string;
  /** Markdown, before the links row (status.ts adds it). */
  detail: string;
  background?: 'warning' | 'error';
  /** Links to offer under the detail, by command id. */
  links: ('download' | 'chooseFolder' | 'convert' | 'restart' | 'showLogs' | 'selectModel')[];
}

const PROVIDER_LABELS: Record<string, string> = { cuda: 'CUDA', webgpu: 'WebGPU', cpu: 'CPU' };
const label = (ep: string) => PROVIDER_LABELS[ep] ?? ep;

/**
 * One line on how `auto` chose the provider, when it passed over one: "CUDA unavailable: using CPU
 * — details in the log". undefined when it took the first choice.
 */
export function providerFallback(ep: string | undefined, notes: string[] | undefined): string | undefined {
  if (!ep || !notes?.length) return undefined;
  const failed = ['cuda', 'webgpu'].filter((p) => p !== ep && notes.some((n) => new RegExp(`^${p}(:| unavailable| failed)`, 'i').test(n)));
  if (failed.length) return `${failed.map(label).join(' and ')} unavailable: using ${label(ep)} — details in the log`;
  if (ep === 'cpu' && notes.some((n) => /^webgpu probe .* ms vs cpu/i.test(n))) return 'WebGPU was slower than the CPU in a test run: using CPU — details in the log';
  return undefined;
}

export function statusView(s: ViewState): StatusView {
  switch (s.kind) {
    case 'noModel':
      return { text: '$(warning) PaliGemma: no model', detail: escape(s.message), background: 'warning', links: ['download', 'chooseFolder', 'convert'] };
    case 'stopped':
      return { text: '$(circle-slash) PaliGemma', detail: 'The daemon is not running; it starts on the first request.', links: ['restart', 'showLogs', 'selectModel'] };
    case 'starting':
      return { text: '$(loading~spin) PaliGemma', detail: 'Starting the daemon…', links: ['showLogs'] };
    case 'loading': {
      const percent = s.fraction !== undefined ? ` ${Math.round(s.fraction * 100)}%` : '';
      return { text: `$(loading~spin) PaliGemma${percent}`, detail: `Loading ${s.name ? `**${escape(s.name)}**` : 'the model'}…${percent}`, links: ['showLogs'] };
    }
    case 'error':
      return { text: '$(error) PaliGemma', detail: `**Error:** ${escape(s.message)}`, background: 'error', links: ['showLogs', 'restart', 'selectModel'] };
    case 'ready':
      return ready(s.model, s.busy);
  }
}

function ready(model: ModelStatus | undefined, busy: number): StatusView {
  const ep = model?.state === 'ready' ? model.executionProvider : undefined;
  const name = model?.name ?? (model?.path ? basename(model.path) : undefined);
  const lines: string[] = [];
  if (model?.state === 'ready') {
    const facts = [model.architecture, model.dtype, model.imageSize ? `${model.imageSize} px` : undefined].filter(Boolean).join(', ');
    lines.push(`Model **${escape(name ?? '?')}**${facts ? ` (${escape(facts)})` : ''} on **${ep ?? '?'}**`);
  } else {
    lines.push(`Connected; the model${name ? ` **${escape(name)}**` : ''} loads on the first request.`);
  }
  const fallback = providerFallback(ep, model?.providerNotes);
  if (fallback) lines.push(escape(fallback));
  if (model?.decodeLoop === 'graph') lines.push('Greedy decoding runs inside the graph (one GPU call per request)');
  if (model?.maxBatch && model.maxBatch > 1) lines.push(`Up to ${model.maxBatch} waiting requests run together as one batch`);
  if (busy > 0) lines.push(`$(sync~spin) ${busy} request${busy > 1 ? 's' : ''} running`);
  let background: StatusView['background'];
  if (model?.warnings?.length) {
    lines.push(...model.warnings.map((w) => `$(warning) ${escape(w)}`));
    background = 'warning';
  }
  const failed = model?.failedLoad;
  if (failed) {
    lines.push(`$(warning) **${escape(basename(failed.path))}** failed to load, so **${escape(name ?? '?')}** still serves: ${escape(failed.error)}`);
    background = 'warning';
  }
  const text = busy > 0 ? `$(sync~spin) PaliGemma · ${busy} running` : `$(${failed ? 'warning' : 'check'}) PaliGemma${ep ? ` · ${ep}` : ''}`;
  return { text, detail: lines.join('\n\n'), background, links: ['restart', 'showLogs', 'selectModel'] };
}

function basename(path: string): string {
  return (
    path
      .replace(/[\\/]+$/, '')
      .split(/[\\/]/)
      .pop() ?? path
  );
}

/** Markdown-escapes text shown in the tooltip (model names, paths, messages). */
export function escape(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+!<>|]/g, '\\$&');
}
