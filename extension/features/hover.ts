// Hovers on image references in any file: a thumbnail, plus the caption and the text in the image
// when the daemon has them cached. The model runs on a bare hover only with
// paligemma.hover.describeOnHover in a trusted workspace; otherwise the hover offers a Describe link.
// Remote images are never fetched.
import * as vscode from 'vscode';
import { ResponseError } from 'vscode-jsonrpc';
import * as P from '../../daemon/protocol.js';
import { readConfig } from '../config.js';
import type { Ctx } from '../ctx.js';
import { imageRefFor } from '../imageRef.js';
import { parseImages, referenceAt } from '../../daemon/alttext/references/index.js';
import { findImagePaths, isRemote } from '../../daemon/alttext/references/paths.js';
import type { ImageReference, Span } from '../../daemon/alttext/references/types.js';
import { resolveReference } from '../resolve.js';
import { thumbnailMarkdown } from './thumbnail.js';

export function registerImageHover(ctx: Ctx): void {
  ctx.push(vscode.languages.registerHoverProvider({ scheme: '*' }, new ImageHover(ctx)));
}

interface HoverResults {
  caption?: P.TextResult;
  text?: P.TextResult;
  failure?: string;
}

class ImageHover implements vscode.HoverProvider {
  private readonly parsed = new Map<string, { version: number; refs: ImageReference[] }>();
  private readonly pending = new Map<string, Promise<HoverResults>>();

  constructor(private readonly ctx: Ctx) {}

  async provideHover(doc: vscode.TextDocument, position: vscode.Position, token: vscode.CancellationToken): Promise<vscode.Hover | undefined> {
    const cfg = readConfig();
    if (!cfg.hover.enabled) return undefined;
    const ref = referenceAt(this.references(doc, position), doc.offsetAt(position));
    if (!ref || !ref.src || isRemote(ref.src)) return undefined;
    const uri = await resolveReference(doc, ref);
    const range = new vscode.Range(doc.positionAt(ref.span.start), doc.positionAt(ref.span.end));
    if (!uri) {
      // A bare path-looking string that is no file is just text; a real image reference is worth a word.
      if (ref.syntax === 'path') return undefined;
      return new vscode.Hover(new vscode.MarkdownString(`$(warning) Image not found: \`${ref.src.replace(/`/g, "'")}\``, true), range);
    }
    const md = new vscode.MarkdownString('', true);
    md.supportHtml = true;
    md.isTrusted = { enabledCommands: ['paligemma.describeFromHover', 'paligemma.openInspector'] };
    md.appendMarkdown(`${thumbnailMarkdown(uri.toString(), cfg.hover.thumbnailWidth)}\n\n`);

    const { caption, text, failure } = await this.results(uri, cfg);
    if (token.isCancellationRequested) return undefined;
    if (caption) md.appendMarkdown(`**${escapeMd(caption.text)}**  \n`);
    if (text?.text.trim()) md.appendMarkdown(`Text in the image: “${escapeMd(text.text.trim())}”  \n`);
    if (caption) md.appendMarkdown(`<small>${escapeMd(caption.model)}</small>\n\n`);
    if (failure) md.appendMarkdown(`$(warning) ${escapeMd(failure)}\n\n`);
    const args = encodeURIComponent(JSON.stringify([uri.toString()]));
    const inspectArgs = encodeURIComponent(JSON.stringify([uri]));
    const links = [`[$(eye) Inspect](command:paligemma.openInspector?${inspectArgs})`];
    if (!caption) links.unshift(`[$(sparkle) Describe](command:paligemma.describeFromHover?${args} "Caption this image and read its text with PaliGemma")`);
    md.appendMarkdown(links.join(' · '));
    return new vscode.Hover(md, range);
  }

  /** Structured references of the whole document (cached per version), then bare paths on the hovered line. */
  private references(doc: vscode.TextDocument, position: vscode.Position): ImageReference[] {
    const key = doc.uri.toString();
    let hit = this.parsed.get(key);
    if (hit?.version !== doc.version) {
      const text = doc.getText();
      const refs = text.length <= MAX_PARSED_CHARS ? parseImages(text, doc.languageId).references.filter((r) => r.src) : [];
      if (this.parsed.size > 50) this.parsed.clear();
      hit = { version: doc.version, refs };
      this.parsed.set(key, hit);
    }
    const line = doc.lineAt(position.line);
    const base = doc.offsetAt(line.range.start);
    const inside = (o: number) => hit.refs.some((r) => r.span.start <= o && o < r.span.end);
    const paths = findImagePaths(line.text)
      .map((p) => ({ ...p, span: shift(p.span, base), srcSpan: shift(p.srcSpan, base) }))
      .filter((p) => !inside(p.span.start));
    return [...hit.refs, ...paths];
  }

  /**
   * One lookup per image at a time. A model run started by a hover is not cancelled when the hover
   * closes: its result is cached, so hovering again shows it at once instead of starting over.
   */
  private results(uri: vscode.Uri, cfg: ReturnType<typeof readConfig>): Promise<HoverResults> {
    const key = `${uri.toString()}\n${cfg.hover.describeOnHover}`;
    let pending = this.pending.get(key);
    if (!pending) {
      pending = this.lookup(uri, cfg).finally(() => this.pending.delete(key));
      this.pending.set(key, pending);
    }
    return pending;
  }

  /** Cached results (or fresh ones when describe-on-hover is allowed). Never starts the daemon just to look. */
  private async lookup(uri: vscode.Uri, cfg: ReturnType<typeof readConfig>): Promise<HoverResults> {
    const run = cfg.hover.describeOnHover;
    if (!run && !this.ctx.client.connected) return {};
    const client = this.ctx.client;
    let failure: string | undefined;
    const ask = async <R>(f: () => Promise<R>): Promise<R | undefined> => {
      try {
        return await f();
      } catch (err) {
        const notCached = err instanceof ResponseError && err.code === P.ErrorCodes.NotCached;
        const cancelled = err instanceof ResponseError && err.code === P.ErrorCodes.Cancelled;
        if (!notCached && !cancelled) {
          failure = err instanceof Error ? err.message : String(err);
          this.ctx.log.debug(`hover ${uri.toString(true)}: ${failure}`);
          if (!run) failure = undefined; // a cache lookup that fails just means "not known yet"
        }
        return undefined;
      }
    };
    const image = await ask(() => imageRefFor(uri));
    if (!image) return { failure };
    // The same parameters as the Describe command, so its results are the cached ones found here.
    const decoding = { maxNewTokens: cfg.maxNewTokens };
    const caption = await ask(() => client.sendRequest(P.Caption.type, { image, language: cfg.captionLanguage, decoding, cacheOnly: !run }));
    const text = await ask(() => client.sendRequest(P.Ocr.type, { image, decoding, cacheOnly: !run }));
    return { caption, text, failure };
  }
}

/** Bigger documents (bundles, generated files) only get hovers on bare paths. */
const MAX_PARSED_CHARS = 1_000_000;

function shift(span: Span, by: number): Span {
  return { start: span.start + by, end: span.end + by };
}

function escapeMd(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+!<>|~-]/g, '\\$&').replace(/\n/g, ' ');
}
