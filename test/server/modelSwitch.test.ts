// Switching models: a manifest that disagrees with its graphs is refused at load with the mismatch
// named, and a failed load keeps the warm model serving (status tells both); a good one is loaded
// beside the warm model and swapped in. In-process daemon, real tiny model.
import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as protocol from '../../daemon/protocol.js';
import { ErrorCodes } from '../../daemon/protocol.js';
import type { Backend } from '../../daemon/server/backend.js';
import { engineBackend } from '../../daemon/server/engineBackend.js';
import { cleanupScratch, images, inProcessDaemon, tempDir, tinyModel } from './daemon.js';

after(cleanupScratch);

function countingBackend() {
  const real = engineBackend();
  const counts = { loads: 0, disposed: [] as string[] };
  const backend: Backend = {
    ...real,
    async load(path, o) {
      counts.loads++;
      const model = await real.load(path, o);
      return {
        get info() {
          return model.info;
        },
        generate: (req) => model.generate(req),
        dispose: async () => {
          counts.disposed.push(path);
          await model.dispose();
        },
      };
    },
  };
  return { backend, counts };
}

async function copyWithManifest(model: string, to: string, edit: (m: Record<string, any>) => void): Promise<string> {
  await cp(model, to, { recursive: true });
  const m = JSON.parse(await readFile(join(to, 'manifest.json'), 'utf8'));
  edit(m);
  await writeFile(join(to, 'manifest.json'), JSON.stringify(m, null, 2));
  return to;
}

test('a manifest that disagrees with its graphs is refused at load; the warm model keeps serving and status tells both; a good model is swapped in', async () => {
  const model = await tinyModel();
  const dir = await tempDir('pg-switch-');
  const wrongKv = await copyWithManifest(model, join(dir, 'wrong-kv'), (m) => (m.kvDtype = 'float16'));
  const wrongHidden = await copyWithManifest(model, join(dir, 'wrong-hidden'), (m) => (m.text.headDim = 8));
  const good = await copyWithManifest(model, join(dir, 'good'), (m) => (m.name = 'tiny-copy'));
  const { backend, counts } = countingBackend();
  const d = await inProcessDaemon(backend);
  try {
    const c = await d.connect();
    const caption = (prompt: string) => c.connection.sendRequest(protocol.Generate.type, { image: { path: images.shapes }, prompt, decoding: { maxNewTokens: 3 } });
    await caption('caption en');
    assert.equal(counts.loads, 1);

    await assert.rejects(c.connection.sendRequest(protocol.LoadModel.type, { path: wrongKv }), (e: { code: number; message: string }) => {
      assert.equal(e.code, ErrorCodes.ModelInvalid);
      assert.match(e.message, /decoder\.onnx: input past_key\.0 is float32 \[batch, 1, past_len, 16\], but manifest\.json describes float16 \[\*, 1, \*, 16\]/);
      return true;
    });
    await assert.rejects(c.connection.sendRequest(protocol.LoadModel.type, { path: wrongHidden }), /past_key\.0 .* describes float32 \[\*, 1, \*, 8\]/);
    assert.deepEqual(counts.disposed, [], 'the warm model was never let go');
    let s = await c.connection.sendRequest(protocol.Status.type);
    assert.equal(s.model.state, 'ready');
    assert.equal(s.model.path, model);
    assert.equal(s.model.failedLoad?.path, wrongHidden);
    assert.match(s.model.failedLoad?.error ?? '', /does not match its graphs/);
    // ...and it answers without loading again.
    const loads = counts.loads;
    await caption('caption de');
    assert.equal(counts.loads, loads);

    const switched = await c.connection.sendRequest(protocol.LoadModel.type, { path: good });
    assert.equal(switched.state, 'ready');
    assert.equal(switched.name, 'tiny-copy');
    assert.equal(switched.failedLoad, undefined);
    assert.deepEqual(counts.disposed, [model], 'the old model was released after the swap');
    s = await c.connection.sendRequest(protocol.Status.type);
    assert.equal(s.model.path, good);
  } finally {
    await d.stop();
  }
});
