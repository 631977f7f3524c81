// Hovers on image references and bare image paths: the caption and the text in the image when the
// daemon has them cached (or freshly computed with hover.describeOnHover in a trusted workspace),
// and a thumbnail for clients that render Markdown images. Remote images are never fetched.
import { type Hover, MarkupKind } from 'vscode-languageserver/node';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import { ResponseError } from 'vscode-jsonrpc';
import { referenceAt } from '../alttext/references/index.js';
import { findImagePaths, isRemote } from '../alttext/references/paths.js';
import type { ImageReference } from '../alttext/references/types.js';
import * as P from '../protocol.js';
import { DaemonNotRunning } from './daemonLink.js';
import { resolveImage, type ResolvedImage } from './images.js';
import { captionParams, ocrParams } from './modelRun.js';
import { localPath, type Session } from './session.js';
import { thumbnailMarkdown } from './thumbnail.js';
import { errorMessage } from '../common/errors.js';

/** The hover's links, for clients whose Markdown runs `command:` links (VS Code's extension). */
export const DESCRIBE_COMMAND = 'paligemma.describeFromHover';
export const INSPECT_COMMAND = 'paligemma.openInspector';

interface HoverResults {
  caption?: P.TextResult;
  text?: P.TextResult;
  failure?: string;
}

export function registerHover(session: Session): void {
  const pending = new Map<string, Promise<HoverResults>>();
  /**
   * One lookup per image at a time. A model run started by a hover is not cancelled when the hover
   * closes: its result is cached, so hovering again shows it at once instead of starting over.
   */
  const results = (image: ResolvedImage, run: boolean) => {
    const key = `${image.path}\n${run}`;
    let p = pending.get(key);
    if (!p) {
      p = lookup(session, image, run).finally(() => pending.delete(key));
      pending.set(key, p);
    }
    return p;
  };

  session.connection.onHover(async (params, token) => {
    if (!session.settings.hover.enabled) return null;
    const doc = session.documents.get(params.textDocument.uri);
    if (!doc) return null;
    const ref = referenceAt(references(session, doc, params.position.line), doc.offsetAt(params.position));
    if (!ref || !ref.src || isRemote(ref.src)) return null;
    const range = { start: doc.positionAt(ref.span.start), end: doc.positionAt(ref.span.end) };
    const markdown = !!session.capabilities.textDocument?.hover?.contentFormat?.includes(MarkupKind.Markdown);
    const path = localPath(doc.uri);
    const image = await resolveImage(doc.uri, ref, path && session.workspaceFolderPath(path));
    if (!image) {
      // A bare path-looking string that is no file is just text; a real image reference is worth a word.
      if (ref.syntax === 'path') return null;
      return content(markdown, range, `Image not found: ${markdown ? code(ref.src) : ref.src}`);
    }
    const { caption, text, failure } = await results(image, session.settings.hover.describeOnHover && session.trusted);
    if (token.isCancellationRequested) return null;
    if (!markdown) {
      const lines = [caption?.text, text?.text.trim() ? `Text in the image: “${text.text.trim()}”` : undefined, failure];
      const shown = lines.filter((l): l is string => !!l);
      return shown.length ? content(false, range, shown.join('\n')) : null;
    }
    const parts: string[] = [];
    if (session.init.thumbnails) parts.push(`${thumbnailMarkdown(image.uri, session.settings.hover.thumbnailWidth)}\n\n`);
    if (caption) parts.push(`**${escapeMd(caption.text)}**  \n`);
    if (text?.text.trim()) parts.push(`Text in the image: “${escapeMd(text.text.trim())}”  \n`);
    if (caption) parts.push(`*${escapeMd(caption.model)}*\n\n`);
    if (failure) parts.push(`${escapeMd(failure)}\n\n`);
    const links = commandLinks(session, image, !caption);
    if (links) parts.push(links);
    if (!caption && !text?.text.trim() && !failure && !session.init.thumbnails && !links) parts.push(`${code(image.name)}: no description yet`);
    return content(true, range, parts.join(''));
  });
}

/** Structured references of the whole document, then bare paths on the hovered line. */
function references(session: Session, doc: TextDocument, line: number): ImageReference[] {
  const structured = session.references(doc);
  const base = doc.offsetAt({ line, character: 0 });
  const lineText = doc.getText({ start: { line, character: 0 }, end: { line: line + 1, character: 0 } });
  const inside = (o: number) => structured.some((r) => r.span.start <= o && o < r.span.end);
  const paths = findImagePaths(lineText)
    .map((p) => ({ ...p, span: shift(p.span, base), srcSpan: shift(p.srcSpan, base) }))
    .filter((p) => !inside(p.span.start));
  return [...structured, ...paths];
}

/** Cached results, or fresh ones when the hover may run the model. Never starts the daemon just to look. */
async function lookup(session: Session, image: ResolvedImage, run: boolean): Promise<HoverResults> {
  let failure: string | undefined;
  let notRunning = false;
  const ask = async <R>(f: () => Promise<R>): Promise<R | undefined> => {
    if (notRunning) return undefined;
    try {
      return await f();
    } catch (err) {
      if (err instanceof DaemonNotRunning) {
        notRunning = true;
        return undefined;
      }
      const code = err instanceof ResponseError ? err.code : undefined;
      if (code !== P.ErrorCodes.NotCached && code !== P.ErrorCodes.Cancelled) {
        const message = errorMessage(err);
        session.log(`hover ${image.path}: ${message}`);
        // A cache lookup that fails just means "not known yet".
        if (run) failure = message;
      }
      return undefined;
    }
  };
  const caption = await ask(() => session.daemon.request(P.Caption.type, { ...captionParams(session, image), cacheOnly: !run }, { start: run }));
  const text = await ask(() => session.daemon.request(P.Ocr.type, { ...ocrParams(session, image), cacheOnly: !run }, { start: run }));
  return { caption, text, failure };
}

function commandLinks(session: Session, image: ResolvedImage, offerDescribe: boolean): string {
  const allowed = session.init.hoverCommands ?? [];
  const links: string[] = [];
  if (offerDescribe && allowed.includes(DESCRIBE_COMMAND)) {
    links.push(`[Describe](command:${DESCRIBE_COMMAND}?${encodeURIComponent(JSON.stringify([image.uri]))} "Caption this image and read its text with PaliGemma")`);
  }
  if (allowed.includes(INSPECT_COMMAND)) links.push(`[Inspect](command:${INSPECT_COMMAND}?${encodeURIComponent(JSON.stringify([image.uri]))})`);
  return links.join(' · ');
}

function content(markdown: boolean, range: Hover['range'], value: string): Hover {
  return { contents: { kind: markdown ? MarkupKind.Markdown : MarkupKind.PlainText, value }, range };
}

function shift(span: { start: number; end: number }, by: number) {
  return { start: span.start + by, end: span.end + by };
}

function code(text: string): string {
  return `\`${text.replace(/`/g, "'")}\``;
}

function escapeMd(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+!<>|~-]/g, '\\$&').replace(/\n/g, ' ');
}
