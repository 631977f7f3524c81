// `paligemma caption|ocr|detect|segment|ask <image...>`, `paligemma status`, `paligemma stop`:
// thin clients of the shared daemon (started on demand). Results on stdout (text, or JSON lines
// with --json), progress and errors on stderr; exit 1 when any image failed.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type ResponseError } from 'vscode-jsonrpc/node';
import * as protocol from '../protocol.js';
import type { DetectedObject, ModelStatus, ObjectsResult, StatusResult, TextResult } from '../protocol.js';
import { type DaemonEndpoint, daemonEndpoint, probeSocket } from '../client/endpoint.js';
import { connectDaemon, DaemonUnavailableError, type DaemonConnection } from '../client/daemon.js';
import { inFlightFor, inOrder } from '../client/inOrder.js';
import { DaemonStoppedError, RestartingDaemonClient } from '../client/restarting.js';
import { brokerFromEnv, connectBroker, type RequestConnection } from '../client/broker.js';
import type { Command } from './main.js';

type TaskName = 'caption' | 'ocr' | 'detect' | 'segment' | 'ask';

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
  help: { type: 'boolean', short: 'h' },
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
  return {
    summary,
    async run(argv) {
      let parsed;
      try {
        parsed = parseArgs({ args: argv, options: taskOptions, allowPositionals: true });
      } catch (e) {
        process.stderr.write(`paligemma ${name}: ${(e as Error).message}\nusage: ${usages[name]} ${common}\n`);
        return 2;
      }
      const { values, positionals } = parsed;
      if (values.help) {
        process.stdout.write(`usage: ${usages[name]} ${common}\n`);
        return 0;
      }
      const problem = checkTaskArgs(name, positionals, values);
      if (problem) {
        process.stderr.write(`paligemma ${name}: ${problem}\nusage: ${usages[name]} ${common}\n`);
        return 2;
      }
      const maxNewTokens = values['max-tokens'] === undefined ? undefined : Number(values['max-tokens']);
      const decoding = maxNewTokens === undefined ? undefined : { maxNewTokens };
      const say = (s: string) => {
        if (!values.quiet) process.stderr.write(`${s}\n`);
      };
      // Through a broker, --model names a model the workers serve; locally it is a folder.
      const broker = values.broker ?? process.env.PALIGEMMA_BROKER;
      const model = values.model && !broker ? resolve(values.model) : undefined;
      let connection: RequestConnection;
      let close: () => unknown;
      let brokerGone = () => false;
      try {
        if (broker) {
          const b = await connectBroker({ url: broker, model: values.model, ...brokerFromEnv() });
          connection = b.connection;
          close = () => b.close();
          brokerGone = () => b.gone;
        } else {
          // A daemon that dies mid-way is started again once, and the images in flight are asked again.
          const d = await RestartingDaemonClient.connect({
          serveArgs: model ? ['--model', model] : [],
          onStarting: (ep) => say(`starting the PaliGemma daemon (log: ${ep.logPath})`),
          onRestart: (message) => process.stderr.write(`paligemma ${name}: ${message}\n`),
          });
          connection = {
            sendRequest: d.request.bind(d),
            // Subscriptions last as long as the client (and move with it to a restarted daemon).
            onNotification: (type, handler) => {
              d.onNotification(type, handler);
              return { dispose: () => {} };
            },
          };
          close = () => d.close();
        }
      } catch (e) {
        process.stderr.write(`paligemma ${name}: ${(e as Error).message}\n`);
        return 1;
      }
      connection.onNotification(protocol.Progress.type, (p) => say(`${p.kind}: ${p.message}`));
      let failures = 0;
      try {
        const st = await connection.sendRequest(protocol.Status.type);
        if (model && st.model.path !== model) await connection.sendRequest(protocol.LoadModel.type, { path: model });
        // Enough in flight for the daemon's batches; until the model has loaded, one.
        let window = st.model.state === 'ready' && (!model || st.model.path === model) ? inFlightFor(st.model.maxBatch) : 0;
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
        const ask = async (arg: string, i: number): Promise<TextResult | ObjectsResult> => {
          try {
            return await request(arg);
          } finally {
            if (window === 0 && i === 0) {
              window = await connection.sendRequest(protocol.Status.type).then((s) => inFlightFor(s.model.maxBatch), () => 1);
            }
          }
        };
        await inOrder(positionals, () => window || 1, ask, (outcome, arg, i) => {
          if (positionals.length > 1) say(`[${i + 1}/${positionals.length}] ${arg}`);
          if (outcome.ok) {
            process.stdout.write(values.json ? `${JSON.stringify({ image: arg, ...outcome.value })}\n` : formatResult(arg, outcome.value, positionals.length > 1));
            return true;
          }
          failures++;
          // Every image is reported, also after the daemon has gone for good.
          const err = outcome.error as ResponseError<unknown>;
          const code = err instanceof DaemonStoppedError ? 'daemon-stopped' : err.code;
          const message = aboutImage(arg, brokerGone() ? `the connection to the broker ${broker} closed` : err.message);
          if (values.json) process.stdout.write(`${JSON.stringify({ image: arg, error: { code, message } })}\n`);
          process.stderr.write(`paligemma ${name}: ${message}\n`);
          return true;
        });
      } catch (e) {
        process.stderr.write(`paligemma ${name}: ${(e as Error).message}\n`);
        failures++;
      } finally {
        await close();
      }
      return failures ? 1 : 0;
    },
  };
}

/** `message` about image `arg`, naming it once: as the person typed it, in front unless it is already in there. */
export function aboutImage(arg: string, message: string): string {
  const full = resolve(arg);
  if (message.includes(full)) return message.split(full).join(arg);
  return message.includes(arg) ? message : `${arg}: ${message}`;
}

function checkTaskArgs(name: TaskName, images: string[], v: { object?: string[]; question?: string; 'max-tokens'?: string }): string | undefined {
  if (images.length === 0) return 'give at least one image';
  if ((name === 'detect' || name === 'segment') && !v.object?.length) return 'give the object to look for with --object';
  if (name === 'segment' && v.object!.length > 1) return 'segment takes one --object';
  if (name === 'ask' && !v.question) return 'give the question with --question';
  const mt = v['max-tokens'];
  if (mt !== undefined && !(Number.isInteger(Number(mt)) && Number(mt) > 0)) return '--max-tokens must be a positive integer';
  return undefined;
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
  return `${o.label || "(no label)"} [${n(b.x0)}, ${n(b.y0)}, ${n(b.x1)}, ${n(b.y1)}]${o.mask ? ` mask ${o.mask.width}x${o.mask.height}` : ''}`;
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
  async run(argv) {
    const json = argv.includes('--json');
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
  },
};

function formatStatus(s: StatusResult): string {
  const mb = (b: number) => `${(b / 1048576).toFixed(1)} MB`;
  return [
    `daemon ${s.version}, pid ${s.pid}, up ${(s.uptimeMs / 1000).toFixed(0)} s, ${s.clients} client(s)`,
    `socket ${s.socketPath ?? '(stdio)'}`,
    `model ${formatModel(s.model)}`,
    `queue ${s.queue.running} running, ${s.queue.pending} waiting (capacity ${s.queue.capacity})`,
    `memory rss ${mb(s.memory.rssBytes)}, heap ${mb(s.memory.heapUsedBytes)}`,
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
  async run() {
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
  },
};
