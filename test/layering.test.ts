// The layering of .ci/layering.mjs, checked on every source file's imports without ESLint (so it
// holds where lint is not run), and shown to catch a forbidden import, in this checker and in the
// lint rule built from the same table (eslint.config.js).
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative, resolve, sep } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import type * as Layering from '../.ci/layering.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const layering = (await import(pathToFileURL(join(ROOT, '.ci/layering.mjs')).href)) as typeof Layering;

/** Every TypeScript source under the layered roots, repo-relative with `/`. */
function sourceFiles(): string[] {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = posix.join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.(m|c)?ts$/.test(entry.name) && !entry.name.endsWith('.d.ts')) files.push(path);
    }
  };
  for (const root of layering.LAYERED_ROOTS) walk(root.replace(/\/$/, ''));
  return files;
}

/** The module specifiers a source imports: import/export declarations, import(), require(), import types. */
function specifiers(text: string): string[] {
  const found = new Set<string>();
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      found.add(node.moduleSpecifier.text);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference) && ts.isStringLiteral(node.moduleReference.expression)) {
      found.add(node.moduleReference.expression.text);
    } else if (ts.isCallExpression(node) && node.arguments.length === 1 && ts.isStringLiteralLike(node.arguments[0])) {
      const callee = node.expression;
      if (callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === 'require')) found.add(node.arguments[0].text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      found.add(node.argument.literal.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(ts.createSourceFile('source.ts', text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS));
  return [...found];
}

/** What is wrong with the imports of `file` (repo-relative) holding `text`: one line per forbidden import. */
function violations(file: string, text: string): string[] {
  const out: string[] = [];
  for (const spec of specifiers(text)) {
    let why: string | undefined;
    if (spec.startsWith('.')) {
      const target = relative(ROOT, resolve(ROOT, dirname(file), spec))
        .split(sep)
        .join('/');
      why = target.startsWith('..') ? `${spec} is outside the repository` : layering.forbiddenEdge(file, target);
    } else {
      why = layering.forbiddenModule(file, spec);
    }
    if (why) out.push(`${file}: import '${spec}': ${why}`);
  }
  return out;
}

test('every source file imports only what its layer allows', () => {
  const files = sourceFiles();
  // The walk really saw the tree: each layer that exists has files.
  for (const layer of layering.LAYERS.filter((l) => existsSync(join(ROOT, l.path)))) {
    assert.ok(
      files.some((f) => layering.covers(layer.path, f)),
      `no source file in ${layer.path}`,
    );
  }
  assert.ok(files.length > 100, `only ${files.length} source files found`);
  // A new folder needs its line in .ci/layering.mjs before its imports are checked.
  assert.deepEqual(
    files.filter((f) => !layering.layerOf(f)),
    [],
    'source files in no layer of .ci/layering.mjs',
  );
  const bad = files.flatMap((f) => violations(f, readFileSync(join(ROOT, f), 'utf8')));
  assert.deepEqual(bad, []);
});

test('every import form is read: declarations, re-exports, import(), require() and import types', () => {
  const text = [
    "import a from './a.js';",
    "import type { B } from './b.js';",
    "export { c } from './c.js';",
    "export * from './d.js';",
    "const e = await import('./e.js');",
    "const f = require('./f.js');",
    "let g: import('./g.js').G;",
    "import h = require('./h.js');",
    "import './i.js';",
  ].join('\n');
  assert.deepEqual(specifiers(text).sort(), ['./a.js', './b.js', './c.js', './d.js', './e.js', './f.js', './g.js', './h.js', './i.js']);
});

test('a forbidden import is caught, an allowed one is not', () => {
  const cases: [file: string, source: string, forbidden: boolean][] = [
    ['daemon/engine/probe.ts', "import { log } from '../server/log.js';", true],
    ['daemon/engine/generate/probe.ts', "import type { Endpoint } from '../../client/endpoint.js';", true],
    ['daemon/engine/probe.ts', "import { run } from '../cli/main.js';", true],
    ['daemon/engine/probe.ts', "import type { Box } from '../protocol.js';", false],
    ['extension/probe.ts', "import { Engine } from '../daemon/engine/index.js';", true],
    ['extension/commands/probe.ts', "import { x } from '../../daemon/server/endpoint.js';", true],
    ['extension/probe.ts', "import { connect } from '../daemon/client/daemon.js';", false],
    ['extension/probe.ts', "import type { InspectorTask } from '../webview/messages.js';", false],
    ['extension/probe.ts', "import '../webview/main.js';", true],
    ['webview/probe.ts', "import { x } from '../extension/config.js';", true],
    ['webview/probe.ts', "import type { Box } from '../daemon/protocol.js';", false],
    ['daemon/alttext/probe.ts', "import * as vscode from 'vscode';", true],
    ['daemon/client/probe.ts', "import { Engine } from '../engine/index.js';", true],
    ['daemon/common/probe.ts', "import { readFile } from 'node:fs/promises';", true],
    ['daemon/server/probe.ts', "import { fixture } from '../../test/server/daemon.js';", true],
    ['extension/probe.ts', "import * as vscode from 'vscode';", false],
  ];
  for (const [file, source, forbidden] of cases) {
    assert.equal(violations(file, source).length > 0, forbidden, `${file}: ${source}`);
  }
});

test('the lint rule catches the same forbidden import', async () => {
  const { ESLint } = await import('eslint');
  const eslint = new ESLint({ cwd: ROOT });
  const lint = async (file: string, source: string) => {
    const [result] = await eslint.lintText(source, { filePath: join(ROOT, file) });
    return result.messages.filter((m) => m.ruleId === 'import-x/no-restricted-paths' || m.ruleId === 'no-restricted-imports');
  };
  const engineToServer = await lint('daemon/engine/probe.ts', "import { createLogger } from '../server/log.js';\nexport { createLogger };\n");
  assert.equal(engineToServer.length, 1, JSON.stringify(engineToServer));
  assert.match(engineToServer[0].message, /daemon\/engine\/.*may import only/);
  const extensionToEngine = await lint('extension/probe.ts', "import type { EngineError } from '../daemon/engine/errors.js';\nexport type { EngineError };\n");
  assert.equal(extensionToEngine.length, 1, JSON.stringify(extensionToEngine));
  const clientToVscode = await lint('daemon/client/probe.ts', "import * as vscode from 'vscode';\nexport { vscode };\n");
  assert.equal(clientToVscode.length, 1, JSON.stringify(clientToVscode));
  const allowed = await lint(
    'extension/probe.ts',
    "import type { Box } from '../daemon/protocol.js';\nimport * as vscode from 'vscode';\nexport type { Box };\nexport { vscode };\n",
  );
  assert.deepEqual(allowed, []);
});
