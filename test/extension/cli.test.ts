// The vscode-free half of Convert / Download Model: the child-process runner and the reading of the
// CLI's output, against the real `paligemma download --json` and a local stand-in for the Hub.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import type { DownloadResult } from '../../daemon/protocol.js';
import { runCli } from '../../extension/cli/childProcess.js';
import { cliEnvironment, convertProgress, describeDownload, parseDownloadLine, type DownloadEvent, type ProgressStep } from '../../extension/cli/progress.js';
import { startHubServer, type HubServer } from '../engine/download/hub-server.js';

const main = fileURLToPath(new URL('../../daemon/cli/main.js', import.meta.url));
let hub: HubServer;
let dir: string;

before(async () => {
  hub = await startHubServer({
    'acme/tiny': {
      commit: 'b'.repeat(40),
      files: {
        'config.json': { content: Buffer.from('{}') },
        'onnx/vision_encoder_q4.onnx': { content: Buffer.alloc(300_000, 1), lfs: true },
        'onnx/embed_tokens_q4.onnx': { content: Buffer.alloc(200_000, 2), lfs: true },
        'onnx/decoder_model_merged_q4.onnx': { content: Buffer.alloc(100_000, 3), lfs: true },
      },
    },
    'acme/gated': {
      commit: 'd'.repeat(40),
      files: {
        'config.json': { content: Buffer.from('{}') },
        'onnx/vision_encoder.onnx': { content: Buffer.alloc(10, 1), lfs: true },
        'onnx/embed_tokens.onnx': { content: Buffer.alloc(10, 2), lfs: true },
        'onnx/decoder_model_merged.onnx': { content: Buffer.alloc(10, 3), lfs: true },
      },
      gatedAllow: ['hf_granted'],
    },
  });
  dir = mkdtempSync(join(tmpdir(), 'pg-ext-dl-'));
});
after(async () => {
  await hub.close();
  rmSync(dir, { recursive: true, force: true });
});

/** What the Download Model command does, minus the notification: run the CLI, read its lines. */
async function download(repo: string, token: string | undefined, extra: string[] = []) {
  const events: DownloadEvent[] = [];
  const steps: ProgressStep[] = [];
  const args = [main, 'download', repo, '--json', '--models-dir', dir, ...extra];
  // the parent's own HF_TOKEN must not leak into the test; the token comes from the "setting"
  const exit = await runCli({
    command: process.execPath,
    args,
    env: cliEnvironment({ ...process.env, HF_ENDPOINT: hub.url, HF_TOKEN: '' }, token),
    onLine(line, stream) {
      if (stream !== 'stdout') return;
      const e = parseDownloadLine(line);
      assert.ok(e, `every stdout line of --json is an event: ${line}`);
      events.push(e);
      if (e.kind === 'progress') steps.push(describeDownload(e.progress));
    },
  });
  return { exit, events, steps, args };
}

test('a download reports growing byte progress up to 100% and ends with the installed folder', async () => {
  const { exit, events, steps } = await download('acme/tiny', undefined);
  assert.equal(exit.code, 0, exit.stderrTail.join('\n'));
  const result = events.at(-1);
  assert.equal(result?.kind, 'result');
  const r = (result as { result: DownloadResult }).result;
  assert.equal(r.path, join(dir, 'acme--tiny--q4'));
  assert.equal(r.totalBytes, 600_002);
  const percents = steps.map((s) => s.percent).filter((p): p is number => p !== undefined);
  assert.ok(percents.length >= 3, JSON.stringify(steps));
  assert.deepEqual(
    percents,
    [...percents].sort((a, b) => a - b),
    'never goes back',
  );
  assert.equal(percents.at(-1), 100);
  assert.ok(
    steps.some((s) => /^\d.* of 600\.0 kB · onnx\/vision_encoder_q4\.onnx$/.test(s.message ?? '')),
    JSON.stringify(steps),
  );
  // again: already installed, still a result
  const again = await download('acme/tiny', undefined);
  assert.equal(again.exit.code, 0);
  assert.equal((again.events.at(-1) as { result: DownloadResult }).result.alreadyInstalled, true);
});

test("a gated repo: the CLI's 401 and 403 explanations arrive verbatim; the token travels only in the environment", async () => {
  const none = await download('acme/gated', undefined);
  assert.equal(none.exit.code, 1);
  const e401 = none.events.at(-1);
  assert.equal(e401?.kind, 'error');
  const err401 = (e401 as { error: { reason: string; message: string } }).error;
  assert.equal(err401.reason, 'unauthorized');
  assert.match(err401.message, /needs a Hugging Face token \(401\).*accept its license at .*acme\/gated/);

  const wrong = await download('acme/gated', 'hf_not_on_the_list');
  const err403 = (wrong.events.at(-1) as { error: { reason: string; message: string } }).error;
  assert.equal(err403.reason, 'gated');
  assert.match(err403.message, /restricted \(403\).*accept the license/);

  hub.requests.length = 0;
  const granted = await download('acme/gated', 'hf_granted');
  assert.equal(granted.exit.code, 0, granted.exit.stderrTail.join('\n'));
  assert.equal(granted.events.at(-1)?.kind, 'result');
  assert.ok(
    hub.requests.some((r) => r.authorization === 'Bearer hf_granted'),
    'the Hub saw the token',
  );
  assert.ok(!granted.args.some((a) => a.includes('hf_granted')), 'not on the command line');
});

test('cliEnvironment: the token (trimmed) replaces HF_TOKEN; without one the inherited HF_TOKEN stays', () => {
  assert.equal(cliEnvironment({ HF_TOKEN: 'hf_env' }, ' hf_setting ').HF_TOKEN, 'hf_setting');
  assert.equal(cliEnvironment({ HF_TOKEN: 'hf_env' }, undefined).HF_TOKEN, 'hf_env');
  assert.equal(cliEnvironment({ HF_TOKEN: 'hf_env' }, '  ').HF_TOKEN, 'hf_env');
  assert.equal(cliEnvironment({}, undefined).ELECTRON_RUN_AS_NODE, '1');
});

test('parseDownloadLine: progress, result and error objects; anything else is not an event', () => {
  assert.deepEqual(parseDownloadLine('{"progress":{"phase":"resolve","bytes":0,"total":0,"message":"resolving a/b@main"}}'), {
    kind: 'progress',
    progress: { phase: 'resolve', bytes: 0, total: 0, message: 'resolving a/b@main' },
  });
  assert.deepEqual(parseDownloadLine('{"error":{"reason":"network","code":"model-missing","message":"connection reset"}}'), {
    kind: 'error',
    error: { reason: 'network', code: 'model-missing', message: 'connection reset' },
  });
  assert.equal(parseDownloadLine('{"result":{"path":"/m/a--b"}}')?.kind, 'result');
  for (const junk of ['', 'installed a/b', '[ 10%] x', 'null', '[]', '{"progress":{}}', '{"error":{"reason":"x"}}', '{"result":{}}']) {
    assert.equal(parseDownloadLine(junk), undefined, junk);
  }
});

test('describeDownload: percent of all bytes while downloading; conversion keeps the bar full and says how far it is', () => {
  assert.deepEqual(describeDownload({ phase: 'download', bytes: 250_000_000, total: 1_000_000_000, file: 'onnx/a.onnx', fileBytes: 1, fileTotal: 2 }), {
    percent: 25,
    message: '250.0 MB of 1.00 GB · onnx/a.onnx',
  });
  assert.match(describeDownload({ phase: 'download', bytes: 1, total: 2, file: 'f', message: 'retrying in 2 s' }).message!, /\(retrying in 2 s\)$/);
  assert.deepEqual(describeDownload({ phase: 'convert', bytes: 5, total: 5, fraction: 0.42, message: 'writing decoder' }), {
    percent: 100,
    message: 'converting 42% · writing decoder',
  });
  assert.deepEqual(describeDownload({ phase: 'resolve', bytes: 0, total: 0, message: 'resolving' }), { message: 'resolving' });
});

test('convertProgress reads `[ NN%] message` lines only', () => {
  assert.deepEqual(convertProgress('[ 42%] writing decoder.onnx'), { percent: 42, message: 'writing decoder.onnx' });
  assert.deepEqual(convertProgress('[100%] done'), { percent: 100, message: 'done' });
  assert.equal(convertProgress('paligemma convert: no config.json'), undefined);
});

test('runCli: lines from both streams (a last line without newline too), exit code, cancel by the chosen signal', async () => {
  const lines: string[] = [];
  const exit = await runCli({
    command: process.execPath,
    args: ['-e', 'process.stdout.write("a\\nb"); process.stderr.write("e1\\ne2\\n"); process.exit(3)'],
    env: process.env,
    onLine: (line, stream) => lines.push(`${stream}:${line}`),
  });
  assert.equal(exit.code, 3);
  assert.equal(exit.cancelled, false);
  assert.deepEqual(
    lines.filter((l) => l.startsWith('stdout')),
    ['stdout:a', 'stdout:b'],
  );
  assert.deepEqual(exit.stderrTail, ['e1', 'e2']);

  const abort = new AbortController();
  const got: string[] = [];
  const cancelled = await runCli({
    command: process.execPath,
    args: ['-e', 'process.on("SIGINT", () => { console.log("stopping"); process.exit(130); }); console.log("ready"); setInterval(() => {}, 1000);'],
    env: process.env,
    signal: abort.signal,
    killSignal: 'SIGINT',
    onLine: (line) => {
      got.push(line);
      if (line === 'ready') abort.abort();
    },
  });
  assert.equal(cancelled.cancelled, true);
  assert.equal(cancelled.code, 130, 'the child handled SIGINT itself');
  assert.deepEqual(got, ['ready', 'stopping']);

  await assert.rejects(runCli({ command: join(dir, 'no-such-program'), args: [], env: process.env, onLine: () => {} }), { code: 'ENOENT' });
});
