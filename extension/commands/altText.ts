// Generate Alt Text (at the cursor or from a quick fix) and Fill Missing Alt Text (file / workspace):
// the model runs only when asked, the user reviews the text, and nothing is written when the
// document changed meanwhile. A batch is applied as one WorkspaceEdit (one undo).
import * as vscode from 'vscode';
import * as P from '../../daemon/protocol.js';
import { inFlightFor, inOrder } from '../../daemon/client/inOrder.js';
import { batchEdits, planBatch, type BatchDocument, type BatchItem } from '../../daemon/alttext/batch.js';
import { captionToAltText } from '../../daemon/alttext/caption.js';
import { findAltTextProblems } from '../../daemon/alttext/diagnose.js';
import { AltEditError, altTextEdits } from '../../daemon/alttext/edits.js';
import { readConfig } from '../config.js';
import type { Ctx } from '../ctx.js';
import { imageRefFor } from '../imageRef.js';
import { parseImages } from '../../daemon/alttext/references/index.js';
import type { ImageReference, OffsetEdit } from '../../daemon/alttext/references/types.js';
import { resolveReference, resolveSrc } from '../resolve.js';
import { nameOf } from './imageTasks.js';
import { isCancellation, runWithProgress, showError } from './run.js';

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
    const { references, error } = parseImages(doc.getText(), doc.languageId);
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

  // From the quick fix: [document URI, version, start offset of the image].
  ctx.registerCommand('paligemma.applyAltTextFix', async (uriArg, versionArg, startArg) => {
    const doc = await vscode.workspace.openTextDocument(vscode.Uri.parse(String(uriArg)));
    if (doc.version !== versionArg) return void vscode.window.showWarningMessage('PaliGemma: the document changed; try the quick fix again.');
    const image = parseImages(doc.getText(), doc.languageId).references.find((r) => r.alt && r.span.start === startArg);
    if (!image) return;
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
    const names = globs.map((g) => g.replace(/^\*\./, '')).join(',').replace(/[{}]/g, '');
    const include = folder ? new vscode.RelativePattern(folder, `**/*.{${names}}`) : `**/*.{${names}}`;
    const uris = await vscode.workspace.findFiles(include, cfg.altText.exclude || undefined, MAX_WORKSPACE_FILES + 1);
    if (uris.length > MAX_WORKSPACE_FILES) {
      void vscode.window.showWarningMessage(`PaliGemma: more than ${MAX_WORKSPACE_FILES} files; only the first ${MAX_WORKSPACE_FILES} are checked.`);
    }
    const docs: vscode.TextDocument[] = [];
    for (const uri of uris.slice(0, MAX_WORKSPACE_FILES)) {
      const doc = await vscode.workspace.openTextDocument(uri);
      if (cfg.altText.fileTypes.includes(doc.languageId)) docs.push(doc);
    }
    await fillMissing(ctx, docs, folder ? nameOf(folder) : 'the workspace');
  });
}

async function generateFor(ctx: Ctx, doc: vscode.TextDocument, image: ImageReference, version: number): Promise<void> {
  if (image.alt?.dynamic) return void vscode.window.showInformationMessage('PaliGemma: this alt text is computed by an expression; edit it by hand.');
  if (!image.src) return void vscode.window.showInformationMessage('PaliGemma: the image path is computed, so the image cannot be read.');
  const uri = await resolveReference(doc, image);
  if (!uri) return void vscode.window.showErrorMessage(`PaliGemma: cannot find ${image.src} (remote images are never fetched).`);
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

interface Proposal extends vscode.QuickPickItem {
  item: BatchItem;
  altText: string;
}

async function fillMissing(ctx: Ctx, docs: vscode.TextDocument[], where: string): Promise<void> {
  const byUri = new Map(docs.map((d) => [d.uri.toString(), d]));
  const batchDocs: BatchDocument[] = docs.map((d) => ({ uri: d.uri.toString(), version: d.version, languageId: d.languageId, text: d.getText() }));

  // Resolve every image path first (async file checks); planning then only looks them up.
  const keys = new Map<string, string>();
  for (const bd of batchDocs) {
    for (const p of findAltTextProblems(bd.text, bd.languageId).problems) {
      const k = `${bd.uri}\n${p.image.src}`;
      if (!p.image.src || keys.has(k)) continue;
      const uri = await resolveSrc(byUri.get(bd.uri)!.uri, p.image.src, true);
      if (uri) keys.set(k, uri.toString());
    }
  }
  const plan = planBatch(batchDocs, { imageKey: (doc, src) => keys.get(`${doc.uri}\n${src}`) });
  for (const s of plan.skipped) ctx.log.info(`fill alt text: skipped ${s.uri}: ${s.reason}`);
  if (!plan.items.length) {
    return void vscode.window.showInformationMessage(
      `PaliGemma: no image in ${where} needs alt text${plan.skipped.length ? ` that can be generated (${plan.skipped.length} skipped, see the log)` : ''}.`,
    );
  }

  const cfg = readConfig();
  const texts = new Map<string, string>();
  const total = plan.images.size;
  try {
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Writing alt text for ${total} image${total > 1 ? 's' : ''}`, cancellable: true },
      async (progress, token) => {
        // Enough requests in flight for the daemon's batches (GPU: 16 for batches of 8; CPU: one).
        await inOrder(
          [...plan.images],
          () => inFlightFor(ctx.client.model?.maxBatch),
          async ([key]) => {
            const image = await imageRefFor(vscode.Uri.parse(key));
            return ctx.client.sendRequest(P.Caption.type, { image, language: cfg.captionLanguage, decoding: { maxNewTokens: cfg.maxNewTokens } }, token);
          },
          (outcome, [key, item], i) => {
            if (token.isCancellationRequested || (!outcome.ok && isCancellation(outcome.error))) return false;
            if (outcome.ok) texts.set(key, captionToAltText(outcome.value.text));
            else ctx.log.warn(`fill alt text: ${item.problem.image.src}: ${outcome.error instanceof Error ? outcome.error.message : String(outcome.error)}`);
            progress.report({ message: `${nameOf(vscode.Uri.parse(key))} (${i + 1}/${total})`, increment: 100 / total });
            return true;
          },
        );
      },
    );
  } catch (err) {
    await showError(err);
    return;
  }
  const proposals: Proposal[] = plan.items
    .filter((item) => texts.get(item.imageKey))
    .map((item) => {
      const doc = byUri.get(item.uri)!;
      const pos = doc.positionAt(item.problem.image.span.start);
      const altText = texts.get(item.imageKey)!;
      return {
        item,
        altText,
        label: altText,
        description: `${vscode.workspace.asRelativePath(doc.uri)}:${pos.line + 1}`,
        detail: `${item.problem.kind === 'placeholder' ? `replaces "${item.problem.image.alt?.value}"` : item.problem.kind === 'empty' ? 'empty alt text' : 'no alt text'} · ${item.problem.image.src}`,
        picked: true,
      };
    });
  if (!proposals.length) return void vscode.window.showWarningMessage('PaliGemma: no alt text was generated (see the log).');
  const chosen = await vscode.window.showQuickPick(proposals, {
    canPickMany: true,
    title: `Alt text for ${where}: uncheck what should not be applied`,
    matchOnDescription: true,
    matchOnDetail: true,
  });
  if (!chosen?.length) return;

  const stale = new Set(chosen.filter((p) => byUri.get(p.item.uri)!.version !== p.item.version).map((p) => p.item.uri));
  const perDoc = batchEdits(chosen.filter((p) => !stale.has(p.item.uri)));
  const edit = new vscode.WorkspaceEdit();
  let count = 0;
  for (const [uri, edits] of perDoc) {
    const doc = byUri.get(uri)!;
    for (const e of edits) edit.replace(doc.uri, toRange(doc, e), e.newText, { label: 'Fill missing alt text', needsConfirmation: false });
    count += edits.length;
  }
  if (count && !(await vscode.workspace.applyEdit(edit))) {
    return void vscode.window.showErrorMessage('PaliGemma: VS Code refused the edit; nothing was changed.');
  }
  const staleNote = stale.size ? ` ${stale.size} file(s) changed meanwhile and were left alone: ${[...stale].map((u) => nameOf(vscode.Uri.parse(u))).join(', ')}.` : '';
  void vscode.window.showInformationMessage(`PaliGemma: alt text written for ${chosen.length - [...chosen].filter((p) => stale.has(p.item.uri)).length} image(s) in ${perDoc.size} file(s).${staleNote} Undo reverts it all.`);
}
