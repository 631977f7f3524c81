// What `paligemma alt-text` prints: one line per problem (as markdownlint / eslint do), one JSON
// document, or SARIF 2.1.0 for code-scanning UIs; and the fix report.
import type { Log, ReportingDescriptor, Result } from 'sarif';
import { PROBLEM_KINDS, type AltProblemKind } from '../../daemon/alttext/diagnose.js';

export interface ReportedProblem {
  /** Relative to the current folder, with forward slashes. */
  file: string;
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
  src: string;
  kind: AltProblemKind;
  message: string;
}

export interface FixResult {
  file: string;
  line: number;
  column: number;
  src: string;
  status: 'fixed' | 'skipped' | 'failed';
  alt?: string;
  reason?: string;
}

/** 1-based line and column (UTF-16 code units, as editors and SARIF count) of each offset. */
export function lineColumn(text: string): (offset: number) => { line: number; column: number } {
  const starts = [0];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return (offset) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - starts[lo] + 1 };
  };
}

export function formatProblemsText(problems: readonly ReportedProblem[]): string {
  return problems.map((p) => `${p.file}:${p.line}:${p.column}  ${p.kind}  ${p.message}\n`).join('');
}

export function formatProblemsJson(problems: readonly ReportedProblem[], errors: readonly { file: string; message: string }[]): string {
  const out = problems.map(({ file, line, column, src, kind, message }) => ({ file, line, column, src, kind, message }));
  return `${JSON.stringify(errors.length ? { problems: out, errors } : { problems: out }, null, 2)}\n`;
}

const RULES: Record<AltProblemKind, string> = {
  missing: 'Image has no alt text',
  empty: 'Image has empty alt text (write a description, or mark it decorative)',
  placeholder: 'Alt text is a placeholder that says nothing about the picture',
  'not-found': 'Image needs alt text and its file is not found',
  unreadable: 'Image needs alt text and its file cannot be read (damaged, truncated, empty or not permitted)',
  unsupported: 'Image needs alt text and its file is not an image format the model reads',
  remote: 'Image needs alt text and is remote (never fetched)',
};

export function formatProblemsSarif(problems: readonly ReportedProblem[], version: string): string {
  const rules: ReportingDescriptor[] = PROBLEM_KINDS.map((id) => ({
    id,
    name: id.replace(/-(\w)/g, (_, c: string) => c.toUpperCase()),
    shortDescription: { text: RULES[id] },
    defaultConfiguration: { level: 'warning' },
  }));
  const results: Result[] = problems.map((p) => ({
    ruleId: p.kind,
    ruleIndex: PROBLEM_KINDS.indexOf(p.kind),
    level: 'warning',
    message: { text: p.message },
    locations: [
      {
        physicalLocation: {
          artifactLocation: { uri: encodeURI(p.file), uriBaseId: '%SRCROOT%' },
          region: { startLine: p.line, startColumn: p.column, endLine: p.endLine, endColumn: p.endColumn },
        },
      },
    ],
  }));
  const log: Log = {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: { driver: { name: 'paligemma alt-text', version, rules } },
        columnKind: 'utf16CodeUnits',
        results,
      },
    ],
  };
  return `${JSON.stringify(log, null, 2)}\n`;
}

export function summarize(results: readonly FixResult[]): { fixed: number; skipped: number; failed: number } {
  const count = (s: FixResult['status']) => results.filter((r) => r.status === s).length;
  return { fixed: count('fixed'), skipped: count('skipped'), failed: count('failed') };
}

export function formatFixText(results: readonly FixResult[]): string {
  const lines = results.map((r) => `${r.file}:${r.line}:${r.column}  ${r.status}  ${r.status === 'fixed' ? JSON.stringify(r.alt) : r.reason}\n`);
  const s = summarize(results);
  return `${lines.join('')}${s.fixed} fixed, ${s.skipped} skipped, ${s.failed} failed\n`;
}
