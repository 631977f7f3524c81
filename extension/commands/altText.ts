// Generate Alt Text (at the cursor or from a quick fix) and Fill Missing Alt Text (file / workspace):
// the model runs only when asked, the user reviews the text, and nothing is written when the
// document changed meanwhile. A batch is applied as one WorkspaceEdit (one undo).
import * as vscode from 'vscode';
import * as P from '../../daemon/protocol.js';
import { inFlightFor, inOrder } from '../../daemon/client/inOrder.js';
import { batchEdits, planBatch, type BatchDocument, type BatchItem, type SkippedItem } from '../../daemon/alttext/batch.js';
import { captionToAltText } from '../../daemon/alttext/caption.js';
import { checkReferenceFile } from '../../daemon/alttext/check.js';
import { AltEditError, altTextEdits } from '../../daemon/alttext/edits.js';
import type { ImageFileAccess } from '../../daemon/alttext/imageFiles.js';
import { readConfig } from '../config.js';
import type { Ctx } from '../ctx.js';
import { imageRefFor } from '../imageRef.js';
import { parseImages } from '../../daemon/alttext/references/index.js';
import type { ImageReference, OffsetEdit } from '../../daemon/alttext/references/types.js';
import { nameOf } from './imageTasks.js';
import { isCancellation, runWithProgress, showError } from './run.js';
import { errorMessage } from '../../daemon/client/shared.js';

/** File name patterns of the languages alt text is checked in. */
const LANGUAGE_GLOBS: Record<string, string> = {
  markdown: '*.{md,markdown}',
  mdx: '*.mdx',
  html: '*.{html,htm}',
  javascriptreact: '*.jsx',
  typescriptreact: '*.tsx',
  javascript: '*.{js,mjs}',
  vue: '*.vue',
  svelte: '*.svelte',
  astro: '*.astro',
  php: '*.php',
};
const MAX_WORKSPACE_FILES = 2000;

export function registerAltTextCommands(ctx: Ctx): void {
  ctx.registerCommand('paligemma.generateAltText', async () => {
    const editor = vscode.window.activeTextEditor;
    if (!editor) return void vscode.window.showInformationMessage('PaliGemma: open a document with an image first.');
    const doc = editor.document;
    const offset = doc.offsetAt(editor.selection.active);
    const { references, error } = parseImages(doc.getText(), doc.languageId, doc.uri.path);
    if (error) return void vscode.window.showErrorMessage(`PaliGemma: this document does not parse: ${error}`);
    const withAlt = references.filter((r) => r.alt);
    const line = doc.lineAt(editor.selection.active.line).range;
    const onLine = (r: ImageReference) => r.span.start <= doc.offsetAt(line.end) && r.span.end >= doc.offsetAt(line.start);
    const image =
      withAlt.find((r) => r.span.start <= offset && offset <= r.span.end) ??
      withAlt.filter(onLine).sort((a, b) => Math.abs(a.span.start - offset) - Math.abs(b.span.start - offset))[0];
    if (!image) return void vscode.window.showInformationMessage('PaliGemma: put the cursor on an image (Markdown, HTML or JSX) to generate its alt text.');
    await generateFor(ctx, doc, image, doc.version);
  });

  ctx.registerCommand('paligemma.fillMissingAltText', async (arg) => {
    const doc = arg instanceof vscode.Uri ? await vscode.workspace.openTextDocument(arg) : vscode.window.activeTextEditor?.document;
    if (!doc) return void vscode.window.showInformationMessage('PaliGemma: open a Markdown, HTML or JSX file first.');
    await fillMissing(ctx, [doc], nameOf(doc.uri));
  });

  ctx.registerCommand('paligemma.fillMissingAltTextWorkspace', async (arg) => {
    const folder = arg instanceof vscode.Uri ? arg : undefined;
    const cfg = readConfig();
    const globs = cfg.altText.fileTypes.map((l) => LANGUAGE_GLOBS[l]).filter(Boolean);
    if (!globs.length) return void vscode.window.showWarningMessage('PaliGemma: no supported languages in paligemma.altText.fileTypes.');
    const names = globs
      .map((g) => g.replace(/^\*\./, ''))
      .join(',')
      .replace(/[{}]/g, '');
    const include = folder ? new vscode.RelativePattern(folder, `**/*.{${names}}`) : `**/*.{${names}}`;
    const uris = await vscode.workspace.findFiles(include, cfg.altText.exclude || undefined, MAX_WORKSPACE_FILES + 1);
    if (uris.length > MAX_WORKSPACE_FILES) {
      void vscode.window.showWarningMessage(`PaliGemma: more than ${MAX_WORKSPACE_FILES} files; only the first ${MAX_WORKSPACE_FILES} are checked.`);
    }
    const docs: vscode.TextDocument[] = [];
    for (const uri of uris.slice(0, MAX_WORKSPACE_FILES)) {
      const doc = await vscode.workspace.openTextDocument(uri);
      if (languageOf(doc, cfg.altText.fileTypes)) docs.push(doc);
    }
    await fillMissing(ctx, docs, folder ? nameOf(folder) : 'the workspace');
  });
}

/**
 * The alt text language of a document among `fileTypes`: its language id, or the one its file
 * extension belongs to when VS Code knows no language for it (stock VS Code opens `.mdx` as plain text).
 */
function languageOf(doc: vscode.TextDocument, fileTypes: string[]): string | undefined {
  if (fileTypes.includes(doc.languageId)) return doc.languageId;
  if (doc.languageId !== 'plaintext') return undefined;
  const ext = doc.uri.path.split('.').pop()?.toLowerCase() ?? '';
  return fileTypes.find((l) =>
    LANGUAGE_GLOBS[l]
      ?.replace(/^\*\.\{?|\}$/g, '')
      .split(',')
      .includes(ext),
  );
}

async function generateFor(ctx: Ctx, doc: vscode.TextDocument, image: ImageReference, version: number): Promise<void> {
  if (image.alt?.dynamic) return void vscode.window.showInformationMessage('PaliGemma: this alt text is computed by an expression; edit it by hand.');
  const folder = vscode.workspace.getWorkspaceFolder(doc.uri) ?? vscode.workspace.workspaceFolders?.[0];
  const documentPath = doc.uri.scheme === 'untitled' ? `${folder?.uri.path ?? ''}/untitled` : doc.uri.path;
  const base = doc.uri.scheme === 'untitled' && folder ? folder.uri : doc.uri;
  const found = await checkReferenceFile(image, documentPath, { files: workspaceFiles(base), rootPath: folder?.uri.path });
  if (!found.ok) return void vscode.window.showErrorMessage(`PaliGemma: ${found.message}`);
  const uri = base.with({ path: found.file.path, query: '', fragment: '' });
  const cfg = readConfig();
  const ref = await imageRefFor(uri);
  const result = await runWithProgress(ctx.client, 'Writing alt text for', nameOf(uri), (streamId, token) =>
    ctx.client.sendRequest(P.Caption.type, { image: ref, streamId, language: cfg.captionLanguage, decoding: { maxNewTokens: cfg.maxNewTokens } }, token),
  );
  if (!result) return;
  const proposal = captionToAltText(result.text);
  const alt = await vscode.window.showInputBox({
    title: `Alt text for ${nameOf(uri)}`,
    value: proposal,
    prompt: 'Say what the image shows, for someone who cannot see it. Edit, then Enter to insert; Escape to cancel.',
    validateInput: (v) => (v.trim() ? undefined : 'Empty alt text: use "Mark as decorative" for decorative images'),
  });
  if (alt === undefined) return;
  if (doc.version !== version) {
    return void vscode.window.showWarningMessage('PaliGemma: the document changed while the alt text was generated; nothing was written.');
  }
  try {
    await applyOffsetEdits(doc, altTextEdits(image, alt), 'Generate alt text');
  } catch (err) {
    if (err instanceof AltEditError) return void vscode.window.showErrorMessage(`PaliGemma: ${err.message}`);
    throw err;
  }
}

async function applyOffsetEdits(doc: vscode.TextDocument, edits: OffsetEdit[], label: string): Promise<boolean> {
  const edit = new vscode.WorkspaceEdit();
  for (const e of edits) edit.replace(doc.uri, toRange(doc, e), e.newText, { label, needsConfirmation: false });
  return vscode.workspace.applyEdit(edit);
}

function toRange(doc: vscode.TextDocument, e: OffsetEdit): vscode.Range {
  return new vscode.Range(doc.positionAt(e.start), doc.positionAt(e.end));
}

interface ReviewItem extends vscode.QuickPickItem {
  /** Set for a proposal that can be applied; skipped and failed items only inform. */
  proposal?: { item: BatchItem; altText: string };
}

/** Images read through VS Code, so remote and virtual workspaces work; paths are URI paths under `base`. */
function workspaceFiles(base: vscode.Uri): ImageFileAccess {
  const at = (path: string) => base.with({ path, query: '', fragment: '' });
  return {
    async stat(path) {
      try {
        const st = await vscode.workspace.fs.stat(at(path));
        return { type: st.type & vscode.FileType.File ? 'file' : st.type & vscode.FileType.Directory ? 'directory' : 'other', size: st.size };
      } catch (err) {
        if (err instanceof vscode.FileSystemError && err.code === 'FileNotFound') return undefined;
        throw err;
      }
    },
    readFile: async (path) => vscode.workspace.fs.readFile(at(path)),
  };
}

function skippedItem(s: SkippedItem, byUri: Map<string, vscode.TextDocument>, failed: boolean): ReviewItem {
  const doc = byUri.get(s.uri)!;
  const where = vscode.workspace.asRelativePath(doc.uri);
  const line = s.problem ? `:${doc.positionAt(s.problem.image.span.start).line + 1}` : '';
  return {
    label: `${failed ? '$(error)' : '$(circle-slash)'} ${s.problem?.image.src || nameOf(doc.uri)}`,
    description: `${where}${line}`,
    detail: `${failed ? 'failed' : 'skipped'}: ${s.reason}`,
  };
}

/** The review: proposals to keep or uncheck, then what was skipped and what failed, with reasons. */
async function review(title: string, proposals: ReviewItem[], skipped: ReviewItem[], failed: ReviewItem[]): Promise<ReviewItem[] | undefined> {
  const pick = vscode.window.createQuickPick<ReviewItem>();
  const separator = (label: string): ReviewItem => ({ label, kind: vscode.QuickPickItemKind.Separator });
  pick.items = [
    ...(proposals.length ? [separator('Proposed alt text'), ...proposals] : []),
    ...(skipped.length ? [separator(`Skipped (${skipped.length})`), ...skipped] : []),
    ...(failed.length ? [separator(`Failed (${failed.length})`), ...failed] : []),
  ];
  pick.canSelectMany = true;
  pick.selectedItems = proposals;
  pick.title = title;
  pick.placeholder = proposals.length ? 'Uncheck what should not be applied, then Enter' : 'Nothing can be written: see why below (Escape to close)';
  pick.matchOnDescription = true;
  pick.matchOnDetail = true;
  pick.ignoreFocusOut = true;
  return new Promise((resolve) => {
    let accepted = false;
    pick.onDidChangeSelection((selected) => {
      // Skipped and failed rows are there to be read, not chosen.
      if (selected.some((i) => !i.proposal)) pick.selectedItems = selected.filter((i) => i.proposal);
    });
    pick.onDidAccept(() => {
      accepted = true;
      resolve([...pick.selectedItems]);
      pick.hide();
    });
    pick.onDidHide(() => {
      if (!accepted) resolve(undefined);
      pick.dispose();
    });
    pick.show();
  });
}

async function fillMissing(ctx: Ctx, docs: vscode.TextDocument[], where: string): Promise<void> {
  if (!docs.length) return void vscode.window.showInformationMessage(`PaliGemma: no Markdown, MDX, HTML or JSX file in ${where}.`);
  const cfg = readConfig();
  const byUri = new Map(docs.map((d) => [d.uri.toString(), d]));
  const base = vscode.workspace.workspaceFolders?.[0]?.uri ?? docs[0].uri;
  const batchDocs: BatchDocument[] = docs.map((d) => {
    const folder = vscode.workspace.getWorkspaceFolder(d.uri) ?? vscode.workspace.workspaceFolders?.[0];
    const path = d.uri.scheme === 'untitled' ? `${folder?.uri.path ?? ''}/untitled` : d.uri.path;
    return { uri: d.uri.toString(), path, rootPath: folder?.uri.path, version: d.version, languageId: languageOf(d, cfg.altText.fileTypes), text: d.getText() };
  });
  const plan = await planBatch(batchDocs, { files: workspaceFiles(base), placeholders: vscode.workspace.getConfiguration('paligemma').get<string[]>('altText.placeholders', []) });
  for (const s of plan.skipped) ctx.log.info(`fill alt text: skipped ${s.uri}${s.problem ? ` (${s.problem.image.src})` : ''}: ${s.reason}`);

  const texts = new Map<string, string>();
  const failures = new Map<string, string>();
  const total = plan.images.size;
  if (total) {
    try {
      await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Writing alt text for ${total} image${total > 1 ? 's' : ''}`, cancellable: true },
        async (progress, token) => {
          // Enough requests in flight for the daemon's batches (GPU: 16 for batches of 8; CPU: one).
          await inOrder(
            [...plan.images],
            () => inFlightFor(ctx.client.model?.maxBatch),
            async ([, item]) => {
              const image = await imageRefFor(base.with({ path: item.file.path, query: '', fragment: '' }));
              return ctx.client.sendRequest(P.Caption.type, { image, language: cfg.captionLanguage, decoding: { maxNewTokens: cfg.maxNewTokens } }, token);
            },
            (outcome, [key, item], i) => {
              if (token.isCancellationRequested || (!outcome.ok && isCancellation(outcome.error))) return false;
              if (outcome.ok) {
                const alt = captionToAltText(outcome.value.text);
                if (alt) texts.set(key, alt);
                else failures.set(key, 'the model gave no description');
              } else {
                const message = errorMessage(outcome.error);
                failures.set(key, message);
                ctx.log.warn(`fill alt text: ${item.problem.image.src}: ${message}`);
              }
              progress.report({ message: `${item.problem.image.src} (${i + 1}/${total})`, increment: 100 / total });
              return true;
            },
          );
        },
      );
    } catch (err) {
      await showError(err);
      return;
    }
  }
  const proposals: ReviewItem[] = plan.items
    .filter((item) => texts.has(item.imageKey))
    .map((item) => {
      const doc = byUri.get(item.uri)!;
      const pos = doc.positionAt(item.problem.image.span.start);
      const altText = texts.get(item.imageKey)!;
      return {
        proposal: { item, altText },
        label: altText,
        description: `${vscode.workspace.asRelativePath(doc.uri)}:${pos.line + 1}`,
        detail: `${item.problem.kind === 'placeholder' ? `replaces "${item.problem.image.alt?.value}"` : item.problem.kind === 'empty' ? 'empty alt text' : 'no alt text'} · ${item.problem.image.src}`,
      };
    });
  const skipped = plan.skipped.map((s) => skippedItem(s, byUri, false));
  // Images not described (a decoding error, cancelled before their turn) fail every item that uses them.
  const failed = plan.items
    .filter((item) => !texts.has(item.imageKey))
    .map((item) => skippedItem({ uri: item.uri, problem: item.problem, reason: failures.get(item.imageKey) ?? 'not described (cancelled)' }, byUri, true));
  if (!proposals.length && !skipped.length && !failed.length) {
    return void vscode.window.showInformationMessage(`PaliGemma: no image in ${where} needs alt text.`);
  }
  const chosen = await review(`Alt text for ${where}`, proposals, skipped, failed);
  if (chosen === undefined) return;
  const accepted = chosen.flatMap((c) => (c.proposal ? [c.proposal] : []));

  const stale = new Set(accepted.filter((p) => byUri.get(p.item.uri)!.version !== p.item.version).map((p) => p.item.uri));
  const applied = accepted.filter((p) => !stale.has(p.item.uri));
  const perDoc = batchEdits(applied);
  const edit = new vscode.WorkspaceEdit();
  for (const [uri, edits] of perDoc) {
    const doc = byUri.get(uri)!;
    for (const e of edits) edit.replace(doc.uri, toRange(doc, e), e.newText, { label: 'Fill missing alt text', needsConfirmation: false });
  }
  if (perDoc.size && !(await vscode.workspace.applyEdit(edit))) {
    return void vscode.window.showErrorMessage('PaliGemma: VS Code refused the edit; nothing was changed.');
  }
  const staleNote = stale.size ? ` ${stale.size} file(s) changed meanwhile and were left alone: ${[...stale].map((u) => nameOf(vscode.Uri.parse(u))).join(', ')}.` : '';
  const notApplied = proposals.length - applied.length;
  const counts = `${applied.length} fixed, ${skipped.length + notApplied} skipped, ${failed.length} failed`;
  const undo = applied.length ? ' Undo reverts it all.' : '';
  void vscode.window.showInformationMessage(`PaliGemma: alt text in ${where}: ${counts}.${staleNote}${undo}`);
}
