// A worker behind a single nats-server, through the broker client: the same answers as the local
// daemon, the local daemon's errors for bad payloads, the shared cache across workers, batch jobs
// in order with one job per distinct dedupe id, large images through the object store, drain.
import assert from 'node:assert/strict';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { AckPolicy, connect, headers, nanos, type NatsConnection, RequestStrategy } from 'nats';
import { ResponseError } from 'vscode-jsonrpc';
import { type BrokerConnection, connectBroker, runBrokerJobs } from '../../daemon/client/broker.js';
import { H, methodSubject } from '../../daemon/client/brokerWire.js';
import * as protocol from '../../daemon/protocol.js';
import { ErrorCodes, type TextResult } from '../../daemon/protocol.js';
import { cleanupScratch, images, runCli, tempDir, testDaemon, tinyModel, type TestDaemon, waitFor } from '../server/daemon.js';
import { type NatsNode, natsServerVersion, startNats, startWorker, stopWorker, type WorkerProcess } from './processes.js';

const version = natsServerVersion();
const skip = version ? false : 'nats-server is not installed (bash .ci/install-cluster.sh installs it)';

let nats: NatsNode[] = [];
let worker: WorkerProcess | undefined;
let broker: BrokerConnection;
let local: TestDaemon;
let raw: NatsConnection;
let model: string;
const decoding = { maxNewTokens: 6 };

before(async () => {
  if (skip) return;
  model = await tinyModel();
  nats = await startNats({ dir: await tempDir('pg-nats-'), nodes: 1 });
  worker = await startWorker(['--broker', nats[0].url, '--model', model, '--ep', 'cpu', '--ack-wait-ms', '2000']);
  broker = await connectBroker({ url: nats[0].url });
  raw = await connect({ servers: nats[0].url });
  local = await testDaemon(['--model', model, '--ep', 'cpu']);
});

after(async () => {
  await broker?.close();
  await raw?.close();
  if (worker) await stopWorker(worker);
  await local?.stop();
  for (const n of nats) await n.stop();
  await cleanupScratch();
});

async function localCaption(path: string): Promise<TextResult> {
  const c = await local.connect();
  try {
    return await c.connection.sendRequest(protocol.Caption.type, { image: { path }, decoding });
  } finally {
    c.close();
  }
}

test('status through the broker: the worker serves the model over the broker, its batch size summed over workers', { skip }, async () => {
  const st = await broker.connection.sendRequest(protocol.Status.type);
  assert.equal(st.transport, 'broker');
  assert.equal(st.model.state, 'ready');
  assert.equal(st.model.name, 'tiny-paligemma-224');
  assert.equal(st.model.maxBatch, 1);
  const ws = await broker.workers();
  assert.equal(ws.length, 1);
  assert.match(ws[0].token, /^tiny-paligemma-224-[0-9a-f]{12}$/);
});

test("captions, OCR and detection through the broker equal the local daemon's", { skip }, async () => {
  for (const path of [images.shapes, images.gradient, images.wide]) {
    const viaBroker = await broker.connection.sendRequest(protocol.Caption.type, { image: { path }, decoding });
    const viaLocal = await localCaption(path);
    assert.equal(viaBroker.text, viaLocal.text, path);
    assert.equal(viaBroker.model, viaLocal.model);
  }
  const c = await local.connect();
  try {
    const o1 = await broker.connection.sendRequest(protocol.Ocr.type, { image: { path: images.wide }, decoding });
    const o2 = await c.connection.sendRequest(protocol.Ocr.type, { image: { path: images.wide }, decoding });
    assert.equal(o1.text, o2.text);
    const d1 = await broker.connection.sendRequest(protocol.Detect.type, { image: { path: images.wide }, objects: ['circle'] });
    const d2 = await c.connection.sendRequest(protocol.Detect.type, { image: { path: images.wide }, objects: ['circle'] });
    assert.deepEqual(d1.objects, d2.objects);
  } finally {
    c.close();
  }
});

test("bad payloads get the local daemon's JSON-RPC errors, and the worker keeps serving", { skip }, async () => {
  const subject = methodSubject((await broker.workers())[0].token, 'caption');
  const ask = async (data: Uint8Array, params?: string) => {
    const h = headers();
    if (params !== undefined) h.set(H.params, params);
    const m = await raw.request(subject, data, { headers: h, timeout: 10_000 });
    return JSON.parse(new TextDecoder().decode(m.data)) as { error?: { code: number; message: string; data?: { reason: string } } };
  };
  const png = await readFile(images.shapes);
  const cases: Array<[Uint8Array, string | undefined, number, RegExp]> = [
    [new Uint8Array(), '{}', ErrorCodes.EmptyFile, /no image/],
    [png, '{not json', ErrorCodes.ParseError, /not JSON/],
    [png, '[1]', ErrorCodes.InvalidParams, /JSON object/],
    [png, JSON.stringify({ decoding: { maxNewTokens: -3 } }), ErrorCodes.InvalidParams, /maxNewTokens/],
    [png, JSON.stringify({ image: { path: '/etc/passwd' } }), ErrorCodes.InvalidParams, /payload/],
    [new TextEncoder().encode('this is not an image'), '{}', ErrorCodes.UnsupportedImage, /./],
  ];
  for (const [data, params, code, message] of cases) {
    const r = await ask(data, params);
    assert.ok(r.error, `an error for ${params}`);
    assert.equal(r.error.code, code, `${params}: ${r.error.message}`);
    assert.match(r.error.message, message);
  }
  // Through the client, the same failure is a ResponseError with that code.
  await assert.rejects(
    broker.connection.sendRequest(protocol.Caption.type, { image: { path: '/no/such/image.png' } }),
    (e: unknown) => e instanceof ResponseError && e.code === ErrorCodes.NotFound && /image not found: \/no\/such\/image\.png/.test(e.message),
  );
  await assert.rejects(
    broker.connection.sendRequest(protocol.LoadModel.type, { path: model }),
    (e: unknown) => e instanceof ResponseError && /not available through a broker/.test(e.message),
  );
  const ok = await broker.connection.sendRequest(protocol.Caption.type, { image: { path: images.shapes }, decoding });
  assert.equal(typeof ok.text, 'string');
});

test('an image larger than the inline limit goes through the object store and gets the same answer', { skip }, async () => {
  const small = await connectBroker({ url: nats[0].url, inlineLimitBytes: 100 });
  try {
    const viaStore = await small.connection.sendRequest(protocol.Caption.type, { image: { path: images.wide }, decoding: { maxNewTokens: 5 } });
    const inline = await broker.connection.sendRequest(protocol.Caption.type, { image: { path: images.wide }, decoding: { maxNewTokens: 5 } });
    assert.equal(viaStore.text, inline.text);
    const os = await raw.jetstream().views.os('paligemma-images');
    assert.ok((await os.list()).length >= 1, 'the image is in the object store');
  } finally {
    await small.close();
  }
});

test('batch jobs: results in input order, equal items answered by one job, progress to the total', { skip }, async () => {
  const paths = [images.gradient, images.shapes, images.gradient, images.wide, images.shapes];
  const items = paths.map((path) => ({ image: { path }, decoding: { maxNewTokens: 4 } }));
  const got: Array<[number, string]> = [];
  let lastProgress = { done: 0, total: 0 };
  await broker.runJobs<TextResult>(
    'caption',
    items,
    (o, i) => {
      assert.ok(o.ok, String(!o.ok && o.error));
      got.push([i, o.value.text]);
    },
    (p) => (lastProgress = p),
  );
  assert.deepEqual(
    got.map(([i]) => i),
    [0, 1, 2, 3, 4],
  );
  assert.equal(got[0][1], got[2][1]);
  assert.equal(got[1][1], got[4][1]);
  assert.deepEqual(lastProgress, { done: 5, total: 5 });
  const c = await local.connect();
  try {
    for (const [i, text] of got) {
      const l = await c.connection.sendRequest(protocol.Caption.type, { image: { path: paths[i] }, decoding: { maxNewTokens: 4 } });
      assert.equal(text, l.text);
    }
  } finally {
    c.close();
  }
  const info = await (await raw.jetstreamManager()).consumers.info('PALIGEMMA_JOBS', `workers-${(await broker.workers())[0].token}`);
  assert.equal(info.num_pending + info.num_ack_pending, 0, 'no job left behind');
});

test('a job whose image is bad fails alone, with the local error; the others are answered (runBrokerJobs, for alt-text fix)', { skip }, async () => {
  const items = [{ image: { path: images.shapes } }, { image: { data: Buffer.from('nope').toString('base64') } }, { image: { path: '/no/such.png' } }];
  const out: Array<boolean | number> = [];
  await runBrokerJobs<TextResult>(
    { url: nats[0].url },
    'caption',
    items.map((x) => ({ ...x, decoding })),
    (o) => void out.push(o.ok ? true : (o.error as ResponseError<unknown>).code),
  );
  assert.deepEqual(out, [true, ErrorCodes.UnsupportedImage, ErrorCodes.NotFound]);
});

test('a job that no worker finishes within its deliveries fails for its client with the reason', { skip }, async () => {
  // A stand-in worker for another model: announces itself like a worker, takes jobs, never finishes one.
  const token = 'stalled-000000000000';
  const jsm = await raw.jetstreamManager();
  await jsm.consumers.add('PALIGEMMA_JOBS', {
    durable_name: `workers-${token}`,
    filter_subject: `paligemma.jobs.${token}.>`,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(1000),
    max_deliver: 2,
  });
  const fake = await raw.services.add({ name: 'paligemma', version: '0.1.0', queue: token, metadata: { model: 'stalled', modelId: '0'.repeat(32), token, maxBatch: '1' } });
  let pulling = true;
  const taken: { delivery: number; seq: number }[] = [];
  const puller = (async () => {
    const c = await raw.jetstream().consumers.get('PALIGEMMA_JOBS', `workers-${token}`);
    while (pulling) {
      const m = await c.next({ expires: 1000 }).catch(() => null);
      if (m) taken.push({ delivery: m.info.deliveryCount, seq: m.info.streamSequence });
    }
  })();
  const client = await connectBroker({ url: nats[0].url, model: 'stalled' });
  try {
    const out: unknown[] = [];
    await client.runJobs('caption', [{ image: { path: images.shapes } }], (o) => void out.push(o.ok ? o.value : o.error));
    assert.equal(out.length, 1);
    assert.ok(out[0] instanceof ResponseError);
    assert.match(out[0].message, /no worker finished this job in 2 deliveries/);
    assert.deepEqual((out[0].data as { reason: string }).reason, 'max-deliveries');
    // Two deliveries of the one job, then the server gives up. (The delivery counter the stand-in
    // reads was once 1 on both, in a CI run under load; the counts and sequences are in the message.)
    assert.equal(taken.length, 2, `delivered twice, then given up: ${JSON.stringify(taken)}`);
  } finally {
    pulling = false;
    await puller;
    await client.close();
    await fake.stop();
  }
});

test('the shared cache: a fresh worker answers a known image from the KV bucket without running the model', { skip }, async () => {
  const params = { image: { path: images.gradient }, decoding: { maxNewTokens: 7 } };
  const first = await broker.connection.sendRequest(protocol.Caption.type, params);
  assert.equal(first.cached, false);
  // A new worker process has nothing in its own memory: only the shared cache can answer.
  const code = await stopWorker(worker!);
  assert.equal(code, 0, worker!.stderr());
  worker = await startWorker(['--broker', nats[0].url, '--model', model, '--ep', 'cpu']);
  const again = await connectBroker({ url: nats[0].url });
  try {
    const second = await again.connection.sendRequest(protocol.Caption.type, params);
    assert.equal(second.cached, true);
    assert.equal(second.text, first.text);
    const other = await again.connection.sendRequest(protocol.Caption.type, { ...params, decoding: { maxNewTokens: 8 } });
    assert.equal(other.cached, false, 'other decoding options are another key');
  } finally {
    await again.close();
  }
});

test("the CLI tasks take --broker or PALIGEMMA_BROKER: the local daemon's output, and clear errors", { skip }, async () => {
  const env = { ...process.env, PALIGEMMA_RUNTIME_DIR: local.runtimeDir };
  const r = await runCli(['caption', images.shapes, images.wide, '--broker', nats[0].url, '--json', '--max-tokens', '6'], env);
  assert.equal(r.code, 0, r.stderr);
  const out = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { image: string; text: string });
  assert.deepEqual(
    out.map((o) => o.image),
    [images.shapes, images.wide],
  );
  for (const o of out) assert.equal(o.text, (await localCaption(o.image)).text);
  const viaEnv = await runCli(['ocr', images.shapes, '--json', '--max-tokens', '6', '--model', 'no-such-model'], { ...env, PALIGEMMA_BROKER: nats[0].url });
  assert.equal(viaEnv.code, 1);
  assert.match(viaEnv.stderr, /no worker on nats:\/\/127\.0\.0\.1:\d+ serves the model 'no-such-model' \(served: tiny-paligemma-224\)/);
  const down = await runCli(['caption', images.shapes, '--broker', 'nats://127.0.0.1:1'], env);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /cannot reach the NATS broker at nats:\/\/127\.0\.0\.1:1 \(connection refused\): is nats-server running there\?/);
});

test('alt-text fix --broker describes each image as a durable job and writes what the local daemon writes', { skip }, async () => {
  const page = '# Page\n\n![](shapes.png)\n\n<img src="wide.jpg">\n\n![](shapes.png "again")\n';
  const folder = async () => {
    const docs = await tempDir('pg-docs-');
    await copyFile(images.shapes, join(docs, 'shapes.png'));
    await copyFile(images.wide, join(docs, 'wide.jpg'));
    await writeFile(join(docs, 'page.md'), page);
    return docs;
  };
  const env = { ...process.env, PALIGEMMA_RUNTIME_DIR: local.runtimeDir };
  const fix = (docs: string, via: string[]) => runCli(['alt-text', 'fix', join(docs, 'page.md'), ...via, '--max-tokens', '6', '--format', 'json', '--quiet'], env);
  const [viaBroker, viaDaemon] = [await folder(), await folder()];
  const r = await fix(viaBroker, ['--broker', nats[0].url]);
  const report = JSON.parse(r.stdout) as { results: { src: string; status: string }[] };
  assert.deepEqual(
    report.results.map((x) => [x.src, x.status]),
    [
      ['shapes.png', 'fixed'],
      ['wide.jpg', 'fixed'],
      ['shapes.png', 'fixed'],
    ],
    r.stderr,
  );
  assert.equal((await fix(viaDaemon, ['--model', model])).code, 0);
  const written = await readFile(join(viaBroker, 'page.md'), 'utf8');
  assert.notEqual(written, page);
  assert.equal(written, await readFile(join(viaDaemon, 'page.md'), 'utf8'));
});

test('SIGTERM drains: a request in flight is still answered, then the worker exits 0', { skip }, async () => {
  const pending = broker.connection.sendRequest(protocol.Caption.type, { image: { path: images.wide }, decoding: { maxNewTokens: 128, minNewTokens: 128 } });
  // SIGTERM once the worker has the request (its service stats count it as in flight).
  // One worker: take its first answer instead of waiting out the discovery window.
  const svc = raw.services.client({ strategy: RequestStrategy.Count, maxMessages: 1, maxWait: 1000 });
  await waitFor(
    async () => {
      for await (const s of await svc.stats('paligemma')) if ((s.endpoints?.[0]?.data as { inFlight?: number } | undefined)?.inFlight) return true;
      return false;
    },
    10_000,
    'the request to reach the worker',
  );
  const exit = stopWorker(worker!);
  const r = await pending;
  assert.equal(typeof r.text, 'string');
  assert.equal(await exit, 0);
  assert.match(worker!.stderr(), /"msg":"worker draining"[^\n]*"inFlight":1/);
  assert.match(worker!.stderr(), /worker drained/);
  worker = undefined;
});
