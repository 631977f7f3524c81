// `paligemma lsp`: alt-text diagnostics and fixes and image hovers for any editor, as a language
// server. It owns no model: model runs go to the shared daemon (see daemonLink.ts).
import {
  type Connection,
  DidChangeConfigurationNotification,
  DidChangeWatchedFilesNotification,
  type InitializeParams,
  type InitializeResult,
  TextDocumentSyncKind,
} from 'vscode-languageserver/node';
import { DAEMON_VERSION } from '../client/version.js';
import { IMAGE_EXTENSIONS } from '../common/images.js';
import * as P from '../protocol.js';
import { registerCodeActions, GENERATE_COMMAND } from './codeActions.js';
import { DaemonLink, type Connect } from './daemonLink.js';
import { registerDiagnostics } from './diagnostics.js';
import { registerHover } from './hover.js';
import { Session } from './session.js';
import { readSettings, type InitOptions, type Settings } from './settings.js';

export interface ServerOptions {
  /** `--model <dir>`: the model when the editor's settings name none. */
  modelPath?: string;
  /** How to reach the daemon (tests); default: connect to or start the shared one. */
  connectDaemon?: Connect;
}

export function startServer(connection: Connection, options: ServerOptions = {}): Session {
  const defaults = { modelPath: options.modelPath };
  // The daemon link reads the settings only when it connects, after the session below exists.
  const settings = (): Settings => s.settings;
  const daemon = new DaemonLink(settings, { connect: options.connectDaemon, log: (m) => connection.console.log(m) });
  const s: Session = new Session(connection, readSettings(undefined, defaults), daemon);

  connection.onInitialize((params: InitializeParams): InitializeResult => {
    s.capabilities = params.capabilities;
    s.init = initOptions(params.initializationOptions);
    s.settings = readSettings(s.init.settings, defaults);
    s.workspaceFolders = params.workspaceFolders ?? (params.rootUri ? [{ uri: params.rootUri, name: '' }] : []);
    const resolve = !!params.capabilities.textDocument?.codeAction?.resolveSupport?.properties.includes('edit');
    return {
      capabilities: {
        textDocumentSync: { openClose: true, change: TextDocumentSyncKind.Incremental },
        hoverProvider: true,
        codeActionProvider: { codeActionKinds: ['quickfix'], resolveProvider: resolve },
        executeCommandProvider: { commands: [GENERATE_COMMAND] },
        ...(params.capabilities.textDocument?.diagnostic ? { diagnosticProvider: { interFileDependencies: false, workspaceDiagnostics: false } } : {}),
        workspace: { workspaceFolders: { supported: true, changeNotifications: true } },
      },
      serverInfo: { name: 'paligemma', version: DAEMON_VERSION },
    };
  });

  const diagnostics = registerDiagnostics(s);
  registerCodeActions(s);
  registerHover(s);

  const reloadSettings = async (pushed?: unknown) => {
    if (s.capabilities.workspace?.configuration) {
      const [section] = await connection.workspace.getConfiguration([{ section: 'paligemma' }]).catch(() => [undefined]);
      s.settings = readSettings(section ?? s.init.settings, defaults);
    } else if (pushed !== undefined) {
      s.settings = readSettings(pushed, defaults);
    }
    daemon.settingsChanged();
    diagnostics.refreshAll();
  };

  connection.onInitialized(() => {
    if (s.capabilities.workspace?.didChangeConfiguration?.dynamicRegistration) {
      void connection.client.register(DidChangeConfigurationNotification.type, { section: 'paligemma' }).catch(() => undefined);
    }
    // An image added, fixed or deleted changes the diagnostics of the documents that use it.
    if (s.capabilities.workspace?.didChangeWatchedFiles?.dynamicRegistration) {
      const watchers = [{ globPattern: `**/*.{${IMAGE_EXTENSIONS.join(',')}}` }];
      void connection.client.register(DidChangeWatchedFilesNotification.type, { watchers }).catch(() => undefined);
    }
    if (s.capabilities.workspace?.workspaceFolders) {
      connection.workspace.onDidChangeWorkspaceFolders((e) => {
        const removed = new Set(e.removed.map((f) => f.uri));
        s.workspaceFolders = [...s.workspaceFolders.filter((f) => !removed.has(f.uri)), ...e.added];
      });
    }
    void reloadSettings();
  });
  connection.onDidChangeWatchedFiles(() => {
    s.forgetChecks();
    diagnostics.refreshAll();
  });
  connection.onDidChangeConfiguration((params) => {
    const pushed = (params.settings as { paligemma?: unknown } | null | undefined)?.paligemma;
    void reloadSettings(pushed);
  });
  connection.onNotification(P.LspTrust.type, ({ trusted }) => {
    s.init = { ...s.init, trusted };
  });
  connection.onShutdown(() => {
    diagnostics.dispose();
    daemon.dispose();
  });

  s.documents.listen(connection);
  connection.listen();
  return s;
}

function initOptions(v: unknown): InitOptions {
  const o = (v && typeof v === 'object' ? v : {}) as Record<string, unknown>;
  return {
    // Editors that send one table as both (Helix's `config`) nest it under `paligemma`.
    settings: o.settings ?? o.paligemma,
    trusted: typeof o.trusted === 'boolean' ? o.trusted : undefined,
    thumbnails: o.thumbnails === true,
    hoverCommands: Array.isArray(o.hoverCommands) ? o.hoverCommands.filter((c): c is string => typeof c === 'string') : undefined,
  };
}
