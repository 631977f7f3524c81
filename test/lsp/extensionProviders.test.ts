// Diagnostics, code actions and hovers for documents come from `paligemma lsp` alone: the extension
// must not register providers of its own for them (two sources would show every problem twice).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = join(fileURLToPath(import.meta.url), '..', '..', '..', '..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

describe('the extension and the language server', () => {
  it('the extension registers no diagnostics, code-action or hover provider of its own', () => {
    const files = sources(join(ROOT, 'extension'));
    assert.ok(
      files.some((f) => f.endsWith('lsp.ts')),
      `extension sources found under ${ROOT}`,
    );
    const offenders = files.flatMap((f) => {
      const text = readFileSync(f, 'utf8');
      return ['createDiagnosticCollection', 'registerCodeActionsProvider', 'registerHoverProvider'].filter((api) => text.includes(api)).map((api) => `${f}: ${api}`);
    });
    assert.deepEqual(offenders, []);
  });
});
