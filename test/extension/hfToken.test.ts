// The Hugging Face token's move from plain settings into SecretStorage, against in-memory stores
// that behave like VS Code's (a Map of secrets; settings in several scopes).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { effectiveToken, migrateLegacyToken, SECRET_KEY, validateToken, type LegacySetting, type SecretStore } from '../../extension/token/hfToken.js';

class Secrets implements SecretStore {
  readonly map = new Map<string, string>();
  writes = 0;
  async get(key: string) {
    return this.map.get(key);
  }
  async store(key: string, value: string) {
    this.writes++;
    this.map.set(key, value);
  }
}

class Settings implements LegacySetting {
  constructor(readonly scopes: Record<string, string | undefined>) {}
  clears = 0;
  values() {
    return Object.values(this.scopes).filter((v): v is string => v !== undefined);
  }
  async clear() {
    this.clears++;
    for (const k of Object.keys(this.scopes)) this.scopes[k] = undefined;
  }
}

test('a token in plain settings moves to SecretStorage once, and settings no longer hold it', async () => {
  const secrets = new Secrets();
  const settings = new Settings({ user: ' hf_abcdefghijkl ', workspace: undefined });
  assert.deepEqual(await migrateLegacyToken(secrets, settings), { kind: 'moved' });
  assert.equal(secrets.map.get(SECRET_KEY), 'hf_abcdefghijkl', 'stored trimmed');
  assert.deepEqual(settings.values(), [], 'removed from every scope');
  // The next activation finds nothing to move: no second notice, no second write.
  assert.deepEqual(await migrateLegacyToken(secrets, settings), { kind: 'none' });
  assert.equal(secrets.writes, 1);
  assert.equal(settings.clears, 1);
});

test('a token set in two scopes: the first non-empty one is stored, both are removed', async () => {
  const secrets = new Secrets();
  const settings = new Settings({ user: '', remote: 'hf_remote1234567' });
  assert.deepEqual(await migrateLegacyToken(secrets, settings), { kind: 'moved' });
  assert.equal(secrets.map.get(SECRET_KEY), 'hf_remote1234567');
  assert.deepEqual(settings.values(), []);
});

test('a token already in SecretStorage is kept; a different plain one is only removed', async () => {
  const secrets = new Secrets();
  secrets.map.set(SECRET_KEY, 'hf_secretsecret1');
  const settings = new Settings({ user: 'hf_oldplaintext1' });
  assert.deepEqual(await migrateLegacyToken(secrets, settings), { kind: 'removed', kept: 'secret' });
  assert.equal(secrets.map.get(SECRET_KEY), 'hf_secretsecret1');
  assert.equal(secrets.writes, 0);
  assert.deepEqual(settings.values(), []);
  // The same token in both: moved (no notice about a conflict), nothing rewritten.
  const same = new Settings({ user: 'hf_secretsecret1' });
  assert.deepEqual(await migrateLegacyToken(secrets, same), { kind: 'moved' });
  assert.equal(secrets.writes, 0);
});

test('nothing set: nothing stored, nothing cleared; an empty string left behind is cleared silently', async () => {
  const secrets = new Secrets();
  const none = new Settings({ user: undefined });
  assert.deepEqual(await migrateLegacyToken(secrets, none), { kind: 'none' });
  assert.equal(none.clears, 0);
  const empty = new Settings({ user: '  ' });
  assert.deepEqual(await migrateLegacyToken(secrets, empty), { kind: 'none' });
  assert.equal(empty.clears, 1);
  assert.equal(secrets.writes, 0);
});

test('HF_TOKEN wins over the stored token, as for the CLI', () => {
  assert.equal(effectiveToken({ HF_TOKEN: 'hf_env' }, 'hf_stored'), 'hf_env');
  assert.equal(effectiveToken({ HF_TOKEN: ' ' }, 'hf_stored'), 'hf_stored');
  assert.equal(effectiveToken({}, undefined), undefined);
});

test('token input is checked before it is stored', () => {
  assert.equal(validateToken('hf_abcdefghijklmnop'), undefined);
  assert.match(validateToken('')!, /huggingface\.co/);
  assert.match(validateToken('hf_abc def')!, /no spaces/);
  assert.match(validateToken('ghp_abcdefghijkl')!, /start with hf_/);
});
