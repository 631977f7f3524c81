// The language server's handlers, through an in-memory LSP connection (see harness.ts): document
// sync, diagnostics (push and pull), code actions with resolve / executeCommand, hovers, progress,
// cancellation, settings and the daemon connection.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { CodeAction, Diagnostic, Hover, TextDocumentEdit, WorkspaceEdit } from 'vscode-languageserver-protocol';
import { checkDocument } from '../../daemon/alttext/check.js';
import { findAltTextProblems } from '../../daemon/alttext/diagnose.js';
import { nodeFileAccess } from '../../daemon/alttext/imageFiles.js';
import { GENERATE_COMMAND } from '../../daemon/lsp/codeActions.js';
import * as P from '../../daemon/protocol.js';
import { applyTextEdits, TestClient, type ClientOptions } from './harness.js';

const RESOLVE: ClientOptions['capabilities'] = {
  textDocument: { codeAction: { resolveSupport: { properties: ['edit'] }, dataSupport: true }, hover: { contentFormat: ['markdown', 'plaintext'] } },
  workspace: { workspaceEdit: { documentChanges: true }, applyEdit: true },
  window: { workDoneProgress: true },
};

let clients: TestClient[] = [];
async function client(o: ClientOptions = {}): Promise<TestClient> {
  const c = new TestClient(o);
  clients.push(c);
  await c.initialize();
  return c;
}
afterEach(async () => {
  await Promise.all(clients.map((c) => c.dispose()));
  clients = [];
});

const NOTES = '# Notes\n\n![Shapes](images/shapes.png)\n\n![](images/wide.jpg)\n';
const CAPTION = 'a red square on white';

/** A workspace with notes.md (one image with alt text, one without) and both images. */
async function notes(o: ClientOptions = {}): Promise<{ c: TestClient; uri: string }> {
  const c = await client(o);
  c.file('images/shapes.png');
  c.file('images/wide.jpg');
  c.daemon.captions[c.path('images/wide.jpg')] = CAPTION;
  c.daemon.captions[c.path('images/shapes.png')] = 'three shapes';
  c.daemon.ocr[c.path('images/shapes.png')] = 'ABC';
  const uri = c.file('notes.md', NOTES);
  await c.open(uri, 'markdown', NOTES);
  return { c, uri };
}

async function actionsAt(c: TestClient, uri: string, line: number, diagnostics: Diagnostic[] = []): Promise<CodeAction[]> {
  return c.connection.sendRequest('textDocument/codeAction', {
    textDocument: { uri },
    range: { start: { line, character: 1 }, end: { line, character: 1 } },
    context: { diagnostics },
  });
}

describe('paligemma lsp: initialize', () => {
  it('advertises incremental sync, hovers, quick fixes, resolve only to clients that can resolve, pull diagnostics only where supported', async () => {
    const plain = await client();
    const caps = plain.initializeResult.capabilities;
    assert.deepEqual(caps.textDocumentSync, { openClose: true, change: 2 });
    assert.equal(caps.hoverProvider, true);
    assert.deepEqual(caps.codeActionProvider, { codeActionKinds: ['quickfix'], resolveProvider: false });
    assert.deepEqual(caps.executeCommandProvider, { commands: [GENERATE_COMMAND] });
    assert.equal(caps.diagnosticProvider, undefined);
    const rich = await client({ capabilities: { ...RESOLVE, textDocument: { ...RESOLVE!.textDocument, diagnostic: {} } } });
    assert.equal((rich.initializeResult.capabilities.codeActionProvider as { resolveProvider: boolean }).resolveProvider, true);
    assert.deepEqual(rich.initializeResult.capabilities.diagnosticProvider, { interFileDependencies: false, workspaceDiagnostics: false });
  });
});

describe('paligemma lsp: diagnostics', () => {
  it("publishes the docs core's kinds and messages for an opened Markdown file, and no model runs", async () => {
    const { c, uri } = await notes();
    const published = await c.until('diagnostics', () => c.published(uri, 1));
    const [expected] = findAltTextProblems(NOTES, 'markdown').problems;
    assert.equal(published.diagnostics.length, 1);
    const [d] = published.diagnostics;
    assert.equal(d.message, expected.message);
    assert.equal(d.code, `alt-${expected.kind}`);
    assert.equal(d.source, 'PaliGemma');
    assert.equal(d.severity, 2);
    assert.deepEqual(d.range, { start: { line: 4, character: 0 }, end: { line: 4, character: 20 } });
    assert.equal(c.daemon.calls.length, 0, 'diagnostics never talk to the daemon');
  });

  it('follows incremental changes, debounced: a burst of edits publishes once, for the last version', async () => {
    const { c, uri } = await notes();
    await c.until('first diagnostics', () => c.published(uri, 1));
    const before = c.diagnostics.length;
    // Type alt text into the empty label, one character per change.
    const word = 'Sales by month';
    for (let i = 0; i < word.length; i++) {
      await c.connection.sendNotification('textDocument/didChange', {
        textDocument: { uri, version: 2 + i },
        contentChanges: [{ range: { start: { line: 4, character: 2 + i }, end: { line: 4, character: 2 + i } }, text: word[i] }],
      });
    }
    const last = 1 + word.length;
    const published = await c.until('diagnostics after the edits', () => c.published(uri, last));
    assert.deepEqual(published.diagnostics, [], 'the image has alt text now');
    await new Promise((r) => setTimeout(r, 400));
    assert.deepEqual(
      c.diagnostics.slice(before).map((d) => d.version),
      [last],
      'one publication after the burst',
    );
  });

  it('reads a .mdx file as MDX whatever its language id says', async () => {
    const c = await client();
    const text = '# Page\n\n![](a.png)\n';
    const uri = c.file('page.mdx', text);
    await c.open(uri, 'plaintext', text);
    const published = await c.until('diagnostics', () => c.published(uri, 1));
    assert.equal(published.diagnostics.length, 1, JSON.stringify(published));
    // MDX's decorative marker (a JS comment), not Markdown's HTML comment.
    const actions = await actionsAt(c, uri, 2, published.diagnostics);
    const decorative = actions.find((a) => a.title === 'Mark image as decorative')!;
    const edits = (decorative.edit!.changes ?? {})[uri];
    assert.equal(applyTextEdits(text, edits), '# Page\n\n![](a.png){/* decorative */}\n');
  });

  it('checks nothing in languages outside altText.fileTypes, and honours the severity setting', async () => {
    const c = await client({ configuration: { altText: { severity: 'error', fileTypes: ['html'] } } });
    const md = c.file('a.md', '![](x.png)\n');
    const html = c.file('a.html', '<img src="x.png">\n');
    // The settings arrive after `initialized` (workspace/configuration): give them a moment.
    await new Promise((r) => setTimeout(r, 100));
    await c.open(md, 'markdown', '![](x.png)\n');
    await c.open(html, 'html', '<img src="x.png">\n');
    const h = await c.until('html diagnostics', () => c.published(html, 1));
    assert.equal(h.diagnostics[0].severity, 1, 'error');
    assert.deepEqual((await c.until('markdown diagnostics', () => c.published(md, 1))).diagnostics, []);
  });

  it('answers pull diagnostics (textDocument/diagnostic) where the client supports them', async () => {
    const c = await client({ capabilities: { textDocument: { diagnostic: {} } } });
    c.file('x.png');
    const uri = c.file('a.html', '<img src="x.png">\n');
    await c.open(uri, 'html', '<img src="x.png">\n');
    const report = await c.connection.sendRequest<{ kind: string; items: Diagnostic[] }>('textDocument/diagnostic', { textDocument: { uri } });
    assert.equal(report.kind, 'full');
    assert.deepEqual(
      report.items.map((d) => [d.code, d.message]),
      findAltTextProblems('<img src="x.png">\n', 'html').problems.map((p) => [`alt-${p.kind}`, p.message]),
    );
    assert.equal(c.diagnostics.length, 0, 'nothing pushed to a pulling client');
  });
});

describe('paligemma lsp: image files changing on disk', () => {
  it('watches image files where the client can, and checks again when one appears', async () => {
    const c = await client({ capabilities: { workspace: { didChangeWatchedFiles: { dynamicRegistration: true } } } });
    const text = '![](img/later.png)\n';
    const uri = c.file('a.md', text);
    await c.open(uri, 'markdown', text);
    const before = await c.until('diagnostics', () => c.published(uri, 1));
    assert.equal(before.diagnostics[0].code, 'alt-not-found');
    assert.match(String(c.registrations.find((r) => r.method === 'workspace/didChangeWatchedFiles')?.registerOptions?.watchers?.[0]?.globPattern), /^\*\*\/\*\.\{png,jpg,/);
    const count = c.diagnostics.length;
    const image = c.file('img/later.png');
    await c.connection.sendNotification('workspace/didChangeWatchedFiles', { changes: [{ uri: image, type: 1 }] });
    const after = await c.until('new diagnostics', () => (c.diagnostics.length > count ? c.diagnostics[c.diagnostics.length - 1] : undefined));
    assert.deepEqual(
      after.diagnostics.map((d) => d.code),
      ['alt-missing'],
      'the file is found now: only the alt text is missing',
    );
  });
});

describe('paligemma lsp: code actions', () => {
  it('offers Generate (model not run yet) and Mark as decorative; resolving Generate runs the model once and returns a versioned edit', async () => {
    const { c, uri } = await notes({ capabilities: RESOLVE });
    const { diagnostics } = await c.until('diagnostics', () => c.published(uri, 1));
    const actions = await actionsAt(c, uri, 4, diagnostics);
    assert.deepEqual(
      actions.map((a) => a.title),
      ['Generate alt text with PaliGemma', 'Mark image as decorative'],
    );
    const [generate, decorative] = actions;
    assert.equal(generate.kind, 'quickfix');
    assert.equal(generate.edit, undefined, 'no edit before resolve');
    assert.equal(generate.command, undefined);
    assert.deepEqual(generate.diagnostics, diagnostics);
    assert.equal(c.daemon.modelRuns().length, 0, 'offering the fix runs no model');

    const edit = (decorative.edit!.documentChanges as TextDocumentEdit[])[0];
    assert.deepEqual(edit.textDocument, { uri, version: 1 });
    assert.equal(applyTextEdits(NOTES, edit.edits), NOTES.replace('![](images/wide.jpg)', '![](images/wide.jpg)<!-- decorative -->'));

    const resolved = await c.connection.sendRequest<CodeAction>('codeAction/resolve', generate);
    assert.equal(c.daemon.modelRuns().length, 1);
    const run = c.daemon.modelRuns()[0].params;
    assert.deepEqual(run.image, { path: c.path('images/wide.jpg') });
    assert.equal(run.language, 'en');
    assert.deepEqual(run.decoding, { maxNewTokens: 64 });
    const [change] = resolved.edit!.documentChanges as TextDocumentEdit[];
    assert.deepEqual(change.textDocument, { uri, version: 1 }, 'the edit names the version it was computed on');
    assert.equal(applyTextEdits(NOTES, change.edits), NOTES.replace('![](images/wide.jpg)', '![A red square on white](images/wide.jpg)'));
  });

  it('reports progress ($/progress begin, the caption streaming in, end)', async () => {
    const { c, uri } = await notes({ capabilities: RESOLVE });
    const [generate] = await actionsAt(c, uri, 4);
    await c.connection.sendRequest('codeAction/resolve', generate);
    const kinds = await c.until('progress end', () => {
      const k = c.progress.map((p) => (p as { value: { kind: string } }).value.kind);
      return k.includes('end') ? k : undefined;
    });
    assert.equal(kinds[0], 'begin');
    const begin = (c.progress[0] as { value: { title: string; message: string; cancellable: boolean } }).value;
    assert.equal(begin.title, 'Generating alt text');
    assert.equal(begin.message, 'wide.jpg');
    assert.equal(begin.cancellable, true);
    assert.ok(
      c.progress.some((p) => (p as { value: { kind: string; message?: string } }).value.message === `wide.jpg: ${CAPTION.slice(0, 3)}`),
      `the streamed text is reported: ${JSON.stringify(c.progress)}`,
    );
  });

  it('refuses to resolve for a document that changed since the action was offered, without running the model', async () => {
    const { c, uri } = await notes({ capabilities: RESOLVE });
    const [generate] = await actionsAt(c, uri, 4);
    await c.connection.sendNotification('textDocument/didChange', {
      textDocument: { uri, version: 2 },
      contentChanges: [{ range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } }, text: 'x' }],
    });
    await assert.rejects(c.connection.sendRequest('codeAction/resolve', generate), /the document changed/);
    assert.equal(c.daemon.modelRuns().length, 0);
  });

  it('cancelling the resolve request cancels the daemon request', async () => {
    const { c, uri } = await notes({ capabilities: RESOLVE });
    const [generate] = await actionsAt(c, uri, 4);
    let open!: () => void;
    c.daemon.gate = new Promise<void>((r) => (open = r));
    const { CancellationTokenSource } = await import('vscode-jsonrpc');
    const source = new CancellationTokenSource();
    const pending = c.connection.sendRequest('codeAction/resolve', generate, source.token);
    await c.until('the model run to start', () => c.daemon.modelRuns().length === 1 || undefined);
    source.cancel();
    await assert.rejects(pending, (err: { code?: number }) => err.code === -32800);
    await c.until('the daemon to see the cancellation', () => c.daemon.cancelled === 1 || undefined);
    open();
    assert.equal(c.messages.length, 0, 'a cancellation is not reported as an error');
  });

  it('for clients without resolve: the action is a command; executing it applies a versioned edit through workspace/applyEdit', async () => {
    const { c, uri } = await notes({ capabilities: { workspace: { workspaceEdit: { documentChanges: true }, applyEdit: true } } });
    const [generate] = await actionsAt(c, uri, 4);
    assert.equal(generate.data, undefined);
    assert.equal(generate.command?.command, GENERATE_COMMAND);
    assert.equal(c.daemon.modelRuns().length, 0);
    await c.connection.sendRequest('workspace/executeCommand', { command: generate.command!.command, arguments: generate.command!.arguments });
    const [applied] = c.appliedEdits as { edit: WorkspaceEdit }[];
    const [change] = applied.edit.documentChanges as TextDocumentEdit[];
    assert.deepEqual(change.textDocument, { uri, version: 1 });
    assert.equal(applyTextEdits(NOTES, change.edits), NOTES.replace('![](images/wide.jpg)', '![A red square on white](images/wide.jpg)'));
  });

  it("images that cannot be described (missing, not an image, remote) get the core's file kinds and messages, and no Generate", async () => {
    const c = await client({ capabilities: RESOLVE });
    c.file('img/notes.png', 'plain text, not a picture');
    const text = '![](img/gone.png)\n\n![](img/notes.png)\n\n![](https://example.com/a.png)\n';
    const uri = c.file('a.md', text);
    await c.open(uri, 'markdown', text);
    const { diagnostics } = await c.until('diagnostics', () => c.published(uri, 1));
    const expected = await checkDocument({ path: c.path('a.md'), text, languageId: 'markdown', rootPath: c.dir }, { files: nodeFileAccess });
    assert.deepEqual(
      diagnostics.map((d) => [d.code, d.message, d.range.start.line]),
      expected.problems.map((p) => [`alt-${p.kind}`, p.message, text.slice(0, p.span.start).split('\n').length - 1]),
    );
    assert.deepEqual(
      diagnostics.map((d) => d.code),
      ['alt-not-found', 'alt-unsupported', 'alt-remote'],
    );
    assert.match(String(diagnostics[0].message), /^file not found: img\/gone\.png/);
    for (const line of [0, 2, 4]) {
      const titles = (await actionsAt(c, uri, line, diagnostics)).map((a) => a.title);
      assert.deepEqual(titles, ['Mark image as decorative'], `line ${line + 1}`);
    }
    assert.equal(c.daemon.calls.length, 0);
  });

  it("a failed model run reaches the user as a message, in the daemon's words", async () => {
    const { c, uri } = await notes({ capabilities: RESOLVE });
    delete c.daemon.captions[c.path('images/wide.jpg')];
    const [generate] = await actionsAt(c, uri, 4);
    await assert.rejects(c.connection.sendRequest('codeAction/resolve', generate), /image not found/);
    await c.until('the message', () => c.messages.length > 0 || undefined);
    assert.equal(c.messages[0].type, 1);
    assert.match(c.messages[0].message, /^PaliGemma: image not found: .*wide\.jpg$/);
  });

  it('loads the model named by --model (or the settings) before the first run when the daemon serves another', async () => {
    const { c, uri } = await notes({ capabilities: RESOLVE, modelPath: '/models/tiny' });
    const [generate] = await actionsAt(c, uri, 4);
    await c.connection.sendRequest('codeAction/resolve', generate);
    const methods = c.daemon.calls.map((x) => x.method);
    assert.deepEqual(methods, [P.Status.method, P.LoadModel.method, P.Caption.method]);
    assert.equal(c.daemon.calls[1].params.path, '/models/tiny');
  });

  it('connects again after the daemon went away', async () => {
    const { c, uri } = await notes({ capabilities: RESOLVE });
    const [generate] = await actionsAt(c, uri, 4);
    await c.connection.sendRequest('codeAction/resolve', generate);
    c.daemon.crash();
    c.daemon.cache.clear();
    await new Promise((r) => setTimeout(r, 50));
    const again = await c.connection.sendRequest<CodeAction>('codeAction/resolve', generate);
    assert.ok(again.edit, 'resolved through a new connection');
    assert.equal(c.daemon.connects.length, 2);
    assert.equal(c.daemon.modelRuns().length, 2);
  });
});

describe('paligemma lsp: hover', () => {
  const hoverAt = (c: TestClient, uri: string, line: number, character: number) =>
    c.connection.sendRequest<Hover | null>('textDocument/hover', { textDocument: { uri }, position: { line, character } });
  const value = (h: Hover | null) => (h?.contents as { value: string } | undefined)?.value ?? '';

  it('shows the cached caption and text, never running the model or starting a daemon by itself', async () => {
    const { c, uri } = await notes({ capabilities: RESOLVE });
    c.daemon.running = false;
    const cold = await hoverAt(c, uri, 2, 14);
    assert.ok(cold, 'an image reference has a hover');
    assert.deepEqual(cold.range, { start: { line: 2, character: 0 }, end: { line: 2, character: 28 } });
    assert.deepEqual(c.daemon.connects, [{ start: false }], 'looked once for a running daemon, and started none');
    // Now a daemon runs and has the caption cached (e.g. from the Describe command).
    c.daemon.running = true;
    const path = c.path('images/shapes.png');
    c.daemon.cache.set(`caption\n${path}\nen\n64`, 'three shapes');
    c.daemon.cache.set(`ocr\n${path}\n\n64`, 'ABC');
    const warm = value(await hoverAt(c, uri, 2, 14));
    assert.match(warm, /\*\*three shapes\*\*/);
    assert.match(warm, /Text in the image: “ABC”/);
    assert.equal(c.daemon.modelRuns(P.Caption.method).length + c.daemon.modelRuns(P.Ocr.method).length, 0);
    assert.ok(c.daemon.calls.every((x) => x.params.cacheOnly === true || x.method === P.Status.method));
    assert.doesNotMatch(warm, /!\[\]\(/, 'no thumbnail for a client that did not ask for one');
  });

  it("VS Code's options: a thumbnail of the file, and Describe / Inspect links", async () => {
    const { c, uri } = await notes({
      capabilities: RESOLVE,
      initializationOptions: { thumbnails: true, hoverCommands: ['paligemma.describeFromHover', 'paligemma.openInspector'] },
      configuration: { hover: { thumbnailWidth: 64 } },
    });
    await new Promise((r) => setTimeout(r, 100));
    const shown = value(await hoverAt(c, uri, 2, 14));
    const file = new URL(`file://${c.path('images/shapes.png')}`).href;
    assert.ok(shown.startsWith(`![](${file}|width=64)`), shown);
    assert.match(shown, /\[Describe\]\(command:paligemma\.describeFromHover\?/);
    assert.ok(shown.includes(`[Inspect](command:paligemma.openInspector?${encodeURIComponent(JSON.stringify([file]))})`), shown);
  });

  it('describe-on-hover runs the model in a trusted workspace only', async () => {
    const untrusted = await notes({ capabilities: RESOLVE, initializationOptions: { trusted: false }, configuration: { hover: { describeOnHover: true } } });
    await new Promise((r) => setTimeout(r, 100));
    assert.doesNotMatch(value(await hoverAt(untrusted.c, untrusted.uri, 2, 14)), /three shapes/);
    assert.equal(untrusted.c.daemon.modelRuns().length, 0);
    // The workspace becomes trusted (VS Code's extension sends this).
    await untrusted.c.connection.sendNotification(P.LspTrust.method, { trusted: true });
    const shown = value(await hoverAt(untrusted.c, untrusted.uri, 2, 14));
    assert.match(shown, /\*\*three shapes\*\*/);
    assert.match(shown, /Text in the image: “ABC”/);
    assert.equal(untrusted.c.daemon.modelRuns().length, 1);
  });

  it('hovers bare image paths in any file, and says so when an image reference points at no file', async () => {
    const c = await client({ capabilities: RESOLVE });
    c.file('img/logo.png');
    const code = 'const logo = "img/logo.png";\nconst gone = "img/gone.png";\n';
    const js = c.file('a.ts', code);
    await c.open(js, 'typescript', code);
    const hit = await hoverAt(c, js, 0, 18);
    assert.deepEqual(hit?.range, { start: { line: 0, character: 14 }, end: { line: 0, character: 26 } });
    assert.equal(await hoverAt(c, js, 1, 18), null, 'a path-looking string that is no file is just text');
    const md = c.file('a.md', '![x](img/gone.png) and more\n');
    await c.open(md, 'markdown', '![x](img/gone.png) and more\n');
    assert.equal(value(await hoverAt(c, md, 0, 8)), 'Image not found: `img/gone.png`');
    assert.equal(await hoverAt(c, md, 0, 23), null, 'nothing past the reference');
  });

  it('remote images are never looked up', async () => {
    const c = await client({ capabilities: RESOLVE });
    const text = '![x](https://example.com/a.png)\n';
    const uri = c.file('a.md', text);
    await c.open(uri, 'markdown', text);
    assert.equal(await hoverAt(c, uri, 0, 10), null);
    assert.equal(c.daemon.connects.length, 0);
  });
});
