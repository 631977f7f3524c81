import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import type { Message } from 'vscode-jsonrpc/node';
import { type FrameProblem, GuardedMessageReader, topLevelId } from '../../daemon/server/frameReader.js';

function frame(body: string): string {
  return `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

function setup(maxMessageBytes = 1 << 20) {
  const input = new PassThrough();
  const messages: Array<Message & { id?: number; params?: { q?: string } }> = [];
  const problems: FrameProblem[] = [];
  const reader = new GuardedMessageReader(input, { maxMessageBytes, onProblem: (p) => problems.push(p) });
  reader.listen((m) => messages.push(m as (typeof messages)[number]));
  const write = async (s: string | Buffer) => {
    input.write(s);
    await new Promise((r) => setImmediate(r));
  };
  return { messages, problems, write };
}

const req = (id: number) => JSON.stringify({ jsonrpc: '2.0', id, method: 'paligemma/status' });

test('reads frames split across chunks and several frames in one chunk', async () => {
  const { messages, problems, write } = setup();
  const f = frame(req(1));
  await write(f.slice(0, 7));
  await write(f.slice(7, 30));
  await write(f.slice(30) + frame(req(2)) + frame(req(3)));
  assert.deepEqual(
    messages.map((m) => m.id),
    [1, 2, 3],
  );
  assert.equal(problems.length, 0);
});

test('counts the body in bytes, not characters', async () => {
  const { messages, write } = setup();
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'x', params: { q: 'é漢字🙂' } });
  await write(Buffer.from(frame(body), 'utf8'));
  assert.equal(messages[0].params?.q, 'é漢字🙂');
});

test('junk JSON in a well-formed frame is reported and the next frame is read', async () => {
  const { messages, problems, write } = setup();
  await write(frame('{"jsonrpc": "2.0", "id": 1, "meth'));
  await write(frame(req(2)));
  assert.equal(problems.length, 1);
  assert.equal(problems[0].code, -32700);
  assert.deepEqual(
    messages.map((m) => m.id),
    [2],
  );
});

test('raw junk bytes before a frame are skipped by resynchronising on Content-Length', async () => {
  const { messages, problems, write } = setup();
  await write('GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\x01\xff garbage ');
  await write(frame(req(7)));
  assert.deepEqual(
    messages.map((m) => m.id),
    [7],
  );
  assert.ok(problems.length >= 1);
  assert.ok(problems.every((p) => p.code === -32700));
});

test('endless junk without a header end is dropped, memory stays bounded', async () => {
  const { messages, write } = setup();
  const junk = 'x'.repeat(64 * 1024);
  for (let i = 0; i < 32; i++) await write(junk);
  await write('\r\n\r\n' + frame(req(9)));
  assert.deepEqual(
    messages.map((m) => m.id),
    [9],
  );
});

test('an oversized frame is answered with its own id and skipped without buffering it', async () => {
  const { messages, problems, write } = setup(100);
  const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'x', params: { s: 'y'.repeat(300) } });
  await write(frame(big));
  await write(frame(JSON.stringify({ jsonrpc: '2.0', id: 'abc', method: 'x', params: { id: 5, s: 'y'.repeat(300) } })));
  await write(frame(req(2)));
  assert.deepEqual(
    problems.map((p) => [p.code, p.id, p.fatal ?? false]),
    [
      [-32600, 1, false],
      [-32600, 'abc', false],
    ],
  );
  assert.match(problems[0].message, /exceeds the limit of 100/);
  assert.deepEqual(
    messages.map((m) => m.id),
    [2],
  );
});

test('the id of an oversized frame is answered once its first bytes are in, before the rest arrives', async () => {
  const { problems, write } = setup(100);
  await write(`Content-Length: 300\r\n\r\n`);
  await write(JSON.stringify({ jsonrpc: '2.0', id: 41, method: 'x' }).slice(0, -1));
  assert.equal(problems.length, 0, 'not before the first 4 KiB or the end of the body');
  await write(',"params":{"s":"' + 'y'.repeat(300));
  assert.deepEqual(
    problems.map((p) => p.id),
    [41],
  );
});

test('a declared length far beyond the limit is fatal: answered with its id, nothing after it is read', async () => {
  const { messages, problems, write } = setup(1000);
  await write(`Content-Length: 999999999\r\n\r\n` + JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'x', params: { s: 'y'.repeat(5000) } }));
  await write(frame(req(4)));
  assert.deepEqual(
    problems.map((p) => [p.id, p.fatal]),
    [[3, true]],
  );
  assert.match(problems[0].message, /connection is closed/);
  assert.deepEqual(messages, []);
});

test('a Content-Length larger than its message, which swallows the next frame, is fatal and names the first id', async () => {
  const { messages, problems, write } = setup();
  const first = req(5);
  await write(`Content-Length: ${first.length + 60}\r\n\r\n${first}` + frame(req(6)));
  assert.deepEqual(
    problems.map((p) => [p.code, p.id, p.fatal]),
    [[-32700, 5, true]],
  );
  assert.match(problems[0].message, /larger than its message/);
  assert.deepEqual(messages, []);
});

test('topLevelId reads the outermost id only', () => {
  assert.equal(topLevelId('{"params":{"id":9},"id":3,'), 3);
  assert.equal(topLevelId('{"s":"\\"id\\":7","id":"x\\"y"'), 'x"y');
  assert.equal(topLevelId('{"jsonrpc":"2.0","method":"x","params":{"id":1'), null);
});

test('non-object messages, batches and bad ids are invalid requests', async () => {
  const { messages, problems, write } = setup();
  await write(frame('42'));
  await write(frame('[' + req(1) + ']'));
  await write(frame('{"jsonrpc":"2.0","id":5}'));
  await write(frame('{"jsonrpc":"2.0","id":{"a":1},"method":"x"}'));
  await write(frame('{"jsonrpc":"2.0","id":6,"method":"x","params":"str"}'));
  await write(frame(req(8)));
  assert.deepEqual(
    problems.map((p) => [p.code, p.id]),
    [
      [-32600, null],
      [-32600, null],
      [-32600, 5],
      [-32600, null],
      [-32602, 6],
    ],
  );
  assert.deepEqual(
    messages.map((m) => m.id),
    [8],
  );
});

test('a bad header followed by nothing else is dropped (no spinning on it)', async () => {
  const { messages, problems, write } = setup();
  await write('Content-Length: banana\r\n\r\n');
  await write('\x00\x01\r\n\r\n');
  await write(frame(req(4)));
  assert.equal(problems.length, 1);
  assert.deepEqual(
    messages.map((m) => m.id),
    [4],
  );
});
