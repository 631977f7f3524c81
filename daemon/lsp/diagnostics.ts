// Alt-text diagnostics, with the docs core's kinds (as the code, `alt-<kind>`) and messages, the
// same as `paligemma alt-text check`. Pulled (`textDocument/diagnostic`) where the client supports
// it, otherwise pushed (`publishDiagnostics`), debounced while typing. No model is involved.
import { type Diagnostic, DiagnosticSeverity, DocumentDiagnosticReportKind } from 'vscode-languageserver/node';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import type { CheckedProblem } from '../alttext/check.js';
import type { Session } from './session.js';
import type { Severity } from './settings.js';
import { errorMessage } from '../common/errors.js';

export const SOURCE = 'PaliGemma';
const DEBOUNCE_MS = 300;
const SEVERITY: Record<Exclude<Severity, 'off'>, DiagnosticSeverity> = {
  error: DiagnosticSeverity.Error,
  warning: DiagnosticSeverity.Warning,
  information: DiagnosticSeverity.Information,
  hint: DiagnosticSeverity.Hint,
};

/** What diagnostic data carries, so a code action finds its image again. */
export interface ProblemData {
  offset: number;
  version: number;
}

export async function diagnosticsFor(session: Session, doc: TextDocument): Promise<Diagnostic[]> {
  const severity = session.settings.altText.severity;
  if (severity === 'off' || !session.checksAltText(doc)) return [];
  const { problems, error } = await session.check(doc);
  // A document that does not parse right now (mid-edit) keeps no stale ranges.
  if (error) session.log(`alt text: ${doc.uri} does not parse: ${error}`);
  return problems.map((p) => toDiagnostic(doc, p, SEVERITY[severity]));
}

function toDiagnostic(doc: TextDocument, p: CheckedProblem, severity: DiagnosticSeverity): Diagnostic {
  const data: ProblemData = { offset: p.image.span.start, version: doc.version };
  return {
    range: { start: doc.positionAt(p.span.start), end: doc.positionAt(p.span.end) },
    severity,
    source: SOURCE,
    code: `alt-${p.kind}`,
    message: p.message,
    data,
  };
}

export interface DiagnosticsHandle {
  /** Settings changed: every open document again. */
  refreshAll(): void;
  dispose(): void;
}

export function registerDiagnostics(session: Session): DiagnosticsHandle {
  const { connection, documents } = session;
  // Decided when asked: the client's capabilities arrive with `initialize`, after registration.
  const pulls = () => !!session.capabilities.textDocument?.diagnostic;
  connection.languages.diagnostics.on(async (params) => {
    const doc = documents.get(params.textDocument.uri);
    return { kind: DocumentDiagnosticReportKind.Full, items: doc ? await diagnosticsFor(session, doc) : [] };
  });
  const timers = new Map<string, NodeJS.Timeout>();
  const published = new Map<string, number>();
  // After shutdown a check still in flight publishes nothing: the connection may be gone.
  let stopped = false;
  const send = (params: Parameters<typeof connection.sendDiagnostics>[0]) => {
    if (!stopped) connection.sendDiagnostics(params).catch((err: unknown) => session.log(`alt text: publishing diagnostics failed: ${errorMessage(err)}`));
  };
  const publish = (doc: TextDocument) => {
    clearTimeout(timers.get(doc.uri));
    timers.delete(doc.uri);
    published.set(doc.uri, doc.version);
    void diagnosticsFor(session, doc).then(
      (diagnostics) => {
        // Only for the version they were computed on: a newer one has its own on the way.
        if (documents.get(doc.uri)?.version === doc.version) send({ uri: doc.uri, version: doc.version, diagnostics });
      },
      (err: unknown) => session.log(`alt text: checking ${doc.uri} failed: ${errorMessage(err)}`),
    );
  };
  documents.onDidOpen((e) => {
    if (!pulls()) publish(e.document);
  });
  documents.onDidChangeContent((e) => {
    const doc = e.document;
    // Opening fires this too, right after onDidOpen published that version.
    if (pulls() || published.get(doc.uri) === doc.version) return;
    clearTimeout(timers.get(doc.uri));
    timers.set(
      doc.uri,
      setTimeout(() => {
        // The latest version of the document, not the one that started the timer.
        const now = documents.get(doc.uri);
        if (now) publish(now);
      }, DEBOUNCE_MS),
    );
  });
  documents.onDidClose((e) => {
    clearTimeout(timers.get(e.document.uri));
    timers.delete(e.document.uri);
    published.delete(e.document.uri);
    if (!pulls()) send({ uri: e.document.uri, diagnostics: [] });
  });
  return {
    refreshAll: () => {
      if (!pulls()) documents.all().forEach((doc) => publish(doc));
      else if (session.capabilities.workspace?.diagnostics?.refreshSupport) void connection.languages.diagnostics.refresh().catch(() => undefined);
    },
    dispose: () => {
      stopped = true;
      timers.forEach((t) => clearTimeout(t));
    },
  };
}
