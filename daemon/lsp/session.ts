// What every handler of one language-server session shares: the connection, the open documents,
// the settings, what the client can do, the daemon, and each document's image references and
// alt-text problems (parsed once per version).
import { type ClientCapabilities, type Connection, TextDocuments, type WorkspaceFolder } from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { findAltTextProblems, type AltTextProblem } from '../alttext/diagnose.js';
import { parseImages } from '../alttext/references/index.js';
import type { ImageReference } from '../alttext/references/types.js';
import { DaemonLink } from './daemonLink.js';
import { documentLanguage } from './languages.js';
import type { InitOptions, Settings } from './settings.js';

export interface Parsed {
  version: number;
  language: string;
  problems: AltTextProblem[];
  error?: string;
}

/** Bigger documents (bundles, generated files) get hovers on bare paths only, and no diagnostics. */
export const MAX_PARSED_CHARS = 1_000_000;

export class Session {
  readonly documents = new TextDocuments(TextDocument);
  capabilities: ClientCapabilities = {};
  init: InitOptions = {};
  workspaceFolders: WorkspaceFolder[] = [];
  private readonly parsed = new Map<string, Parsed>();
  private readonly referenced = new Map<string, { version: number; references: ImageReference[] }>();

  constructor(
    readonly connection: Connection,
    public settings: Settings,
    readonly daemon: DaemonLink,
  ) {
    this.documents.onDidClose((e) => {
      this.parsed.delete(e.document.uri);
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

  parse(doc: TextDocument): Parsed {
    const hit = this.parsed.get(doc.uri);
    if (hit?.version === doc.version) return hit;
    const language = this.language(doc);
    const text = doc.getText();
    const result: Parsed =
      text.length > MAX_PARSED_CHARS ? { version: doc.version, language, problems: [] } : { version: doc.version, language, ...findAltTextProblems(text, language) };
    this.parsed.set(doc.uri, result);
    return result;
  }

  /** The structured image references that name a file (hovers), parsed when first asked for. */
  references(doc: TextDocument): ImageReference[] {
    const hit = this.referenced.get(doc.uri);
    if (hit?.version === doc.version) return hit.references;
    const text = doc.getText();
    const references = text.length > MAX_PARSED_CHARS ? [] : parseImages(text, this.language(doc)).references.filter((r) => r.src);
    this.referenced.set(doc.uri, { version: doc.version, references });
    return references;
  }

  log(message: string): void {
    this.connection.console.log(message);
  }
}
