// What every handler of one language-server session shares: the connection, the open documents,
// the settings, what the client can do, the daemon, and each document's image references and
// alt-text problems (computed once per version).
import { fileURLToPath } from 'node:url';
import { type ClientCapabilities, type Connection, TextDocuments, type WorkspaceFolder } from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { checkDocument, type CheckedProblem } from '../alttext/check.js';
import { findAltTextProblems } from '../alttext/diagnose.js';
import { parseImages } from '../alttext/references/index.js';
import type { ImageReference } from '../alttext/references/types.js';
import type { DaemonLink } from './daemonLink.js';
import { cachedFileAccess } from './fileAccess.js';
import { documentLanguage } from './languages.js';
import type { InitOptions, Settings } from './settings.js';

export interface Checked {
  version: number;
  /** The docs core's problems: alt text kinds, and file kinds for images that cannot be described. */
  problems: CheckedProblem[];
  /** Set when the document does not parse right now (problems is then empty). */
  error?: string;
}

/** Bigger documents (bundles, generated files) get hovers on bare paths only, and no diagnostics. */
export const MAX_PARSED_CHARS = 1_000_000;

export class Session {
  readonly documents = new TextDocuments(TextDocument);
  capabilities: ClientCapabilities = {};
  init: InitOptions = {};
  workspaceFolders: WorkspaceFolder[] = [];
  readonly files = cachedFileAccess();
  private readonly checked = new Map<string, { version: number; settings: Settings; result: Promise<Checked> }>();
  private readonly referenced = new Map<string, { version: number; references: ImageReference[] }>();

  constructor(
    readonly connection: Connection,
    public settings: Settings,
    readonly daemon: DaemonLink,
  ) {
    this.documents.onDidClose((e) => {
      this.checked.delete(e.document.uri);
      this.referenced.delete(e.document.uri);
    });
  }

  /** The model may run without being asked (describe on hover): never in an untrusted workspace. */
  get trusted(): boolean {
    return this.init.trusted !== false;
  }

  language(doc: TextDocument): string {
    return documentLanguage(doc.uri, doc.languageId);
  }

  /** Whether alt text is checked in this document (`altText.fileTypes`, by language id or extension). */
  checksAltText(doc: TextDocument): boolean {
    const types = this.settings.altText.fileTypes;
    return types.includes(this.language(doc)) || types.includes(doc.languageId);
  }

  /**
   * The document's problems, as `paligemma alt-text check` reports them: each image that needs alt
   * text is also looked at on disk (file: documents), so a missing or broken file says so.
   */
  check(doc: TextDocument): Promise<Checked> {
    const hit = this.checked.get(doc.uri);
    if (hit?.version === doc.version && hit.settings === this.settings) return hit.result;
    const result = this.compute(doc);
    this.checked.set(doc.uri, { version: doc.version, settings: this.settings, result });
    return result;
  }

  private async compute(doc: TextDocument): Promise<Checked> {
    const version = doc.version;
    const text = doc.getText();
    if (text.length > MAX_PARSED_CHARS) return { version, problems: [] };
    const languageId = this.language(doc);
    const placeholders = this.settings.altText.placeholders;
    const path = localPath(doc.uri);
    if (!path) return { version, ...findAltTextProblems(text, languageId, { placeholders, path: doc.uri }) };
    const folder = this.workspaceFolderPath(path);
    return { version, ...(await checkDocument({ path, text, languageId, rootPath: folder }, { files: this.files, placeholders })) };
  }

  /** Image files changed on disk: what was found about them no longer holds. */
  forgetChecks(): void {
    this.checked.clear();
  }

  /** The structured image references that name a file (hovers), parsed when first asked for. */
  references(doc: TextDocument): ImageReference[] {
    const hit = this.referenced.get(doc.uri);
    if (hit?.version === doc.version) return hit.references;
    const text = doc.getText();
    const references = text.length > MAX_PARSED_CHARS ? [] : parseImages(text, this.language(doc), doc.uri).references.filter((r) => r.src);
    this.referenced.set(doc.uri, { version: doc.version, references });
    return references;
  }

  /** The innermost workspace folder holding `path` (a file system path), if any. */
  workspaceFolderPath(path: string): string | undefined {
    return this.workspaceFolders
      .map((f) => localPath(f.uri)?.replace(/\/$/, ''))
      .filter((p): p is string => !!p && (path === p || path.startsWith(p + '/')))
      .sort((a, b) => b.length - a.length)[0];
  }

  log(message: string): void {
    this.connection.console.log(message);
  }
}

/** The file system path of a file: URI, else undefined (untitled and virtual documents). */
export function localPath(uri: string): string | undefined {
  try {
    return uri.startsWith('file:') ? fileURLToPath(uri) : undefined;
  } catch {
    return undefined;
  }
}
