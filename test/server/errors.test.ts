// Every bad input gets its own stable error code and a message naming the problem, and the next
// request on the same connection still succeeds. Also junk on the wire. Spawned daemon, real model.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { crc32, deflateSync } from 'node:zlib';
import type { DaemonConnection } from '../../daemon/client/daemon.js';
import * as protocol from '../../daemon/protocol.js';
import { ErrorCodes } from '../../daemon/protocol.js';
import { cleanupScratch, fixtureDir, images, rawSocket as rawSocketTo, tempDir, type TestDaemon, testDaemon, tinyModel } from './daemon.js';

let daemon: TestDaemon;
let client: DaemonConnection;
let dir: string;
let model: string;

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type), data])));
  return Buffer.concat([len, Buffer.from(type), data, crc]);
}

/** A valid-looking PNG whose header claims width x height but holds almost no pixel data. */
function pngClaiming(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(Buffer.alloc(16))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

before(async () => {
  model = await tinyModel();
  dir = await tempDir('pg-bad-');
  const shapes = await readFile(images.shapes);
  await writeFile(join(dir, 'empty.png'), Buffer.alloc(0));
  await writeFile(join(dir, 'notes.png'), 'this is a text file, not a picture\n');
  await writeFile(join(dir, 'truncated.png'), shapes.subarray(0, Math.floor(shapes.length / 2)));
  await writeFile(join(dir, 'huge.png'), pngClaiming(3000, 3000));
  await writeFile(join(dir, 'big.png'), Buffer.concat([shapes, Buffer.alloc(300_000)]));
  await mkdir(join(dir, 'a-folder.png'));
  await mkdir(join(dir, 'broken-model'));
  await writeFile(join(dir, 'broken-model', 'manifest.json'), '{"format": "paligemma-onnx", "formatVersion": 1}');
  // Limits small enough for the fixtures to exercise them: the sample images are <= 640x360, 19 KB.
  daemon = await testDaemon(['--model', model, '--ep', 'cpu', '--max-bytes', '200000', '--max-pixels', '4000000']);
  client = await daemon.connect();
});

after(async () => {
  client?.close();
  await daemon?.stop();
  await cleanupScratch();
});

async function expectError(call: () => Promise<unknown>, code: number, message: RegExp): Promise<void> {
  await assert.rejects(call, (e: { code: number; message: string }) => {
    assert.equal(e.code, code, `code for ${e.message}`);
    assert.match(e.message, message);
    return true;
  });
  // ...and the daemon still serves the next request.
  const ok = await client.connection.sendRequest(protocol.Caption.type, { image: { path: images.shapes }, decoding: { maxNewTokens: 4 } });
  assert.equal(typeof ok.text, 'string');
}

const caption = (path: string) => () => client.connection.sendRequest(protocol.Caption.type, { image: { path }, decoding: { maxNewTokens: 4 } });

test('image files: not found, a folder, empty, not an image, truncated, too many pixels, too large', async () => {
  await expectError(caption(join(dir, 'missing.png')), ErrorCodes.NotFound, /not found.*missing\.png/);
  await expectError(caption(join(dir, 'a-folder.png')), ErrorCodes.NotAFile, /not a file.*a-folder\.png/);
  await expectError(caption(join(dir, 'empty.png')), ErrorCodes.EmptyFile, /empty.*empty\.png/);
  await expectError(caption(join(dir, 'notes.png')), ErrorCodes.UnsupportedImage, /notes\.png/);
  await expectError(caption(join(dir, 'truncated.png')), ErrorCodes.CorruptImage, /truncated\.png/);
  await expectError(caption(join(dir, 'huge.png')), ErrorCodes.TooManyPixels, /3000x3000/);
  await expectError(caption(join(dir, 'big.png')), ErrorCodes.FileTooLarge, /limit/);
});

test('inline images: empty, not base64, not an image', async () => {
  const inline = (data: string) => () => client.connection.sendRequest(protocol.Ocr.type, { image: { data } });
  await expectError(inline(''), ErrorCodes.EmptyFile, /inline image is empty/);
  await expectError(inline('%%% not base64 %%%'), ErrorCodes.InvalidParams, /base64/);
  await expectError(inline(Buffer.from('hello world').toString('base64')), ErrorCodes.UnsupportedImage, /.+/);
});

test('invalid params name the field', async () => {
  const send = (method: string, params: unknown) => () => client.connection.sendRequest(method, params);
  const img = { path: images.shapes };
  const cases: Array<[string, unknown, RegExp]> = [
    ['paligemma/caption', {}, /caption\.image must be/],
    ['paligemma/caption', { image: 42 }, /caption\.image must be/],
    ['paligemma/caption', { image: { path: '' } }, /image\.path must be a non-empty string/],
    ['paligemma/caption', { image: { path: 'x', data: 'y' } }, /unknown field 'data'/],
    ['paligemma/caption', { image: { path: 'pictures/x.png' } }, /image\.path must be an absolute path, not 'pictures\/x\.png'/],
    ['paligemma/caption', { image: img, colour: 'red' }, /unknown field 'colour'/],
    ['paligemma/caption', { image: img, detail: 'medium' }, /detail must be 'short' or 'long'/],
    ['paligemma/caption', { image: img, language: 'English please' }, /language must be a language code/],
    ['paligemma/caption', { image: img, decoding: { maxNewTokens: 0 } }, /maxNewTokens must be an integer/],
    ['paligemma/caption', { image: img, decoding: { strategy: 'creative' } }, /strategy must be/],
    ['paligemma/caption', { image: img, decoding: { temperature: -1 } }, /temperature must be a number/],
    ['paligemma/caption', { image: img, decoding: { minNewTokens: 9, maxNewTokens: 3 } }, /minNewTokens \(9\) exceeds/],
    ['paligemma/caption', { image: img, cacheOnly: 'yes' }, /cacheOnly must be a boolean/],
    ['paligemma/detect', { image: img, objects: [] }, /objects must be a non-empty array/],
    ['paligemma/detect', { image: img, objects: ['cat', 7] }, /objects\[1\] must be a non-empty string/],
    ['paligemma/detect', { image: img, objects: ['cat ; dog'] }, /must not contain ';'/],
    ['paligemma/answer', { image: img, question: '   ' }, /question must not be empty/],
    ['paligemma/segment', { image: img }, /object must be a string/],
    ['paligemma/generate', { image: img, prompt: 3 }, /prompt must be a string/],
    ['paligemma/loadModel', { path: 5 }, /path must be a non-empty string/],
    ['paligemma/loadModel', { path: model, executionProvider: 'tpu' }, /executionProvider must be/],
    ['paligemma/status', { verbose: true }, /status takes no params/],
    ['paligemma/caption', [img], /params must be an object/],
  ];
  for (const [method, params, message] of cases) await expectError(send(method, params), ErrorCodes.InvalidParams, message);
});

test('a question that is too long is refused before it reaches the model', async () => {
  await expectError(
    () => client.connection.sendRequest(protocol.Answer.type, { image: { path: images.shapes }, question: 'why '.repeat(1000) }),
    ErrorCodes.PromptTooLong,
    /question is 4000 characters; the limit is 2000/,
  );
});

test('an unknown method is MethodNotFound', async () => {
  await expectError(() => client.connection.sendRequest('paligemma/frobnicate', {}), ErrorCodes.MethodNotFound, /unknown method 'paligemma\/frobnicate'/);
});

test('cacheOnly answers NotCached without running the model, then the cached result once it exists', async () => {
  const params = { image: { path: images.gradient }, decoding: { maxNewTokens: 5 } };
  await expectError(() => client.connection.sendRequest(protocol.Ocr.type, { ...params, cacheOnly: true }), ErrorCodes.NotCached, /no cached ocr result/);
  const computed = await client.connection.sendRequest(protocol.Ocr.type, params);
  const cached = await client.connection.sendRequest(protocol.Ocr.type, { ...params, cacheOnly: true });
  assert.equal(cached.cached, true);
  assert.equal(cached.text, computed.text);
});

test('loadModel: missing folder, invalid model, unavailable provider; the old model keeps serving', async () => {
  const load = (params: protocol.LoadModelParams) => () => client.connection.sendRequest(protocol.LoadModel.type, params);
  await expectError(load({ path: join(dir, 'no-such-model') }), ErrorCodes.ModelMissing, /no-such-model/);
  await expectError(load({ path: join(dir, 'broken-model') }), ErrorCodes.ModelInvalid, /manifest\.json/);
  await expectError(load({ path: fixtureDir }), ErrorCodes.ModelMissing, /manifest\.json/);
  if (existsSync('/dev/nvidiactl')) {
    process.stderr.write('# this machine has an NVIDIA GPU: the provider-unavailable case is not exercised\n');
  } else {
    await expectError(load({ path: model, executionProvider: 'cuda' }), ErrorCodes.ProviderUnavailable, /cuda/i);
  }
  // The failed loads left the configured model in place: an uncached request reloads it.
  let s = await client.connection.sendRequest(protocol.Status.type);
  assert.equal(s.model.path, model);
  await client.connection.sendRequest(protocol.Generate.type, { image: { path: images.wide }, prompt: 'caption de', decoding: { maxNewTokens: 3 } });
  s = await client.connection.sendRequest(protocol.Status.type);
  assert.equal(s.model.state, 'ready');
  assert.equal(s.model.name, 'tiny-paligemma-224');
  assert.equal(s.model.executionProvider, 'cpu');
});

const rawSocket = () => rawSocketTo(daemon.endpoint.socketPath);

test('junk on the wire: each bad frame gets an error, the same connection keeps working', async () => {
  const raw = await rawSocket();
  const status = (id: number) => raw.frame(JSON.stringify({ jsonrpc: '2.0', id, method: 'paligemma/status' }));
  raw.socket.write(Buffer.from([0, 1, 2, 255, 254, 13, 10, 13, 10]));
  raw.socket.write(raw.frame('{"jsonrpc":"2.0","id":1,"method":'));
  raw.socket.write(raw.frame('[1,2,3]'));
  raw.socket.write('Content-Length: banana\r\n\r\n');
  raw.socket.write(raw.frame('{"jsonrpc":"2.0","id":2,"method":"paligemma/caption","params":{"image":{"path":7}}}'));
  raw.socket.write(status(3));
  const got = await raw.waitFor(6);
  const errors = got.filter((m) => m.error).map((m) => [m.id, m.error!.code]);
  assert.deepEqual(errors, [
    [null, ErrorCodes.ParseError],
    [null, ErrorCodes.ParseError],
    [null, ErrorCodes.InvalidRequest],
    [null, ErrorCodes.ParseError],
    [2, ErrorCodes.InvalidParams],
  ]);
  const ok = got.find((m) => m.id === 3);
  assert.equal((ok?.result as protocol.StatusResult).pid > 0, true);
  raw.socket.destroy();
});

test('a client that sends half a frame and vanishes does not hurt the daemon', async () => {
  const raw = await rawSocket();
  raw.socket.write('Content-Length: 500\r\n\r\n{"jsonrpc":"2.0","id":1,');
  raw.socket.destroy();
  const s = await client.connection.sendRequest(protocol.Status.type);
  assert.equal(typeof s.pid, 'number');
});
