// The layering of the source tree, in one place: read by eslint.config.js (the lint rule) and by
// test/layering.test.ts (which holds where lint is not run). Plain JS so that ESLint loads it as is.
//
// A layer is a folder (ending in `/`) or a file. A source file may import anything of its own
// layer and what its layer's `mayImport` lists (folders by prefix, files exactly); every other
// project file is forbidden. `vscode` is importable only where `vscode` is true; a layer with
// `packages: false` imports no package or Node built-in at all. Tests and benchmarks are not layered.

/** @type {import('./layering.d.mts').Layer[]} */
export const LAYERS = [
  {
    path: 'daemon/common/',
    why: 'helpers every daemon-side layer uses: no imports, so they run anywhere (clients get them through daemon/client/shared.ts)',
    mayImport: [],
    packages: false,
  },
  {
    path: 'daemon/protocol.ts',
    why: 'the JSON-RPC types and message descriptors everything else speaks',
    mayImport: ['daemon/common/'],
  },
  {
    path: 'daemon/engine/',
    why: 'the model runtime: it knows nothing of the daemon around it, its clients or the CLI',
    mayImport: ['daemon/common/', 'daemon/protocol.ts'],
  },
  {
    path: 'daemon/client/',
    why: 'connecting to (or starting) the shared daemon, for the CLI, the extension and the LSP',
    mayImport: ['daemon/common/', 'daemon/protocol.ts'],
  },
  {
    path: 'daemon/alttext/',
    why: 'image references and alt-text judging/editing, shared by the CLI and the extension',
    mayImport: ['daemon/common/', 'daemon/protocol.ts', 'daemon/client/'],
  },
  {
    path: 'daemon/server/',
    why: 'the daemon: serves the engine over JSON-RPC',
    mayImport: ['daemon/common/', 'daemon/protocol.ts', 'daemon/engine/', 'daemon/client/'],
  },
  {
    path: 'daemon/lsp/',
    why: 'the language server (`paligemma lsp`): alt-text diagnostics and fixes, model runs through the shared daemon',
    mayImport: ['daemon/common/', 'daemon/protocol.ts', 'daemon/client/', 'daemon/alttext/'],
  },
  {
    path: 'daemon/cluster/',
    why: 'a worker serving the engine behind a message broker, as the daemon serves it on a socket',
    mayImport: ['daemon/common/', 'daemon/protocol.ts', 'daemon/engine/', 'daemon/client/', 'daemon/server/'],
  },
  {
    path: 'daemon/cli/',
    why: 'the `paligemma` command: may use every part of the daemon side',
    mayImport: ['daemon/'],
  },
  {
    path: 'extension/',
    why: 'VS Code glue: talks to the daemon only through the protocol and the shared client',
    mayImport: ['daemon/protocol.ts', 'daemon/client/', 'daemon/alttext/', 'webview/messages.ts', 'webview/state.ts', 'webview/tasks.ts'],
    vscode: true,
  },
  {
    path: 'webview/',
    why: 'the inspector page in a browser: speaks to the extension host by messages only',
    mayImport: ['daemon/protocol.ts'],
  },
];

/** Every layered path, for telling project files from tests and benchmarks. */
export const LAYERED_ROOTS = ['daemon/', 'extension/', 'webview/'];

/** The layer a repo-relative path (with `/`) belongs to: the longest matching layer path. */
export function layerOf(file) {
  let best;
  for (const layer of LAYERS) {
    if (covers(layer.path, file) && (!best || layer.path.length > best.path.length)) best = layer;
  }
  return best;
}

/** Whether `entry` (a folder with `/` or a file) covers `file`; `.js` and `.ts` name the same source. */
export function covers(entry, file) {
  if (entry.endsWith('/')) return file.startsWith(entry);
  return sameSource(entry, file);
}

function sameSource(a, b) {
  const strip = (p) => p.replace(/\.(m|c)?(j|t)sx?$/, '');
  return strip(a) === strip(b);
}

/**
 * Why `from` may not import project file `to` (both repo-relative), or undefined when it may.
 * Files outside the layered roots (tests, benchmarks) are not checked.
 */
export function forbiddenEdge(from, to) {
  const source = layerOf(from);
  if (!source) return undefined;
  if (!LAYERED_ROOTS.some((root) => to.startsWith(root))) {
    return `${source.path} imports ${to}, which is not part of the shipped code (tests, benchmarks)`;
  }
  const target = layerOf(to);
  if (target === source) return undefined;
  if (source.mayImport.some((entry) => covers(entry, to))) return undefined;
  return `${source.path} (${source.why}) may import only ${describe(source.mayImport)}, not ${to}`;
}

/** Why `from` may not import package or built-in `name`, or undefined when it may. */
export function forbiddenModule(from, name) {
  const source = layerOf(from);
  if (!source) return undefined;
  if (source.packages === false) return `${source.path} (${source.why}) imports nothing, not ${name}`;
  if (name === 'vscode' && !source.vscode) return `${source.path} (${source.why}) may not import vscode: only extension/ runs in VS Code`;
  return undefined;
}

function describe(entries) {
  return entries.length ? entries.join(', ') : 'nothing outside itself';
}
