import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Lru } from '../../daemon/server/lru.js';
import { cacheKey, ResultCache } from '../../daemon/server/resultCache.js';

test('Lru evicts the least recently used entry', () => {
  const l = new Lru<number>(2);
  l.set('a', 1);
  l.set('b', 2);
  assert.equal(l.get('a'), 1);
  l.set('c', 3);
  assert.equal(l.get('b'), undefined);
  assert.equal(l.get('a'), 1);
  assert.equal(l.get('c'), 3);
  assert.equal(l.size, 2);
});

test('Lru bounds the total size too', () => {
  const l = new Lru<string>(100, 10, (s) => s.length);
  l.set('a', 'xxxxxx');
  l.set('b', 'yyyyyy');
  assert.equal(l.get('a'), undefined);
  assert.equal(l.get('b'), 'yyyyyy');
  l.set('c', 'z'.repeat(11));
  assert.equal(l.get('c'), undefined);
});

test('cache keys depend on every part and not on decoding field order', () => {
  const base = { imageSha256: 'ab', task: 'caption', prompt: 'caption en', modelId: 'm1', decoding: { maxNewTokens: 8, topK: 3 } };
  const k = cacheKey(base);
  assert.equal(cacheKey({ ...base, decoding: { topK: 3, maxNewTokens: 8 } }), k);
  for (const change of [{ imageSha256: 'ac' }, { task: 'ocr' }, { prompt: 'caption fr' }, { modelId: 'm2' }, { decoding: { maxNewTokens: 9, topK: 3 } }]) {
    assert.notEqual(cacheKey({ ...base, ...change }), k, JSON.stringify(change));
  }
});

test('ResultCache counts hits and misses and persists to disk across instances', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pg-cache-'));
  try {
    const a = new ResultCache<{ text: string }>({ maxEntries: 4, dir });
    assert.equal(await a.get('k1'), undefined);
    await a.set('k1', { text: 'hello' });
    assert.deepEqual(await a.get('k1'), { text: 'hello' });
    assert.deepEqual([a.hits, a.misses], [1, 1]);
    const b = new ResultCache<{ text: string }>({ maxEntries: 4, dir });
    assert.deepEqual(await b.get('k1'), { text: 'hello' });
    assert.deepEqual(await readdir(dir), ['k1.json']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('ResultCache prunes the disk folder to maxDiskEntries', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pg-cache-'));
  try {
    const c = new ResultCache<{ n: number }>({ maxEntries: 2, dir, maxDiskEntries: 3 });
    for (let i = 0; i < 6; i++) await c.set(`k${i}`, { n: i });
    await c.prune();
    assert.equal((await readdir(dir)).length, 3);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
