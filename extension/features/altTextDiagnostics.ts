// Alt text diagnostics (missing / empty / placeholder) with "Generate alt text" and "Mark as
// decorative" quick fixes. The quick fix runs the model only when it is chosen (a command).
import * as vscode from 'vscode';
import { findAltTextProblems, type AltTextProblem } from '../../daemon/alttext/diagnose.js';
import { decorativeEdits } from '../../daemon/alttext/edits.js';
import { readConfig, type AltTextSeverity } from '../config.js';
import type { Ctx } from '../ctx.js';

const SEVERITY: Record<Exclude<AltTextSeverity, 'off'>, vscode.DiagnosticSeverity> = {
  error: vscode.DiagnosticSeverity.Error,
  warning: vscode.DiagnosticSeverity.Warning,
  information: vscode.DiagnosticSeverity.Information,
  hint: vscode.DiagnosticSeverity.Hint,
};
const DEBOUNCE_MS = 300;

export function registerAltTextDiagnostics(ctx: Ctx): void {
  const collection = vscode.languages.createDiagnosticCollection('paligemma-alt-text');
  const timers = new Map<string, NodeJS.Timeout>();

  const check = (doc: vscode.TextDocument) => {
    const cfg = readConfig().altText;
    if (cfg.severity === 'off' || !cfg.fileTypes.includes(doc.languageId)) {
      collection.delete(doc.uri);
      return;
    }
    const { problems, error } = findAltTextProblems(doc.getText(), doc.languageId);
    // A document that does not parse right now (mid-edit) keeps no stale ranges.
    if (error) ctx.log.debug(`alt text: ${doc.uri.toString(true)} does not parse: ${error}`);
    collection.set(doc.uri, problems.map((p) => toDiagnostic(doc, p, SEVERITY[cfg.severity as keyof typeof SEVERITY])));
  };
  const schedule = (doc: vscode.TextDocument) => {
    const key = doc.uri.toString();
    clearTimeout(timers.get(key));
    timers.set(key, setTimeout(() => (timers.delete(key), check(doc)), DEBOUNCE_MS));
  };
  const languagesContext = () => void vscode.commands.executeCommand('setContext', 'paligemma.altTextLanguages', readConfig().altText.fileTypes);

  languagesContext();
  for (const doc of vscode.workspace.textDocuments) check(doc);
  ctx.push(
    collection,
    vscode.workspace.onDidOpenTextDocument(check),
    vscode.workspace.onDidChangeTextDocument((e) => schedule(e.document)),
    vscode.workspace.onDidCloseTextDocument((doc) => {
      clearTimeout(timers.get(doc.uri.toString()));
      collection.delete(doc.uri);
    }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration('paligemma.altText')) return;
      languagesContext();
      for (const doc of vscode.workspace.textDocuments) check(doc);
    }),
    { dispose: () => timers.forEach((t) => clearTimeout(t)) },
    vscode.languages.registerCodeActionsProvider({ scheme: '*' }, new AltTextFixes(), {
      providedCodeActionKinds: [vscode.CodeActionKind.QuickFix],
    }),
  );
}

function toDiagnostic(doc: vscode.TextDocument, p: AltTextProblem, severity: vscode.DiagnosticSeverity): vscode.Diagnostic {
  const d = new vscode.Diagnostic(new vscode.Range(doc.positionAt(p.span.start), doc.positionAt(p.span.end)), p.message, severity);
  d.source = 'PaliGemma';
  d.code = `alt-${p.kind}`;
  return d;
}

class AltTextFixes implements vscode.CodeActionProvider {
  provideCodeActions(doc: vscode.TextDocument, _range: vscode.Range, context: vscode.CodeActionContext): vscode.CodeAction[] {
    const ours = context.diagnostics.filter((d) => d.source === 'PaliGemma');
    if (!ours.length || !readConfig().altText.fileTypes.includes(doc.languageId)) return [];
    const { problems } = findAltTextProblems(doc.getText(), doc.languageId);
    const actions: vscode.CodeAction[] = [];
    for (const diagnostic of ours) {
      const start = doc.offsetAt(diagnostic.range.start);
      const end = doc.offsetAt(diagnostic.range.end);
      const problem = problems.find((p) => p.span.start === start && p.span.end === end);
      if (!problem) continue;
      const args = [doc.uri.toString(), doc.version, problem.image.span.start];
      if (problem.image.src) {
        const generate = new vscode.CodeAction('Generate alt text with PaliGemma', vscode.CodeActionKind.QuickFix);
        generate.command = { command: 'paligemma.applyAltTextFix', title: 'Generate alt text', arguments: args };
        generate.diagnostics = [diagnostic];
        generate.isPreferred = true;
        actions.push(generate);
      }
      const decorative = new vscode.CodeAction('Mark image as decorative', vscode.CodeActionKind.QuickFix);
      decorative.edit = new vscode.WorkspaceEdit();
      for (const e of decorativeEdits(problem.image)) {
        decorative.edit.replace(doc.uri, new vscode.Range(doc.positionAt(e.start), doc.positionAt(e.end)), e.newText);
      }
      decorative.diagnostics = [diagnostic];
      actions.push(decorative);
    }
    return actions;
  }
}
