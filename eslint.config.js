// ESLint: the recommended JavaScript and typescript-eslint rules, plus the layering of the tree
// (.ci/layering.mjs, also checked by test/layering.test.ts) as import rules.
import js from '@eslint/js';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import globals from 'globals';
import tseslint from 'typescript-eslint';
import { LAYERS } from './.ci/layering.mjs';

/** import-x/no-restricted-paths zones from the layers: for each layer, every other one it may not import. */
function layerZones() {
  const others = [...LAYERS.map((l) => l.path), 'test/', 'bench/'];
  const zones = [];
  for (const layer of LAYERS) {
    for (const from of others) {
      if (from === layer.path) continue;
      if (layer.mayImport.some((entry) => entry.endsWith('/') && from.startsWith(entry))) continue;
      if (layer.mayImport.includes(from)) continue;
      const except = layer.mayImport.filter((entry) => entry.startsWith(from) && entry !== from).map((entry) => entry.slice(from.length));
      zones.push({
        target: `./${layer.path}`,
        from: `./${from}`,
        except,
        message: `${layer.path}: ${layer.why}; it may import only ${layer.mayImport.join(', ') || 'nothing outside itself'}.`,
      });
    }
  }
  return zones;
}

/** Per layer: `vscode` only in the extension; no imports at all where `packages` is false. */
function moduleRules() {
  return LAYERS.filter((l) => !l.vscode || l.packages === false).map((layer) => ({
    files: [layer.path.endsWith('/') ? `${layer.path}**/*.ts` : layer.path],
    rules: {
      'no-restricted-imports': [
        'error',
        layer.packages === false
          ? { patterns: [{ regex: '^[^.]', message: `${layer.path}: ${layer.why}.` }] }
          : { paths: [{ name: 'vscode', message: `${layer.path}: ${layer.why}; only extension/ runs in VS Code.` }] },
      ],
    },
  }));
}

export default tseslint.config(
  {
    ignores: ['node_modules/', 'out/', 'dist/', '.e2e/', 'test-results/', 'models/', 'tmp/', 'daemon/engine/image/assembly/', '**/*.generated.ts'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: 'tsconfig.json' })],
    },
    rules: {
      'import-x/no-restricted-paths': ['error', { zones: layerZones() }],
      // tsc reports unused names too (noUnusedLocals / noUnusedParameters); `_` marks one kept on purpose.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  {
    // Request and notification descriptors are namespaces, as in vscode-languageserver-protocol.
    files: ['daemon/protocol.ts'],
    rules: { '@typescript-eslint/no-namespace': 'off' },
  },
  {
    // Tests build malformed values on purpose, and match terminal escapes and exact spacing in output.
    files: ['test/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off', 'no-control-regex': 'off', 'no-regex-spaces': 'off' },
  },
  {
    // Callbacks that Playwright runs inside the page.
    files: ['test/e2e/**'],
    languageOptions: { globals: { ...globals.browser } },
  },
  ...moduleRules(),
  {
    files: ['webview/**/*.ts'],
    languageOptions: { globals: { ...globals.browser } },
  },
);
