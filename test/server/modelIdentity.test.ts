// A model's identity (the key of its cached answers) covers its weights, not only its manifest.
import assert from 'node:assert/strict';
import { cp, open, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as protocol from '../../daemon/protocol.js';
import { engineBackend } from '../../daemon/server/engineBackend.js';
import { identifyModelFolder } from '../../daemon/server/modelIdentity.js';
import { cleanupScratch, images, inProcessDaemon, tempDir, tinyModel } from './daemon.js';

let model: string;
let dir: string;

before(async () => {
  model = await tinyModel();
  dir = await tempDir('pg-id-');
});
after(cleanupScratch);

/** Flips one byte in the middle of `file`: same size, other weights. */
async function flipByte(file: string): Promise<void> {
  const { size } = await stat(file);
  const fh = await open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, Math.floor(size / 2));
    b[0] ^= 0xff;
    await fh.write(b, 0, 1, Math.floor(size / 2));
  } finally {
    await fh.close();
  }
}

test('a copy with the same weights has the same id; a copy with other weights (same manifest, same sizes) does not', async () => {
  const same = join(dir, 'same');
  const other = join(dir, 'other');
  await cp(model, same, { recursive: true });
  await cp(model, other, { recursive: true });
  await flipByte(join(other, 'decoder.onnx.data'));
  const [a, b, c] = await Promise.all([model, same, other].map(identifyModelFolder));
  assert.equal(b.id, a.id, 'copied files are hashed and match the recorded hashes');
  assert.notEqual(c.id, a.id);
  assert.equal(c.name, a.name);
});

test('a file with its recorded size and modification time is not hashed again', async () => {
  const trusted = join(dir, 'trusted');
  await cp(model, trusted, { recursive: true, preserveTimestamps: true });
  const file = join(trusted, 'decoder.onnx.data');
  const before = await stat(file);
  await flipByte(file);
  await utimes(file, before.atime, before.mtime);
  // Size and time match the manifest's record, so the recorded hash stands (a stat, not a read).
  assert.equal((await identifyModelFolder(trusted)).id, (await identifyModelFolder(model)).id);
});

test('a conversion without checksums still changes id when a weight file changes', async () => {
  const old = join(dir, 'old');
  await cp(model, old, { recursive: true });
  const manifest = JSON.parse(await readFile(join(old, 'manifest.json'), 'utf8'));
  delete manifest.checksums;
  await writeFile(join(old, 'manifest.json'), JSON.stringify(manifest));
  const first = await identifyModelFolder(old);
  await writeFile(join(old, 'decoder.onnx.data'), Buffer.concat([await readFile(join(old, 'decoder.onnx.data')), Buffer.alloc(4)]));
  assert.notEqual((await identifyModelFolder(old)).id, first.id);
  await rm(old, { recursive: true });
});

test("the daemon does not answer a model with other weights from the first model's cache", async () => {
  const other = join(dir, 'served-other');
  await cp(model, other, { recursive: true });
  await flipByte(join(other, 'decoder.onnx.data'));
  const d = await inProcessDaemon(engineBackend());
  try {
    const c = await d.connect();
    const params = { image: { path: images.shapes }, decoding: { maxNewTokens: 3 } };
    assert.equal((await c.connection.sendRequest(protocol.Caption.type, params)).cached, false);
    assert.equal((await c.connection.sendRequest(protocol.Caption.type, params)).cached, true);
    await c.connection.sendRequest(protocol.LoadModel.type, { path: other });
    assert.equal((await c.connection.sendRequest(protocol.Caption.type, params)).cached, false);
  } finally {
    await d.stop();
  }
});
