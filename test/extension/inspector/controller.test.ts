import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ResponseError, type CancellationToken, type RequestType } from 'vscode-jsonrpc';
import { Caption, Detect, ErrorCodes, Segment, type TokenNotification } from '../../../daemon/protocol.js';
import { isImagePath } from '../../../daemon/common/images.js';
import { InspectorController, validateData, type DaemonRequester, type InspectorHost } from '../../../extension/inspector/controller.js';
import type { HostMessage, ImageSource } from '../../../webview/messages.js';

const file: ImageSource = { kind: 'uri', uri: 'file:///work/a.png', name: 'a.png' };
const meta = { model: 'tiny-paligemma-224', ms: 5, cached: false };

interface Call {
  method: string;
  params: any;
  token?: CancellationToken;
}

function fakeHost(): InspectorHost & { posted: HostMessage[]; clipboard: string[] } {
  const posted: HostMessage[] = [];
  const clipboard: string[] = [];
  return {
    posted,
    clipboard,
    postMessage: (m) => {
      posted.push(m);
      return true;
    },
    imageRef: async (s) => (s.kind === 'uri' ? { path: new URL(s.uri).pathname } : { data: s.data, mimeType: s.mimeType }),
    showable: async (s) => (s.kind === 'uri' ? { source: s, src: `webview:${s.uri}` } : { source: s }),
    sourceFromUri: async (u) => {
      if (!isImagePath(u)) throw new Error(`${u} is not an image`);
      return { kind: 'uri', uri: u, name: u.split('/').pop()! };
    },
    pickImage: async () => undefined,
    writeClipboard: async (t) => {
      clipboard.push(t);
    },
  };
}

function fakeDaemon(answer: (call: Call) => Promise<unknown>): DaemonRequester & { calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    sendRequest<P, R>(type: RequestType<P, R, void>, params: P, token?: CancellationToken): Promise<R> {
      const call = { method: type.method, params, token };
      calls.push(call);
      return answer(call) as Promise<R>;
    },
  };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('InspectorController', () => {
  it('answers ready with the image, then runs a caption request on the file path', async () => {
    const host = fakeHost();
    const daemon = fakeDaemon(async () => ({ text: 'a red square', ...meta }));
    const c = new InspectorController(host, daemon, file);
    await c.handle({ type: 'ready' });
    assert.deepEqual(host.posted[0], { type: 'image', image: { source: file, src: 'webview:file:///work/a.png' } });
    await c.handle({ type: 'run', requestId: 'r1', task: { kind: 'caption' } });
    assert.equal(daemon.calls[0].method, Caption.method);
    assert.deepEqual(daemon.calls[0].params, { image: { path: '/work/a.png' } });
    assert.deepEqual(host.posted.at(-1), { type: 'result', requestId: 'r1', result: { kind: 'caption', text: 'a red square', meta } });
  });

  it('holds tasks asked for before the webview is ready, and sends them after the image', async () => {
    const host = fakeHost();
    const c = new InspectorController(
      host,
      fakeDaemon(async () => assert.fail()),
      file,
    );
    c.runTask({ kind: 'detect', objects: ['cat'] });
    assert.equal(host.posted.length, 0);
    await c.handle({ type: 'ready' });
    assert.deepEqual(
      host.posted.map((m) => m.type),
      ['image', 'runTask'],
    );
    c.runTask({ kind: 'ocr' });
    assert.deepEqual(host.posted.at(-1), { type: 'runTask', task: { kind: 'ocr' } });
  });

  it("adds the user's token limit and language to every request", async () => {
    const host = { ...fakeHost(), taskDefaults: () => ({ maxNewTokens: 32, language: 'de' }) };
    const daemon = fakeDaemon(async (call) => (call.method === Detect.method ? { objects: [], ...meta } : { text: 't', ...meta }));
    const c = new InspectorController(host, daemon, file);
    await c.handle({ type: 'run', requestId: 'a', task: { kind: 'answer', question: 'was?' } });
    await c.handle({ type: 'run', requestId: 'd', task: { kind: 'detect', objects: ['cat'] } });
    assert.deepEqual(daemon.calls[0].params, { image: { path: '/work/a.png' }, question: 'was?', language: 'de', decoding: { maxNewTokens: 32 } });
    assert.deepEqual(daemon.calls[1].params, { image: { path: '/work/a.png' }, objects: ['cat'], decoding: { maxNewTokens: 32 } });
  });

  it('maps detect and segment to their requests and passes the objects through', async () => {
    const host = fakeHost();
    const objects = [{ label: 'cat', box: { x0: 1, y0: 2, x1: 30, y1: 40 } }];
    const daemon = fakeDaemon(async () => ({ objects, ...meta }));
    const c = new InspectorController(host, daemon, file);
    await c.handle({ type: 'run', requestId: 'd', task: { kind: 'detect', objects: [' cat ', 'dog'] } });
    await c.handle({ type: 'run', requestId: 's', task: { kind: 'segment', object: 'cat' } });
    assert.equal(daemon.calls[0].method, Detect.method);
    assert.deepEqual(daemon.calls[0].params.objects, ['cat', 'dog']);
    assert.equal(daemon.calls[1].method, Segment.method);
    assert.equal(daemon.calls[1].params.object, 'cat');
    assert.deepEqual(host.posted[0], { type: 'result', requestId: 'd', result: { kind: 'detect', query: ['cat', 'dog'], objects, meta } });
    assert.deepEqual(host.posted[1], { type: 'result', requestId: 's', result: { kind: 'segment', query: ['cat'], objects, meta } });
  });

  it('refuses malformed tasks without asking the daemon', async () => {
    const host = fakeHost();
    const daemon = fakeDaemon(async () => assert.fail('no request expected'));
    const c = new InspectorController(host, daemon, file);
    await c.handle({ type: 'run', requestId: 'q', task: { kind: 'answer', question: '   ' } });
    await c.handle({ type: 'run', requestId: 'x', task: { kind: 'explode' } as never });
    await c.handle({ type: 'run', requestId: 'o', task: { kind: 'detect', objects: [] } });
    assert.equal(daemon.calls.length, 0);
    assert.deepEqual(
      host.posted.map((m) => m.type === 'error' && [m.requestId, m.message]),
      [
        ['q', 'The question is empty.'],
        ['x', 'Unknown inspector task "explode".'],
        ['o', 'Say what to detect, e.g. "cat; dog".'],
      ],
    );
  });

  it('says a task needs an image when none is open', async () => {
    const host = fakeHost();
    const c = new InspectorController(
      host,
      fakeDaemon(async () => assert.fail()),
    );
    await c.handle({ type: 'ready' });
    await c.handle({ type: 'run', requestId: 'r', task: { kind: 'ocr' } });
    assert.deepEqual(host.posted, [{ type: 'error', requestId: 'r', message: 'Open, paste or drop an image first.' }]);
  });

  it("reports the daemon's error against the request", async () => {
    const host = fakeHost();
    const daemon = fakeDaemon(async () => {
      throw new ResponseError(ErrorCodes.CorruptImage, 'a.png: corrupt PNG data');
    });
    const c = new InspectorController(host, daemon, file);
    await c.handle({ type: 'run', requestId: 'r', task: { kind: 'ocr' } });
    assert.deepEqual(host.posted, [{ type: 'error', requestId: 'r', message: 'Extract text failed: a.png: corrupt PNG data' }]);
  });

  it('cancels a running request through its token', async () => {
    const host = fakeHost();
    const daemon = fakeDaemon((call) => new Promise((_, reject) => call.token!.onCancellationRequested(() => reject(new ResponseError(ErrorCodes.Cancelled, 'cancelled')))));
    const c = new InspectorController(host, daemon, file);
    const running = c.handle({ type: 'run', requestId: 'r', task: { kind: 'answer', question: 'what?' } });
    await settle();
    assert.equal(daemon.calls[0].token!.isCancellationRequested, false);
    await c.handle({ type: 'cancel', requestId: 'r' });
    await running;
    assert.deepEqual(host.posted, [{ type: 'error', requestId: 'r', message: 'Ask: cancelled.' }]);
  });

  it('streams tokens of its own requests only, when the daemon client offers them', async () => {
    const host = fakeHost();
    let listener: ((n: TokenNotification) => void) | undefined;
    let release!: () => void;
    const daemon: DaemonRequester & { calls: Call[] } = {
      ...fakeDaemon(async () => {
        await new Promise<void>((r) => (release = r));
        return { text: 'two words', ...meta };
      }),
      onTokens(l) {
        listener = l;
        return { dispose: () => (listener = undefined) };
      },
    };
    const c = new InspectorController(host, daemon, file);
    const running = c.handle({ type: 'run', requestId: 'r', task: { kind: 'caption' } });
    await settle();
    const streamId = daemon.calls[0].params.streamId as string;
    assert.match(streamId, /^inspector-/);
    listener!({ streamId: 'someone-else', text: 'x', tokenId: 1 });
    listener!({ streamId, text: 'two', tokenId: 7 });
    release();
    await running;
    assert.deepEqual(host.posted[0], { type: 'partial', requestId: 'r', text: 'two' });
    assert.equal(host.posted.length, 2);
    assert.equal(host.posted[1].type, 'result');
    c.dispose();
    assert.equal(listener, undefined, 'dispose unsubscribes');
  });

  it('opens pasted images and dropped files, and refuses what is not an image', async () => {
    const host = fakeHost();
    const c = new InspectorController(
      host,
      fakeDaemon(async () => ({ text: 't', ...meta })),
    );
    await c.handle({ type: 'openData', data: 'iVBORw0KGgo=', mimeType: 'image/png', name: '' });
    assert.deepEqual(c.image, { kind: 'data', data: 'iVBORw0KGgo=', mimeType: 'image/png', name: 'pasted image' });
    assert.equal(host.posted.at(-1)?.type, 'image');
    await c.handle({ type: 'openData', data: 'aGVsbG8=', mimeType: 'text/plain', name: 'notes.txt' });
    assert.deepEqual(host.posted.at(-1), { type: 'error', message: 'Only images can be inspected (got text/plain).' });
    await c.handle({ type: 'openUri', uri: 'file:///work/readme.md' });
    assert.deepEqual(host.posted.at(-1), { type: 'error', message: 'file:///work/readme.md is not an image' });
    await c.handle({ type: 'openUri', uri: 'file:///work/b.jpg' });
    assert.deepEqual(c.image, { kind: 'uri', uri: 'file:///work/b.jpg', name: 'b.jpg' });
    await c.handle({ type: 'copy', text: 'TOTAL 42' });
    assert.deepEqual(host.clipboard, ['TOTAL 42']);
  });

  it('sends pasted images to the daemon inline', async () => {
    const host = fakeHost();
    const daemon = fakeDaemon(async () => ({ text: 't', ...meta }));
    const c = new InspectorController(host, daemon);
    await c.handle({ type: 'openData', data: 'iVBORw0KGgo=', mimeType: 'image/png', name: 'shot.png' });
    await c.handle({ type: 'run', requestId: 'r', task: { kind: 'caption' } });
    assert.deepEqual(daemon.calls[0].params.image, { data: 'iVBORw0KGgo=', mimeType: 'image/png' });
  });
});

describe('validateData', () => {
  it('rejects data that is not base64 and images over the size limit', () => {
    assert.throws(() => validateData({ data: 'not base64!', mimeType: 'image/png', name: 'x' }), /no base64 data/);
    assert.throws(() => validateData({ data: 'A'.repeat(40 * 1024 * 1024), mimeType: 'image/png', name: 'x' }), /31\.5 MB; the limit is 25\.0 MB/);
  });
});

describe('isImagePath', () => {
  it('knows image extensions case-insensitively', () => {
    assert.equal(isImagePath('/a/b/Photo.JPG'), true);
    assert.equal(isImagePath('/a/b.webp'), true);
    assert.equal(isImagePath('/a/b.md'), false);
    assert.equal(isImagePath('/a/png'), false);
  });
});
