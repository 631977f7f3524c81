// `paligemma caption|ocr|detect|segment|ask <image...>`, `paligemma status`, `paligemma stop`:
// thin clients of the shared daemon (started on demand). Results on stdout (text, or JSON lines
// with --json), progress and errors on stderr; exit 1 when any image failed.
import { resolve } from 'node:path';
import { type ResponseError } from 'vscode-jsonrpc/node';
import * as protocol from '../protocol.js';
import type { DetectedObject, ModelStatus, ObjectsResult, StatusResult, TextResult } from '../protocol.js';
import { type DaemonEndpoint, daemonEndpoint, probeSocket } from '../client/endpoint.js';
import { connectDaemon, DaemonUnavailableError, type DaemonConnection } from '../client/daemon.js';
import { DaemonStoppedError } from '../client/restarting.js';
import { errorMessage } from '../common/errors.js';
import { formatBytes } from '../common/format.js';
import { integerOption, runCommand, UsageError } from './args.js';
import type { Command } from './main.js';
import { TaskClient } from './taskClient.js';

type TaskName = 'caption' | 'ocr' | 'detect' | 'segment' | 'ask';

// One table for every task command, so that an option for all of them is one line here.
const taskOptions = {
  json: { type: 'boolean' },
  model: { type: 'string' },
  broker: { type: 'string' },
  lang: { type: 'string' },
  long: { type: 'boolean' },
  object: { type: 'string', multiple: true },
  question: { type: 'string', short: 'q' },
  'max-tokens': { type: 'string' },
  quiet: { type: 'boolean' },
} as const;

const usages: Record<TaskName, string> = {
  caption: 'paligemma caption <image...> [--lang en] [--long]',
  ocr: 'paligemma ocr <image...>',
  detect: 'paligemma detect <image...> --object <name> [--object <name>...]',
  segment: 'paligemma segment <image...> --object <name>',
  ask: 'paligemma ask <image...> --question <text> [--lang en]',
};
const common = '[--json] [--model <dir>] [--max-tokens <n>] [--quiet] [--broker nats://host:4222]';

function taskCommand(name: TaskName, summary: string): Command {
  const spec = { name, usage: `usage: ${usages[name]} ${common}\n`, options: taskOptions, usageOnEveryError: true };
  return {
    summary,
    run: (argv) =>
      runCommand(spec, argv, async (values, positionals) => {
        checkTaskArgs(name, positionals, values);
        const maxNewTokens = integerOption(values['max-tokens'], 'max-tokens', 1);
        const decoding = maxNewTokens === undefined ? undefined : { maxNewTokens };
        const say = (s: string) => {
          if (!values.quiet) process.stderr.write(`${s}\n`);
        };
        const fail = (message: string) => process.stderr.write(`paligemma ${name}: ${message}\n`);
        let tasks: TaskClient;
        try {
          // Through a broker, --model names a model the workers serve; locally it is a folder.
          const broker = values.broker ?? process.env.PALIGEMMA_BROKER;
          tasks = await TaskClient.open({ broker, model: values.model && !broker ? resolve(values.model) : values.model, say, onRestart: fail });
        } catch (e) {
          fail(errorMessage(e));
          return 1;
        }
        const { connection } = tasks;
        let failures = 0;
        try {
          const request = (arg: string): Promise<TextResult | ObjectsResult> => {
            const image = { path: resolve(arg) };
            switch (name) {
              case 'caption':
                return connection.sendRequest(protocol.Caption.type, { image, language: values.lang, detail: values.long ? 'long' : undefined, decoding });
              case 'ocr':
                return connection.sendRequest(protocol.Ocr.type, { image, decoding });
              case 'ask':
                return connection.sendRequest(protocol.Answer.type, { image, question: values.question!, language: values.lang, decoding });
              case 'detect':
                return connection.sendRequest(protocol.Detect.type, { image, objects: values.object!, decoding });
              case 'segment':
                return connection.sendRequest(protocol.Segment.type, { image, object: values.object![0], decoding });
            }
          };
          await tasks.each(positionals, request, (outcome, arg, i) => {
            if (positionals.length > 1) say(`[${i + 1}/${positionals.length}] ${arg}`);
            if (outcome.ok) {
              process.stdout.write(values.json ? `${JSON.stringify({ image: arg, ...outcome.value })}\n` : formatResult(arg, outcome.value, positionals.length > 1));
              return true;
            }
            failures++;
            // Every image is reported, also after the daemon has gone for good.
            const err = outcome.error as ResponseError<unknown>;
            const code = err instanceof DaemonStoppedError ? 'daemon-stopped' : err.code;
            const message = aboutImage(arg, tasks.gone ? 'the connection to the broker closed' : err.message);
            if (values.json) process.stdout.write(`${JSON.stringify({ image: arg, error: { code, message } })}\n`);
            fail(message);
            return true;
          });
        } catch (e) {
          fail(errorMessage(e));
          failures++;
        } finally {
          await tasks.close();
        }
        return failures ? 1 : 0;
      }),
  };
}

/** `message` about image `arg`, naming it once: as the person typed it, in front unless it is already in there. */
export function aboutImage(arg: string, message: string): string {
  const full = resolve(arg);
  if (message.includes(full)) return message.split(full).join(arg);
  return message.includes(arg) ? message : `${arg}: ${message}`;
}

function checkTaskArgs(name: TaskName, images: string[], v: { object?: string[]; question?: string }): void {
  if (images.length === 0) throw new UsageError('give at least one image');
  if ((name === 'detect' || name === 'segment') && !v.object?.length) throw new UsageError('give the object to look for with --object');
  if (name === 'segment' && v.object!.length > 1) throw new UsageError('segment takes one --object');
  if (name === 'ask' && !v.question) throw new UsageError('give the question with --question');
}

function formatResult(image: string, r: TextResult | ObjectsResult, prefix: boolean): string {
  const head = prefix ? `${image}: ` : '';
  if ('text' in r) return `${head}${r.text}\n`;
  if (r.objects.length === 0) return `${head}(nothing found)\n`;
  return r.objects.map((o) => `${head}${formatObject(o)}\n`).join('');
}

function formatObject(o: DetectedObject): string {
  const b = o.box;
  const n = (x: number) => Math.round(x);
  return `${o.label || '(no label)'} [${n(b.x0)}, ${n(b.y0)}, ${n(b.x1)}, ${n(b.y1)}]${o.mask ? ` mask ${o.mask.width}x${o.mask.height}` : ''}`;
}

export const caption = taskCommand('caption', 'caption images through the shared daemon');
export const ocr = taskCommand('ocr', 'read the text in images');
export const detect = taskCommand('detect', 'find objects (boxes) in images');
export const segment = taskCommand('segment', 'segment an object in images');
export const ask = taskCommand('ask', 'answer a question about images');

/** A connection to the daemon if one is running; never starts one. */
async function connectIfRunning(endpoint: DaemonEndpoint): Promise<DaemonConnection | undefined> {
  try {
    return await connectDaemon({ endpoint, start: false, timeoutMs: 3000 });
  } catch (e) {
    if (e instanceof DaemonUnavailableError) return undefined;
    throw e;
  }
}

export const status: Command = {
  summary: 'show the shared daemon: model, queue, memory, cache',
  run: (argv) =>
    runCommand({ name: 'status', usage: 'usage: paligemma status [--json]\n', options: { json: { type: 'boolean' } } }, argv, async (values) => {
      const json = values.json === true;
      const endpoint = daemonEndpoint();
      const client = await connectIfRunning(endpoint);
      if (!client) {
        process.stdout.write(json ? `${JSON.stringify({ running: false, socketPath: endpoint.socketPath })}\n` : `not running (socket ${endpoint.socketPath})\n`);
        return 3;
      }
      try {
        const s = await client.connection.sendRequest(protocol.Status.type);
        process.stdout.write(json ? `${JSON.stringify({ running: true, ...s })}\n` : formatStatus(s));
        return 0;
      } finally {
        client.close();
      }
    }),
};

function formatStatus(s: StatusResult): string {
  return [
    `daemon ${s.version}, pid ${s.pid}, up ${(s.uptimeMs / 1000).toFixed(0)} s, ${s.clients} client(s)`,
    `socket ${s.socketPath ?? '(stdio)'}`,
    `model ${formatModel(s.model)}`,
    `queue ${s.queue.running} running, ${s.queue.pending} waiting (capacity ${s.queue.capacity})`,
    `memory rss ${formatBytes(s.memory.rssBytes)}, heap ${formatBytes(s.memory.heapUsedBytes)}`,
    `cache ${s.cache.entries} results (${s.cache.hits} hits, ${s.cache.misses} misses), ${s.cache.imageEntries} images`,
    '',
  ].join('\n');
}

function formatModel(m: ModelStatus): string {
  const parts: string[] = [m.state];
  if (m.name) parts.push(m.name);
  if (m.path) parts.push(m.path);
  if (m.executionProvider) parts.push(`on ${m.executionProvider}${m.decodeLoop === 'graph' ? ' (greedy loop inside the graph)' : ''}`);
  if (m.maxBatch && m.maxBatch > 1) parts.push(`batches up to ${m.maxBatch} requests`);
  if (m.providerNotes?.length) parts.push(`auto: ${m.providerNotes.join('; ')}`);
  if (m.error) parts.push(`error: ${m.error}`);
  return parts.join(', ');
}

export const stop: Command = {
  summary: 'stop the shared daemon',
  run: (argv) =>
    runCommand({ name: 'stop', usage: 'usage: paligemma stop\n', options: {} }, argv, async () => {
      const endpoint = daemonEndpoint();
      const client = await connectIfRunning(endpoint);
      if (!client) {
        process.stdout.write('not running\n');
        return 0;
      }
      const { pid } = await client.connection.sendRequest(protocol.Stop.type);
      client.close();
      // Wait until the socket is gone, so a `stop` followed by a new command gets a fresh daemon.
      for (let i = 0; i < 100 && (await probeSocket(endpoint.socketPath).catch(() => false)); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      process.stdout.write(`stopped (pid ${pid})\n`);
      return 0;
    }),
};
