import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { DAEMON_VERSION } from '../../daemon/client/version.js';

test('the daemon version (part of the socket name) matches package.json', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.equal(DAEMON_VERSION, pkg.version);
});
