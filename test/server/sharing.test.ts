// Identical requests in flight run the model once; images are decoded when their request's turn
// comes, and admitted against a memory budget. In-process daemon, real tiny model, gated generate.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { CancellationTokenSource } from 'vscode-jsonrpc/node';
import * as protocol from '../../daemon/protocol.js';
import { ErrorCodes } from '../../daemon/protocol.js';
import type { Backend } from '../../daemon/server/backend.js';
import { engineBackend } from '../../daemon/server/engineBackend.js';
import { cleanupScratch, images, inProcessDaemon, tempDir, waitFor } from './daemon.js';

after(cleanupScratch);

/** The real backend; generate waits for open() (closed again by close()) and every decode and generate is logged in order. */
function recordingBackend() {
  const real = engineBackend();
  const events: string[] = [];
  const aborted: boolean[] = [];
  let release!: () => void;
  let opened!: Promise<void>;
  const close = () => (opened = new Promise<void>((r) => (release = r)));
  close();
  const backend: Backend = {
    ...real,
    async decodeImage(bytes, limits) {
      const img = await real.decodeImage(bytes, limits);
      events.push(`decode ${img.width}x${img.height}`);
      return img;
    },
    async load(path, o) {
      const model = await real.load(path, o);
      return {
        get info() {
          return model.info;
        },
        async generate(req) {
          events.push(`generate ${req.image.width}x${req.image.height}`);
          await opened;
          aborted.push(req.signal?.aborted ?? false);
          return model.generate(req);
        },
        dispose: () => model.dispose(),
      };
    },
  };
  return { backend, events, aborted, open: () => release(), close, generates: () => events.filter((e) => e.startsWith('generate')).length };
}

const caption = (path: string) => ({ image: { path }, decoding: { maxNewTokens: 3 } });

test('50 identical concurrent requests run the model once and all get the answer', async () => {
  const r = recordingBackend();
  const d = await inProcessDaemon(r.backend);
  try {
    const c = await d.connect();
    const all = Array.from({ length: 50 }, () => c.connection.sendRequest(protocol.Caption.type, caption(images.shapes)));
    await waitFor(() => d.daemon.service.shared.waiters === 50, 10_000, 'all 50 to wait on one computation');
    assert.equal(d.daemon.service.shared.size, 1);
    r.open();
    const results = await Promise.all(all);
    assert.equal(r.generates(), 1);
    assert.equal(new Set(results.map((x) => x.text)).size, 1);
    assert.ok(results.every((x) => x.cached === false));
  } finally {
    await d.stop();
  }
});

test('cancelling one waiter does not cancel the others; cancelling every waiter stops the run', async () => {
  const r = recordingBackend();
  const d = await inProcessDaemon(r.backend);
  try {
    const c = await d.connect();
    const cts = [new CancellationTokenSource(), new CancellationTokenSource(), new CancellationTokenSource()];
    const three = cts.map((t) => c.connection.sendRequest(protocol.Caption.type, caption(images.gradient), t.token));
    await waitFor(() => d.daemon.service.shared.waiters === 3, 10_000, 'three waiters');
    cts[0].cancel();
    await assert.rejects(three[0], (e: { code: number }) => e.code === ErrorCodes.Cancelled);
    r.open();
    const [b, c2] = await Promise.all(three.slice(1));
    assert.equal(b.text, c2.text);
    assert.equal(r.generates(), 1);
    assert.deepEqual(r.aborted, [false], 'the run was not cancelled');

    // Now every waiter of a run leaves: the run itself is cancelled. Held again, so that the run
    // neither ends before the second request joins it nor before both are cancelled.
    r.close();
    const more = [new CancellationTokenSource(), new CancellationTokenSource()];
    const two = more.map((t) => c.connection.sendRequest(protocol.Ocr.type, caption(images.wide), t.token));
    const settled = Promise.allSettled(two);
    await waitFor(() => d.daemon.service.shared.waiters === 2, 10_000, 'two waiters');
    await waitFor(() => r.generates() === 2, 10_000, 'the run to start');
    more.forEach((t) => t.cancel());
    await waitFor(() => d.daemon.service.shared.size === 0, 10_000, 'the run to be dropped once its last waiter left');
    r.open();
    assert.ok(
      (await settled).every((s) => s.status === 'rejected' && (s.reason as { code: number }).code === ErrorCodes.Cancelled),
      'both cancelled',
    );
    assert.deepEqual(r.aborted, [false, true], 'the run saw its cancellation');
    assert.equal(d.daemon.service.shared.size, 0);
  } finally {
    await d.stop();
  }
});

test('images are decoded when their request is scheduled, not while it waits', async () => {
  const r = recordingBackend();
  const d = await inProcessDaemon(r.backend);
  try {
    const c = await d.connect();
    const three = [images.shapes, images.gradient, images.wide].map((p) => c.connection.sendRequest(protocol.Caption.type, caption(p)));
    three.forEach((p) => p.catch(() => {}));
    await waitFor(() => r.generates() === 1, 10_000, 'the first to run');
    await waitFor(async () => (await c.connection.sendRequest(protocol.Status.type)).queue.pending === 2, 10_000, 'two queued behind the first');
    assert.equal(r.events.filter((e) => e.startsWith('decode')).length, 1, `only the running request's image is decoded: ${r.events.join(', ')}`);
    r.open();
    await Promise.all(three);
    assert.deepEqual(
      r.events.map((e) => e.split(' ')[0]),
      ['decode', 'generate', 'decode', 'generate', 'decode', 'generate'],
    );
  } finally {
    await d.stop();
  }
});

test('past the memory budget (decoded bytes in flight) a request is refused as busy, and admitted again once memory is free', async () => {
  const dir = await tempDir('pg-budget-');
  // 1000 x 1000 decodes to 3 MB of RGB from a file of a few KB; the budget holds one of them.
  const files: string[] = [];
  for (let i = 0; i < 4; i++) {
    const f = join(dir, `big-${i}.png`);
    await writeFile(
      f,
      await sharp({ create: { width: 1000, height: 1000, channels: 3, background: { r: 40 * i, g: 80, b: 120 } } })
        .png()
        .toBuffer(),
    );
    files.push(f);
  }
  const r = recordingBackend();
  const d = await inProcessDaemon(r.backend, { memoryBudgetBytes: 4 * 1024 * 1024 });
  try {
    const c = await d.connect();
    const first = c.connection.sendRequest(protocol.Caption.type, caption(files[0]));
    await waitFor(() => r.generates() === 1, 10_000, 'the first to run');
    const rest = await Promise.allSettled(files.slice(1).map((f) => c.connection.sendRequest(protocol.Caption.type, caption(f))));
    for (const s of rest) {
      assert.equal(s.status, 'rejected');
      const e = (s as PromiseRejectedResult).reason as { code: number; message: string };
      assert.equal(e.code, ErrorCodes.Busy);
      assert.match(e.message, /the daemon is busy: the images it is working on hold 3 MiB of its 4 MiB memory budget, and .*big-\d\.png needs 3 MiB more/);
    }
    assert.equal(r.events.filter((e) => e.startsWith('decode')).length, 1, 'refused images were never decoded');
    r.open();
    await first;
    assert.equal(d.daemon.service.budget.inUse, 0);
    const again = await c.connection.sendRequest(protocol.Caption.type, caption(files[1]));
    assert.equal(again.cached, false);
  } finally {
    await d.stop();
  }
});
