// Describe Image, Extract Text, Ask About Image, Detect Objects: on an image from the explorer, the
// image preview, the image reference under the cursor, or a file picked in a dialog.
import * as vscode from 'vscode';
import * as P from '../../daemon/protocol.js';
import { readConfig } from '../config.js';
import type { Ctx } from '../ctx.js';
import { imageRefFor } from '../imageRef.js';
import { hoverableImages, referenceAt } from '../../daemon/alttext/references/index.js';
import { hasImageExtension } from '../../daemon/alttext/references/paths.js';
import { IMAGE_EXTENSIONS } from '../../daemon/client/shared.js';
import { resolveReference } from '../resolve.js';
import { runWithProgress } from './run.js';

export function registerImageTaskCommands(ctx: Ctx): void {
  ctx.registerCommand('paligemma.describeImage', async (arg) => {
    const uri = await pickImage(arg);
    if (uri) await describe(ctx, uri);
  });
  ctx.registerCommand('paligemma.describeFromHover', async (arg) => {
    const uri = typeof arg === 'string' ? vscode.Uri.parse(arg) : await pickImage(arg);
    if (uri) await describe(ctx, uri, true);
  });
  ctx.registerCommand('paligemma.extractText', async (arg) => {
    const uri = await pickImage(arg);
    if (!uri) return;
    const cfg = readConfig();
    const image = await imageRefFor(uri);
    const result = await runWithProgress(ctx.client, 'Reading the text in', nameOf(uri), (streamId, token) =>
      ctx.client.sendRequest(P.Ocr.type, { image, streamId, decoding: { maxNewTokens: cfg.maxNewTokens } }, token),
    );
    if (!result) return;
    logResult(ctx, 'ocr', uri, result);
    if (!result.text.trim()) void vscode.window.showInformationMessage(`PaliGemma found no text in ${nameOf(uri)}.`);
    else await showResult(ctx, uri, `Text in ${nameOf(uri)}: ${result.text}`, result.text);
  });
  ctx.registerCommand('paligemma.askAboutImage', async (arg) => {
    const uri = await pickImage(arg);
    if (!uri) return;
    const question = await vscode.window.showInputBox({
      title: `Ask about ${nameOf(uri)}`,
      prompt: 'A question about the image',
      placeHolder: 'How many people are in the picture?',
      validateInput: (v) => (v.trim() ? undefined : 'Type a question'),
    });
    if (!question) return;
    const cfg = readConfig();
    const image = await imageRefFor(uri);
    const result = await runWithProgress(ctx.client, 'Asking about', nameOf(uri), (streamId, token) =>
      ctx.client.sendRequest(P.Answer.type, { image, question: question.trim(), language: cfg.captionLanguage, streamId, decoding: { maxNewTokens: cfg.maxNewTokens } }, token),
    );
    if (!result) return;
    logResult(ctx, `answer "${question}"`, uri, result);
    await showResult(ctx, uri, `${question.trim()} — ${result.text}`, result.text);
  });
  ctx.registerCommand('paligemma.detectObjects', async (arg) => {
    const uri = await pickImage(arg);
    if (!uri) return;
    const input = await vscode.window.showInputBox({
      title: `Detect objects in ${nameOf(uri)}`,
      prompt: 'What to look for; separate several with ;',
      placeHolder: 'cat ; dog',
      validateInput: (v) => (splitObjects(v).length ? undefined : 'Name at least one object'),
    });
    if (!input) return;
    const objects = splitObjects(input);
    if (ctx.inspector) {
      // Boxes need the picture: the inspector draws them over the image.
      await ctx.inspector.open(uri, { kind: 'detect', objects });
      return;
    }
    const image = await imageRefFor(uri);
    const result = await runWithProgress(ctx.client, `Looking for ${objects.join(', ')} in`, nameOf(uri), (streamId, token) =>
      ctx.client.sendRequest(P.Detect.type, { image, objects, streamId }, token),
    );
    if (!result) return;
    const summary = result.objects.length
      ? result.objects.map((o) => `${o.label} (${Math.round(o.box.x0)}, ${Math.round(o.box.y0)})–(${Math.round(o.box.x1)}, ${Math.round(o.box.y1)})`).join('; ')
      : 'nothing found';
    ctx.log.info(`detect ${objects.join(';')} in ${uri.toString(true)}: ${summary}`);
    await showResult(ctx, uri, `${nameOf(uri)}: ${summary}`, summary);
  });
}

export async function describe(ctx: Ctx, uri: vscode.Uri, withText = false): Promise<void> {
  const cfg = readConfig();
  const image = await imageRefFor(uri);
  const caption = await runWithProgress(ctx.client, 'Describing', nameOf(uri), (streamId, token) =>
    ctx.client.sendRequest(P.Caption.type, { image, streamId, language: cfg.captionLanguage, decoding: { maxNewTokens: cfg.maxNewTokens } }, token),
  );
  if (!caption) return;
  logResult(ctx, 'caption', uri, caption);
  let message = `${nameOf(uri)}: ${caption.text}`;
  if (withText) {
    // The hover shows the text in the image too: compute it now so the next hover has both.
    const ocr = await runWithProgress(ctx.client, 'Reading the text in', nameOf(uri), (streamId, token) =>
      ctx.client.sendRequest(P.Ocr.type, { image, streamId, decoding: { maxNewTokens: cfg.maxNewTokens } }, token),
    );
    if (ocr) logResult(ctx, 'ocr', uri, ocr);
    if (ocr?.text.trim()) message += ` — text: “${ocr.text.trim()}”`;
  }
  await showResult(ctx, uri, message, caption.text);
}

async function showResult(ctx: Ctx, uri: vscode.Uri, message: string, copyText: string): Promise<void> {
  const actions = ctx.inspector ? ['Copy', 'Inspect'] : ['Copy'];
  const choice = await vscode.window.showInformationMessage(message, ...actions);
  if (choice === 'Copy') await vscode.env.clipboard.writeText(copyText);
  if (choice === 'Inspect') await ctx.inspector?.open(uri);
}

function logResult(ctx: Ctx, task: string, uri: vscode.Uri, r: P.ResultMeta & { text: string }): void {
  ctx.log.info(`${task} ${uri.toString(true)} (${r.model}, ${r.ms} ms${r.cached ? ', cached' : ''}): ${r.text}`);
}

export function nameOf(uri: vscode.Uri): string {
  return uri.path.split('/').pop() ?? uri.toString();
}

function splitObjects(input: string): string[] {
  return input
    .split(/[;\n]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * The image a command works on: the URI it was given (explorer, editor title), the image shown in
 * the active image preview, the image reference under the cursor, or one picked in a dialog.
 */
export async function pickImage(arg: unknown): Promise<vscode.Uri | undefined> {
  if (arg instanceof vscode.Uri) {
    if (hasImageExtension(arg.path)) return arg;
    void vscode.window.showErrorMessage(`PaliGemma: ${nameOf(arg)} is not an image file (${IMAGE_EXTENSIONS.join(', ')}).`);
    return undefined;
  }
  const tab = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  if (tab instanceof vscode.TabInputCustom && hasImageExtension(tab.uri.path)) return tab.uri;
  const editor = vscode.window.activeTextEditor;
  if (editor) {
    const doc = editor.document;
    const ref = referenceAt(hoverableImages(doc.getText(), doc.languageId), doc.offsetAt(editor.selection.active));
    const uri = ref && (await resolveReference(doc, ref));
    if (uri) return uri;
  }
  const picked = await vscode.window.showOpenDialog({
    canSelectMany: false,
    openLabel: 'Use Image',
    filters: { Images: IMAGE_EXTENSIONS },
    defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
  });
  return picked?.[0];
}
