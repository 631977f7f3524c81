// Alt text on paste and drop: an image pasted or dropped into Markdown, MDX or HTML is saved the way
// VS Code's built-in Markdown paste saves it (destination.ts) and its reference is inserted with a
// placeholder alt; the model's description replaces the placeholder when it arrives. Offered as its
// own paste/drop kind, so the built-in edits stay a choice in the paste widget. When the inserted
// reference is no longer in the document as it was inserted (the user changed it, or chose
// another paste), nothing is touched and the alt text diagnostic flags the placeholder.
import * as vscode from 'vscode';
import { captionToAltText } from '../../daemon/alttext/caption.js';
import { hasImageExtension } from '../../daemon/alttext/references/paths.js';
import * as P from '../../daemon/protocol.js';
import { isCancellation, showError } from '../commands/run.js';
import { readConfig } from '../config.js';
import type { Ctx } from '../ctx.js';
import { exists, imageRefFor } from '../imageRef.js';
import { desiredPath, linkPath, numberedPath, pastedFileName } from './destination.js';
import { insertedReference, placeholderEdit, referenceOffset, type InsertedReference, type PasteDialect } from './placeholder.js';

const LANGUAGES = ['markdown', 'mdx', 'html'] as const;

export const PASTE_KIND = vscode.DocumentDropOrPasteEditKind.Empty.append('markdown', 'link', 'image', 'altText');
const HTML_KIND = vscode.DocumentDropOrPasteEditKind.Empty.append('html', 'img', 'altText');

interface PendingImage {
  /** Where it is written (new bytes) or where it already is (a workspace file). */
  uri: vscode.Uri;
  bytes?: Uint8Array;
  mimeType: string;
  ref: InsertedReference;
}

class AltTextEdit extends vscode.DocumentPasteEdit {
  constructor(
    insertText: string,
    title: string,
    kind: vscode.DocumentDropOrPasteEditKind,
    readonly document: vscode.TextDocument,
    readonly images: PendingImage[],
  ) {
    super(insertText, title, kind);
  }
}

class AltTextDropEdit extends vscode.DocumentDropEdit {
  constructor(
    insertText: string,
    title: string,
    kind: vscode.DocumentDropOrPasteEditKind,
    readonly document: vscode.TextDocument,
    readonly images: PendingImage[],
  ) {
    super(insertText, title, kind);
  }
}

export function registerAltTextPaste(ctx: Ctx): void {
  const selector = LANGUAGES.map((language) => ({ language }));
  const provider = new AltTextPasteProvider(ctx);
  ctx.push(
    vscode.languages.registerDocumentPasteEditProvider(selector, provider, {
      providedPasteEditKinds: [PASTE_KIND, HTML_KIND],
      pasteMimeTypes: ['image/*', 'files'],
    }),
    vscode.languages.registerDocumentDropEditProvider(selector, provider, {
      providedDropEditKinds: [PASTE_KIND, HTML_KIND],
      dropMimeTypes: ['image/*', 'files', 'text/uri-list'],
    }),
  );
}

class AltTextPasteProvider implements vscode.DocumentPasteEditProvider<AltTextEdit>, vscode.DocumentDropEditProvider<AltTextDropEdit> {
  constructor(private readonly ctx: Ctx) {}

  async provideDocumentPasteEdits(
    document: vscode.TextDocument,
    _ranges: readonly vscode.Range[],
    data: vscode.DataTransfer,
    _context: vscode.DocumentPasteEditContext,
    token: vscode.CancellationToken,
  ): Promise<AltTextEdit[] | undefined> {
    const built = await this.build(document, data, token);
    if (!built) return undefined;
    const edit = new AltTextEdit(built.text, built.title, kindFor(document), document, built.images);
    edit.additionalEdit = built.additionalEdit;
    return [edit];
  }

  resolveDocumentPasteEdit(edit: AltTextEdit): AltTextEdit {
    // Resolved when it is the edit about to be applied: only then does the model run.
    this.describeLater(edit.document, edit.images);
    return edit;
  }

  async provideDocumentDropEdits(
    document: vscode.TextDocument,
    _position: vscode.Position,
    data: vscode.DataTransfer,
    token: vscode.CancellationToken,
  ): Promise<AltTextDropEdit | undefined> {
    const built = await this.build(document, data, token);
    if (!built) return undefined;
    const edit = new AltTextDropEdit(built.text, built.title, kindFor(document), document, built.images);
    edit.additionalEdit = built.additionalEdit;
    return edit;
  }

  resolveDocumentDropEdit(edit: AltTextDropEdit): AltTextDropEdit {
    this.describeLater(edit.document, edit.images);
    return edit;
  }

  private async build(document: vscode.TextDocument, data: vscode.DataTransfer, token: vscode.CancellationToken) {
    const dialect = dialectOf(document);
    if (!dialect || document.uri.scheme === 'untitled') return undefined;
    const images: PendingImage[] = [];
    const additionalEdit = new vscode.WorkspaceEdit();
    const used = new Set<string>();
    const copyConfig = vscode.workspace.getConfiguration('markdown', document);
    const overwrite = copyConfig.get<string>('copyFiles.overwriteBehavior') === 'overwrite';
    for (const [mimeType, item] of data) {
      if (token.isCancellationRequested) return undefined;
      const file = item.asFile();
      if (!file || !mimeType.startsWith('image/')) continue;
      if (file.uri && hasImageExtension(file.uri.path) && vscode.workspace.getWorkspaceFolder(file.uri)) {
        // A file already in the workspace: linked where it is, not copied.
        images.push(pending(document, dialect, file.uri, mimeType));
        continue;
      }
      const folder = vscode.workspace.getWorkspaceFolder(document.uri);
      const wanted = desiredPath({
        documentPath: document.uri.path,
        workspaceFolderPath: folder?.uri.path,
        workspaceFolderPaths: (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.path),
        fileName: pastedFileName(file.name, mimeType),
        destinations: copyConfig.get<Record<string, string>>('copyFiles.destination') ?? {},
      });
      const path = await numberedPath(wanted, async (p) => used.has(p) || (await exists(document.uri.with({ path: p }))), overwrite);
      used.add(path);
      const uri = document.uri.with({ path });
      const bytes = await file.data();
      additionalEdit.createFile(uri, { contents: bytes, overwrite });
      images.push({ ...pending(document, dialect, uri, mimeType), bytes });
    }
    // Images dropped from the explorer: workspace files as a uri-list.
    if (!images.length) {
      const list = await data.get('text/uri-list')?.asString();
      for (const line of list?.split(/\r?\n/) ?? []) {
        if (!line.trim() || line.startsWith('#')) continue;
        const uri = vscode.Uri.parse(line.trim());
        if (hasImageExtension(uri.path)) images.push(pending(document, dialect, uri, 'image/*'));
      }
    }
    if (!images.length) return undefined;
    const text = images.map((i) => i.ref.text).join(dialect === 'html' ? '\n' : ' ');
    const title = images.length === 1 ? 'Insert image with alt text from PaliGemma' : `Insert ${images.length} images with alt text from PaliGemma`;
    return { text, title, images, additionalEdit };
  }

  private describeLater(document: vscode.TextDocument, images: PendingImage[]): void {
    void (async () => {
      if (!(await this.ctx.firstRun.ensureModel())) return;
      for (const image of images) await this.describe(document, image);
    })();
  }

  private async describe(document: vscode.TextDocument, image: PendingImage): Promise<void> {
    const cfg = readConfig();
    const name = image.uri.path.split('/').pop() ?? image.uri.path;
    try {
      // The pasted bytes themselves: the file may not be written yet when the request starts.
      const ref: P.ImageRef = image.bytes ? { data: Buffer.from(image.bytes).toString('base64'), mimeType: image.mimeType } : await imageRefFor(image.uri);
      const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: `PaliGemma: alt text for ${name}` }, () =>
        this.ctx.client.sendRequest(P.Caption.type, { image: ref, language: cfg.captionLanguage, decoding: { maxNewTokens: cfg.maxNewTokens } }),
      );
      const alt = captionToAltText(result.text);
      this.ctx.log.info(`alt text for pasted ${name}: ${alt}`);
      if (!alt) return;
      const replaced = await replacePlaceholder(document, image.ref, alt, dialectOf(document) ?? 'markdown');
      if (!replaced) this.ctx.log.info(`${name}: the reference is no longer as inserted; its placeholder alt text is left for the diagnostic`);
    } catch (err) {
      if (!isCancellation(err)) await showError(err, name);
    }
  }
}

/**
 * The paste is applied after it is resolved, so a fast model can answer before the reference is in
 * the document: wait a little for it to appear.
 */
function whenInserted(document: vscode.TextDocument, ref: InsertedReference, timeoutMs: number): Promise<boolean> {
  if (referenceOffset(document.getText(), ref) !== undefined) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (found: boolean) => {
      clearTimeout(timer);
      listener.dispose();
      resolve(found);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    const listener = vscode.workspace.onDidChangeTextDocument((e) => {
      if (e.document === document && referenceOffset(document.getText(), ref) !== undefined) done(true);
    });
  });
}

/** Replaces the placeholder as one undoable edit, where the reference still stands as inserted. */
async function replacePlaceholder(document: vscode.TextDocument, ref: InsertedReference, alt: string, dialect: PasteDialect): Promise<boolean> {
  if (!(await whenInserted(document, ref, 10_000))) return false;
  const e = placeholderEdit(document.getText(), ref, alt, dialect);
  if (!e) return false;
  const edit = new vscode.WorkspaceEdit();
  edit.replace(document.uri, new vscode.Range(document.positionAt(e.start), document.positionAt(e.end)), e.newText);
  return vscode.workspace.applyEdit(edit);
}

function pending(document: vscode.TextDocument, dialect: PasteDialect, uri: vscode.Uri, mimeType: string): PendingImage {
  return { uri, mimeType, ref: insertedReference(dialect, linkPath(document.uri.path, uri.path)) };
}

function dialectOf(document: vscode.TextDocument): PasteDialect | undefined {
  return (LANGUAGES as readonly string[]).includes(document.languageId) ? (document.languageId as PasteDialect) : undefined;
}

function kindFor(document: vscode.TextDocument): vscode.DocumentDropOrPasteEditKind {
  return document.languageId === 'html' ? HTML_KIND : PASTE_KIND;
}
