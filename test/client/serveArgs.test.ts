// The daemon's start arguments from an editor's settings (daemon/client/serveArgs.ts), as the
// extension and the language server pass them, and the language server's reading of those settings.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serveArgs } from '../../daemon/client/serveArgs.js';
import { readSettings } from '../../daemon/lsp/settings.js';

test('keep-alive in ms, the provider, the model when set, --load-cache when asked', () => {
  assert.deepEqual(serveArgs({ keepAliveMinutes: 5, executionProvider: 'auto', modelPath: '', loadCache: false }), ['--keep-alive-ms', '300000', '--ep', 'auto']);
  assert.deepEqual(serveArgs({ keepAliveMinutes: 0.5, executionProvider: 'cpu', modelPath: '/m', loadCache: true }), [
    '--keep-alive-ms',
    '30000',
    '--ep',
    'cpu',
    '--model',
    '/m',
    '--load-cache',
  ]);
});

test('the language server reads loadCache from its settings (off unless a boolean true)', () => {
  assert.equal(readSettings({}).loadCache, false);
  assert.equal(readSettings({ loadCache: 'yes' }).loadCache, false);
  assert.equal(readSettings({ loadCache: true }).loadCache, true);
  assert.ok(serveArgs(readSettings({ loadCache: true, keepAlive: 1 })).includes('--load-cache'));
});
