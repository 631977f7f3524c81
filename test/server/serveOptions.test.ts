// `paligemma serve` options that reach the service: --memory-budget-mb sizes the memory budget
// of a spawned daemon, and a value that is not a positive integer is a usage error; --load-cache
// makes the daemon's model loads go through the load cache.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import * as protocol from '../../daemon/protocol.js';
import { ErrorCodes } from '../../daemon/protocol.js';
import { convert } from '../../daemon/engine/convert/index.js';
import { LOAD_CACHE_DIR } from '../../daemon/engine/model/load-cache.js';
import { cleanupScratch, fixtureDir, images, runCli, tempDir, testDaemon, tinyModel } from './daemon.js';

after(cleanupScratch);

test('--memory-budget-mb sets the budget that a second large image is refused against', async () => {
  const big = join(await tempDir('pg-mb-'), 'big.png');
  // Decodes to 3 MiB of RGB: more than the 1 MiB budget once another request holds some of it.
  await writeFile(
    big,
    await sharp({ create: { width: 1000, height: 1000, channels: 3, background: { r: 10, g: 80, b: 120 } } })
      .png()
      .toBuffer(),
  );
  const d = await testDaemon(['--model', await tinyModel(), '--ep', 'cpu', '--memory-budget-mb', '1']);
  try {
    const c = await d.connect();
    let streaming!: () => void;
    const started = new Promise<void>((r) => (streaming = r));
    c.connection.onNotification(protocol.TokenStream.type, () => streaming());
    // Runs until the daemon stops: it holds its image's bytes in the budget meanwhile.
    const long = c.connection.sendRequest(protocol.Generate.type, {
      image: { path: images.shapes },
      prompt: 'caption en',
      decoding: { maxNewTokens: 3000, minNewTokens: 3000 },
      streamId: 'long',
    });
    long.catch(() => {});
    await started;
    await assert.rejects(
      c.connection.sendRequest(protocol.Caption.type, { image: { path: big }, decoding: { maxNewTokens: 3 } }),
      (e: { code: number; message: string }) => e.code === ErrorCodes.Busy && /of its 1 MiB memory budget, and .*big\.png needs 3 MiB more/.test(e.message),
    );
    c.close();
  } finally {
    await d.stop();
  }
});

test('--memory-budget-mb must be a positive integer', async () => {
  const r = await runCli(['serve', '--socket', '--memory-budget-mb', '0'], { ...process.env, PALIGEMMA_RUNTIME_DIR: await tempDir('pg-mbu-') });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--memory-budget-mb must be a positive integer, got '0'/);
});

test('--load-cache: the daemon saves each graph of the model in the load cache as it loads it; without it, nothing', async (t) => {
  // The daemon inherits this process's environment: the switch must come from the flag alone.
  const saved = process.env.PALIGEMMA_LOAD_CACHE;
  delete process.env.PALIGEMMA_LOAD_CACHE;
  t.after(() => {
    if (saved !== undefined) process.env.PALIGEMMA_LOAD_CACHE = saved;
  });
  for (const flag of [true, false]) {
    const model = join(await tempDir('pg-lc-'), 'tiny');
    await convert({ input: fixtureDir, output: model });
    const d = await testDaemon(['--model', model, '--ep', 'cpu', ...(flag ? ['--load-cache'] : [])]);
    try {
      const c = await d.connect();
      await c.connection.sendRequest(protocol.Caption.type, { image: { path: images.shapes }, decoding: { maxNewTokens: 2 } });
      c.close();
    } finally {
      await d.stop();
    }
    const cache = join(model, LOAD_CACHE_DIR);
    if (flag) {
      const entries = readdirSync(cache);
      for (const graph of ['vision.onnx', 'decoder.onnx'])
        assert.ok(
          entries.some((e) => e.startsWith(`${graph}.`)),
          `${graph} in ${entries.join(', ')}`,
        );
    } else {
      assert.equal(existsSync(cache), false);
    }
  }
});
