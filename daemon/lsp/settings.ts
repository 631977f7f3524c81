// The server's settings: the `paligemma` section of the editor's settings (pulled with
// `workspace/configuration`, or given in `initializationOptions.settings` / `didChangeConfiguration`
// by clients without it), over the command line's `--model`. Unknown or ill-typed values fall back
// to the defaults, so a typo in an editor's config never stops the server.
import type { ExecutionProviderSetting, LspInitializationOptions } from '../protocol.js';

export type Severity = 'error' | 'warning' | 'information' | 'hint' | 'off';

export interface Settings {
  modelPath: string;
  /** A NATS broker URL: model runs go to its worker pool instead of the local daemon. */
  broker: string;
  executionProvider: ExecutionProviderSetting;
  keepAliveMinutes: number;
  loadCache: boolean;
  maxNewTokens: number;
  captionLanguage: string;
  hover: { enabled: boolean; describeOnHover: boolean; thumbnailWidth: number };
  altText: { fileTypes: string[]; severity: Severity; placeholders: string[] };
}

export type InitOptions = LspInitializationOptions;

export const DEFAULT_FILE_TYPES = ['markdown', 'mdx', 'html', 'javascriptreact', 'typescriptreact'];
const SEVERITIES: Severity[] = ['error', 'warning', 'information', 'hint', 'off'];
const PROVIDERS: ExecutionProviderSetting[] = ['auto', 'cuda', 'webgpu', 'cpu'];

export function readSettings(section: unknown, defaults: { modelPath?: string; broker?: string } = {}): Settings {
  const s = record(section);
  const hover = record(s.hover);
  const altText = record(s.altText);
  const str = (v: unknown, d: string) => (typeof v === 'string' && v.trim() ? v.trim() : d);
  const num = (v: unknown, d: number, min: number, max: number) => (typeof v === 'number' && Number.isFinite(v) ? Math.min(max, Math.max(min, v)) : d);
  const bool = (v: unknown, d: boolean) => (typeof v === 'boolean' ? v : d);
  return {
    modelPath: str(s.modelPath, defaults.modelPath ?? ''),
    broker: str(s.broker, defaults.broker ?? ''),
    executionProvider: PROVIDERS.includes(s.executionProvider as ExecutionProviderSetting) ? (s.executionProvider as ExecutionProviderSetting) : 'auto',
    keepAliveMinutes: num(s.keepAlive, 5, 0, Number.MAX_SAFE_INTEGER),
    loadCache: bool(s.loadCache, false),
    maxNewTokens: Math.round(num(s.maxNewTokens, 64, 1, 512)),
    captionLanguage: str(s.captionLanguage, 'en'),
    hover: {
      enabled: bool(hover.enabled, true),
      describeOnHover: bool(hover.describeOnHover, false),
      thumbnailWidth: Math.round(num(hover.thumbnailWidth, 240, 32, 1024)),
    },
    altText: {
      fileTypes: stringList(altText.fileTypes, DEFAULT_FILE_TYPES),
      severity: SEVERITIES.includes(altText.severity as Severity) ? (altText.severity as Severity) : 'warning',
      placeholders: stringList(altText.placeholders, []),
    },
  };
}

function stringList(v: unknown, d: string[]): string[] {
  return Array.isArray(v) && v.every((t) => typeof t === 'string') ? v : d;
}

/** Settings may come flat (`{"hover.enabled": true}`, as some clients send them) or nested. */
function record(v: unknown): Record<string, unknown> {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return {};
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(v)) {
    const dot = key.indexOf('.');
    if (dot < 0) {
      out[key] = value && typeof value === 'object' && !Array.isArray(value) && out[key] && typeof out[key] === 'object' ? { ...(out[key] as object), ...value } : value;
    } else {
      const head = key.slice(0, dot);
      const inner = out[head] && typeof out[head] === 'object' ? (out[head] as Record<string, unknown>) : {};
      out[head] = { ...inner, [key.slice(dot + 1)]: value };
    }
  }
  return out;
}
