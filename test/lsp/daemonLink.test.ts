// The language server's line to the model: with a broker configured the image tasks go to the
// worker pool, everything else (and everything without a broker) to the local daemon.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RequestType } from 'vscode-jsonrpc';
import { DaemonLink, type PoolConnection } from '../../daemon/lsp/daemonLink.js';
import { readSettings } from '../../daemon/lsp/settings.js';
import * as P from '../../daemon/protocol.js';

function fakePool(log: string[], url: string): PoolConnection {
  const pool = {
    gone: false,
    connection: {
      async sendRequest<Params, Result>(type: RequestType<Params, Result, void>, params: Params): Promise<Result> {
        log.push(`${url} ${type.method} ${JSON.stringify(params)}`);
        return { text: `from ${url}` } as Result;
      },
    },
    close: () => {
      pool.gone = true;
      log.push(`closed ${url}`);
    },
  };
  return pool;
}

test('with a broker the image tasks go to its pool; a new URL, or a closed connection, connects again', async () => {
  const log: string[] = [];
  let settings = readSettings({ broker: 'nats://a:4222' });
  const pools: PoolConnection[] = [];
  const link = new DaemonLink(() => settings, {
    connect: async () => {
      throw new Error('the local daemon must not be used for a task the pool serves');
    },
    connectPool: async (url) => {
      const p = fakePool(log, url);
      pools.push(p);
      return p;
    },
  });
  const caption = { image: { path: '/img/a.png' } };
  assert.deepEqual(await link.request(P.Caption.type, caption, { start: true }), { text: 'from nats://a:4222' });
  await link.request(P.Ocr.type, caption, { start: true });
  assert.equal(pools.length, 1, 'one connection for both requests');
  (pools[0] as { gone: boolean }).gone = true;
  await link.request(P.Caption.type, caption, { start: true });
  assert.equal(pools.length, 2, 'a closed connection is made again');
  settings = readSettings({ broker: 'nats://b:4222' });
  assert.deepEqual(await link.request(P.Caption.type, caption, { start: true }), { text: 'from nats://b:4222' });
  assert.deepEqual(log, [
    `nats://a:4222 ${P.Caption.method} ${JSON.stringify(caption)}`,
    `nats://a:4222 ${P.Ocr.method} ${JSON.stringify(caption)}`,
    `nats://a:4222 ${P.Caption.method} ${JSON.stringify(caption)}`,
    'closed nats://a:4222',
    `nats://b:4222 ${P.Caption.method} ${JSON.stringify(caption)}`,
  ]);
  link.dispose();
});

test('without a broker nothing connects to a pool: requests go to the local daemon', async () => {
  const link = new DaemonLink(() => readSettings({}), {
    connect: async () => {
      throw new Error('no daemon here');
    },
    connectPool: async () => {
      throw new Error('no pool may be used without a broker');
    },
  });
  await assert.rejects(link.request(P.Caption.type, { image: { path: '/img/a.png' } }, { start: true }), /no daemon here/);
});
