import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cachedFileAccess } from '../../daemon/lsp/fileAccess.js';

const dir = mkdtempSync(join(tmpdir(), 'paligemma-lsp-files-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('cachedFileAccess (image bytes kept between diagnostics runs)', () => {
  it('reads an unchanged file once, and again after it changed', async () => {
    const files = cachedFileAccess();
    const path = join(dir, 'a.png');
    writeFileSync(path, 'one');
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await files.stat(path), { type: 'file', size: 3 });
      assert.equal(Buffer.from(await files.readFile(path)).toString(), 'one');
    }
    assert.equal(files.reads, 1);
    writeFileSync(path, 'two!');
    utimesSync(path, new Date(), new Date(Date.now() + 5000));
    await files.stat(path);
    assert.equal(Buffer.from(await files.readFile(path)).toString(), 'two!');
    assert.equal(files.reads, 2);
  });

  it('says a missing file is missing, and keeps no more bytes than its budget', async () => {
    const files = cachedFileAccess(10);
    assert.equal(await files.stat(join(dir, 'none.png')), undefined);
    const a = join(dir, 'six-a.png');
    const b = join(dir, 'six-b.png');
    writeFileSync(a, '123456');
    writeFileSync(b, 'abcdef');
    for (const p of [a, b, a]) {
      await files.stat(p);
      await files.readFile(p);
    }
    // 6 + 6 bytes exceed 10: reading b evicted a, so a was read again.
    assert.equal(files.reads, 3);
  });
});
