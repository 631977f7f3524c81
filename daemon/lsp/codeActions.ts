// Quick fixes for alt-text problems: "Generate alt text" (the model runs only when the action is
// resolved, or executed as a command by clients that cannot resolve) and "Mark as decorative" (a
// plain edit). Edits carry the document version they were computed on, so a client never applies
// them to a document that changed meanwhile.
import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  type CancellationToken,
  type CodeAction,
  CodeActionKind,
  type Diagnostic,
  ErrorCodes,
  LSPErrorCodes,
  MessageType,
  ResponseError,
  ShowMessageNotification,
  type TextEdit,
  type WorkspaceEdit,
} from 'vscode-languageserver/node';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import { captionToAltText } from '../alttext/caption.js';
import type { CheckedProblem } from '../alttext/check.js';
import { AltEditError, altTextEdits, decorativeEdits } from '../alttext/edits.js';
import type { OffsetEdit } from '../alttext/references/types.js';
import { SOURCE, type ProblemData } from './diagnostics.js';
import { captionWithProgress } from './modelRun.js';
import type { Session } from './session.js';
import { errorMessage } from '../common/errors.js';

export const GENERATE_COMMAND = 'paligemma.lsp.generateAltText';
export const GENERATE_TITLE = 'Generate alt text with PaliGemma';
export const DECORATIVE_TITLE = 'Mark image as decorative';

/** Which image a Generate action is for. */
export interface GenerateData {
  uri: string;
  version: number;
  /** Start offset of the image syntax. */
  offset: number;
}

export function registerCodeActions(session: Session): void {
  const { connection, documents } = session;
  connection.onCodeAction(async (params) => {
    const canResolve = !!session.capabilities.textDocument?.codeAction?.resolveSupport?.properties.includes('edit');
    const doc = documents.get(params.textDocument.uri);
    if (!doc || !session.checksAltText(doc)) return [];
    const start = doc.offsetAt(params.range.start);
    const end = doc.offsetAt(params.range.end);
    const actions: CodeAction[] = [];
    for (const problem of (await session.check(doc)).problems) {
      if (problem.image.span.end < start || problem.image.span.start > end) continue;
      const diagnostics = params.context.diagnostics.filter((d) => d.source === SOURCE && d.code === `alt-${problem.kind}` && sameImage(doc, d, problem));
      const data: GenerateData = { uri: doc.uri, version: doc.version, offset: problem.image.span.start };
      // Only images whose file the model can read (not missing, damaged, remote or computed).
      if (problem.file && !problem.image.alt?.dynamic) {
        actions.push({
          title: GENERATE_TITLE,
          kind: CodeActionKind.QuickFix,
          diagnostics,
          isPreferred: true,
          ...(canResolve ? { data } : { command: { title: GENERATE_TITLE, command: GENERATE_COMMAND, arguments: [data] } }),
        });
      }
      try {
        const edits = decorativeEdits(problem.image);
        actions.push({ title: DECORATIVE_TITLE, kind: CodeActionKind.QuickFix, diagnostics, edit: workspaceEdit(session, doc, edits) });
      } catch (err) {
        if (!(err instanceof AltEditError)) throw err;
      }
    }
    return actions;
  });

  connection.onCodeActionResolve(async (action, token) => {
    if (action.edit || !isGenerateData(action.data)) return action;
    try {
      return { ...action, edit: await generateEdit(session, action.data, token) };
    } catch (err) {
      throw userFacing(session, err);
    }
  });

  connection.onExecuteCommand(async (params, token) => {
    if (params.command !== GENERATE_COMMAND) throw new ResponseError(ErrorCodes.InvalidParams, `unknown command ${params.command}`);
    const [data] = params.arguments ?? [];
    if (!isGenerateData(data)) throw new ResponseError(ErrorCodes.InvalidParams, `${GENERATE_COMMAND} needs {uri, version, offset}`);
    try {
      const edit = await generateEdit(session, data, token);
      const applied = await connection.workspace.applyEdit({ label: 'Generate alt text', edit });
      if (!applied.applied) show(session, MessageType.Warning, `PaliGemma: the alt text was not written${applied.failureReason ? `: ${applied.failureReason}` : ''}.`);
      return null;
    } catch (err) {
      throw userFacing(session, err);
    }
  });
}

/** The edit that writes the model's alt text for the image at `data.offset`. */
export async function generateEdit(session: Session, data: GenerateData, token: CancellationToken): Promise<WorkspaceEdit> {
  const doc = session.documents.get(data.uri);
  if (!doc) throw new UserError(`${data.uri} is not open; open it and ask for the fix again.`);
  const problem = await current(session, doc, data);
  if (!problem.file) throw new UserError(problem.unfixable ?? problem.message);
  const image = { path: problem.file.path, uri: pathToFileURL(problem.file.path).href, name: basename(problem.file.path) };
  const result = await captionWithProgress(session, 'Generating alt text', image, token);
  const alt = captionToAltText(result.text);
  if (!alt) throw new UserError(`the model gave no description of ${image.name}; write the alt text by hand.`);
  // The model takes a while: the document may have changed under it.
  const now = await current(session, doc, data);
  return workspaceEdit(session, doc, altTextEdits(now.image, alt));
}

async function current(session: Session, doc: TextDocument, data: GenerateData): Promise<CheckedProblem> {
  const changed = () => new ResponseError(LSPErrorCodes.ContentModified, 'PaliGemma: the document changed; ask for the fix again.');
  if (doc.version !== data.version) throw changed();
  const { problems } = await session.check(doc);
  if (doc.version !== data.version) throw changed();
  const problem = problems.find((p) => p.image.span.start === data.offset);
  if (!problem) throw new ResponseError(LSPErrorCodes.ContentModified, 'PaliGemma: that image has no alt-text problem any more.');
  return problem;
}

function workspaceEdit(session: Session, doc: TextDocument, edits: OffsetEdit[]): WorkspaceEdit {
  const textEdits: TextEdit[] = edits.map((e) => ({ range: { start: doc.positionAt(e.start), end: doc.positionAt(e.end) }, newText: e.newText }));
  if (session.capabilities.workspace?.workspaceEdit?.documentChanges) {
    return { documentChanges: [{ textDocument: { uri: doc.uri, version: doc.version }, edits: textEdits }] };
  }
  return { changes: { [doc.uri]: textEdits } };
}

/** The diagnostic is about this problem's image (by its data, or by where it is shown). */
function sameImage(doc: TextDocument, d: Diagnostic, p: CheckedProblem): boolean {
  const offset = (d.data as ProblemData | undefined)?.offset;
  if (typeof offset === 'number') return offset === p.image.span.start;
  return doc.offsetAt(d.range.start) === p.span.start && doc.offsetAt(d.range.end) === p.span.end;
}

function isGenerateData(v: unknown): v is GenerateData {
  const d = v as GenerateData | undefined;
  return !!d && typeof d.uri === 'string' && typeof d.version === 'number' && typeof d.offset === 'number';
}

/** A failure the user can act on; its message is shown as it is. */
export class UserError extends Error {}

/**
 * Errors reach the user as a message (clients show a failed resolve or command differently, some
 * not at all) and go back to the client as the request's error. Cancelling is not an error.
 */
function userFacing(session: Session, err: unknown): ResponseError<void> {
  if (err instanceof ResponseError && err.code === LSPErrorCodes.RequestCancelled) return err;
  const message = errorMessage(err);
  const text = message.startsWith('PaliGemma') ? message : `PaliGemma: ${message}`;
  show(session, MessageType.Error, text);
  return err instanceof ResponseError ? err : new ResponseError(ErrorCodes.InternalError, text);
}

/** A notification, not `window/showMessageRequest`: nothing waits for the user to close it. */
function show(session: Session, type: MessageType, message: string): void {
  void session.connection.sendNotification(ShowMessageNotification.type, { type, message });
}
