// A client of the worker pool behind a NATS broker, with the local daemon connection's request
// shape (`connection.sendRequest(protocol.Caption.type, params)`, failures as ResponseError with the
// daemon's codes), so the CLI and the extension choose a transport and keep the rest. Interactive
// requests go by request/reply to one worker of the model's queue group; `runJobs` puts many images
// on the durable job stream and hands the results back in input order as they complete.
import { readFile, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import {
  AckPolicy,
  connect,
  type Consumer,
  type ConsumerMessages,
  headers as natsHeaders,
  type JetStreamClient,
  type MsgHdrs,
  type NatsConnection,
  NatsError,
  nuid,
  RequestStrategy,
  type ObjectStore,
  nanos,
} from 'nats';
import { type Disposable, type NotificationType, ResponseError, type RequestType, type RequestType0 } from 'vscode-jsonrpc';
import * as protocol from '../protocol.js';
import { ErrorCodes, type ImageRef, type StatusResult } from '../protocol.js';
import {
  brokerMethodOf,
  type BrokerAuthOptions,
  consumerName,
  DEFAULT_STREAMS,
  dedupeId,
  describeConnectError,
  ensureStreams,
  H,
  HEADER_ROOM,
  IMAGES_BUCKET,
  type ImageMethod,
  jobSubject,
  JOBS_STREAM,
  methodSubject,
  natsConnectOptions,
  publishWithRetry,
  type ReplyBody,
  replicasFor,
  resultSubject,
  RESULTS_STREAM,
  SERVICE_NAME,
} from './brokerWire.js';
import type { Settled } from './inOrder.js';

export interface BrokerConnectOptions extends BrokerAuthOptions {
  /** `nats://host:4222`, several separated by commas. */
  url: string;
  /** The model to use: its name, id or subject token; default the only one the workers serve. */
  model?: string;
  /** How long one interactive request may take, queueing included (default 120 s). */
  requestTimeoutMs?: number;
  /** Images larger than this go through the object store (default: the server's max_payload less header room). */
  inlineLimitBytes?: number;
  /** Largest image this client sends (default 50 MiB, the workers' default limit). */
  maxImageBytes?: number;
}

export interface BrokerWorker {
  id: string;
  model: string;
  modelId: string;
  token: string;
  maxBatch: number;
  executionProvider: string;
}

export interface JobProgress {
  done: number;
  total: number;
}

/** The part of a vscode-jsonrpc MessageConnection that task clients use; both transports have it. */
export interface RequestConnection {
  sendRequest<R, E>(type: RequestType0<R, E>): Promise<R>;
  sendRequest<P, R, E>(type: RequestType<P, R, E>, params: P): Promise<R>;
  onNotification<P>(type: NotificationType<P>, handler: (params: P) => void): Disposable;
}

/** The daemon methods a broker cannot serve: workers choose their model when they start. */
const NOT_ON_BROKER = new Set<string>([protocol.LoadModel.method, protocol.UnloadModel.method, protocol.Stop.method, protocol.Generate.method]);

export async function connectBroker(o: BrokerConnectOptions): Promise<BrokerConnection> {
  let nc: NatsConnection;
  try {
    nc = await connect(await natsConnectOptions(o.url, o, `paligemma-client-${process.pid}`));
  } catch (e) {
    throw new Error(e instanceof NatsError ? describeConnectError(o.url, e) : (e as Error).message, { cause: e });
  }
  return new BrokerConnection(nc, o);
}

export class BrokerConnection {
  private chosen: BrokerWorker | undefined;
  private images: Promise<ObjectStore> | undefined;
  private readonly js: JetStreamClient;

  /** The local daemon connection's request shape (the part the CLI uses). */
  readonly connection: RequestConnection = {
    sendRequest: <R>(type: { method: string }, params?: unknown): Promise<R> => this.request<R>(type.method, params),
    // Workers load their model when they start: no progress or model-change notifications here.
    onNotification: () => ({ dispose: () => {} }),
  };

  constructor(
    readonly nc: NatsConnection,
    private readonly o: BrokerConnectOptions,
  ) {
    this.js = nc.jetstream();
  }

  /** True once the broker connection is closed for good. */
  get gone(): boolean {
    return this.nc.isClosed();
  }

  close(): Promise<void> {
    return this.nc.close().catch(() => {});
  }

  /** Every worker that answers discovery within `waitMs`, whatever its model. */
  async workers(waitMs = 500): Promise<BrokerWorker[]> {
    const out: BrokerWorker[] = [];
    const infos = await this.nc.services.client({ strategy: RequestStrategy.Timer, maxWait: waitMs }).info(SERVICE_NAME);
    for await (const i of infos) {
      const m = i.metadata ?? {};
      if (!m.token) continue;
      out.push({ id: i.id, model: m.model ?? '', modelId: m.modelId ?? '', token: m.token, maxBatch: Number(m.maxBatch) || 1, executionProvider: m.executionProvider ?? '' });
    }
    return out;
  }

  /** The model requests go to, found by discovery once (and again after its workers vanished). */
  async model(): Promise<{ model: BrokerWorker; workers: BrokerWorker[] }> {
    const all = await this.workers();
    const want = this.o.model;
    const matching = all.filter((w) => !want || w.model === want || w.modelId === want || w.token === want || w.modelId.startsWith(want));
    const tokens = [...new Set(matching.map((w) => w.token))];
    if (tokens.length === 0) {
      const served = [...new Set(all.map((w) => w.model))];
      throw new ResponseError(
        ErrorCodes.ModelMissing,
        want && served.length
          ? `no worker on ${this.o.url} serves the model '${want}' (served: ${served.join(', ')})`
          : `no PaliGemma worker answers on ${this.o.url}: start one with \`paligemma worker --broker ${this.o.url} --model <dir>\``,
        { reason: 'no-workers' },
      );
    }
    if (tokens.length > 1) {
      throw new ResponseError(ErrorCodes.InvalidParams, `the workers on ${this.o.url} serve several models (${tokens.join(', ')}): choose one with --model <name>`, {
        reason: 'several-models',
      });
    }
    const workers = matching.filter((w) => w.token === tokens[0]);
    this.chosen = workers[0];
    return { model: workers[0], workers };
  }

  private async request<R>(rpcMethod: string, params: unknown): Promise<R> {
    if (NOT_ON_BROKER.has(rpcMethod)) {
      throw new ResponseError(
        ErrorCodes.InvalidRequest,
        `'${rpcMethod}' is not available through a broker: workers choose their model when they start (paligemma worker --model <dir>)`,
      );
    }
    const method = brokerMethodOf(rpcMethod);
    if (!method) throw new ResponseError(ErrorCodes.MethodNotFound, `unknown method '${rpcMethod}'`);
    if (method === 'status') {
      const { model, workers } = await this.model();
      const st = await this.call<StatusResult>(methodSubject(model.token, 'status'), new Uint8Array(), undefined);
      // The pool's batch capacity, so clients keep every worker busy (inFlightFor).
      st.model.maxBatch = workers.reduce((n, w) => n + w.maxBatch, 0);
      return st as R;
    }
    const model = this.chosen ?? (await this.model()).model;
    const { data, headers } = await this.encode(method, params as Record<string, unknown>);
    try {
      return await this.call<R>(methodSubject(model.token, method), data, headers);
    } catch (e) {
      // Its workers went away (or were replaced by a new build): look again once.
      if (!(e instanceof ResponseError && e.data && (e.data as { reason?: string }).reason === 'no-workers')) throw e;
      this.chosen = undefined;
      const again = (await this.model()).model;
      return this.call<R>(methodSubject(again.token, method), data, headers);
    }
  }

  private async call<R>(subject: string, data: Uint8Array, headers: MsgHdrs | undefined): Promise<R> {
    const timeout = this.o.requestTimeoutMs ?? 120_000;
    let msg;
    try {
      msg = await this.nc.request(subject, data, { timeout, headers });
    } catch (e) {
      if (e instanceof NatsError && e.code === '503') {
        throw new ResponseError(ErrorCodes.ModelMissing, `no PaliGemma worker answers on ${subject}`, { reason: 'no-workers' });
      }
      if (e instanceof NatsError && e.code === 'TIMEOUT') {
        throw new ResponseError(ErrorCodes.Busy, `no answer from the workers within ${timeout / 1000} s (${subject})`, { reason: 'timeout' });
      }
      throw new ResponseError(ErrorCodes.InternalError, `the broker request failed: ${(e as Error).message}`, { reason: 'broker' });
    }
    return unwrap<R>(msg.data);
  }

  /** Params in a header, the image as the payload (or, when too large for one message, in the object store). */
  async encode(method: ImageMethod, params: Record<string, unknown>): Promise<{ data: Uint8Array; headers: MsgHdrs; sha256: string }> {
    if (!params || typeof params !== 'object' || !params.image) throw new ResponseError(ErrorCodes.InvalidParams, `${method}: params must name an image`);
    const { image, ...rest } = params as { image: ImageRef };
    const bytes = await this.imageBytes(image);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const headers = natsHeaders();
    headers.set(H.params, JSON.stringify(rest));
    const inline = this.o.inlineLimitBytes ?? this.nc.info!.max_payload - HEADER_ROOM;
    if (bytes.length <= inline) return { data: bytes, headers, sha256 };
    const store = await this.imageStore();
    if (!(await store.info(sha256))) await store.putBlob({ name: sha256 }, bytes);
    headers.set(H.imageObject, sha256);
    return { data: new Uint8Array(), headers, sha256 };
  }

  private imageStore(): Promise<ObjectStore> {
    const replicas = replicasFor(this.nc.info?.connect_urls);
    this.images ??= this.js.views.os(IMAGES_BUCKET, { replicas, ttl: nanos(DEFAULT_STREAMS.resultsMaxAgeMs) });
    return this.images;
  }

  private async imageBytes(ref: ImageRef): Promise<Uint8Array> {
    const max = this.o.maxImageBytes ?? 50 * 1024 * 1024;
    if (!('path' in ref)) {
      const b = Buffer.from(ref.data, 'base64');
      if (b.length === 0) throw new ResponseError(ErrorCodes.EmptyFile, 'inline image is empty', { reason: 'empty-file' });
      if (b.length > max) throw new ResponseError(ErrorCodes.FileTooLarge, `inline image is ${b.length} bytes; the limit is ${max}`, { reason: 'file-too-large' });
      return b;
    }
    const st = await stat(ref.path).catch(() => undefined);
    if (!st) throw new ResponseError(ErrorCodes.NotFound, `image not found: ${ref.path}`, { reason: 'not-found' });
    if (!st.isFile()) throw new ResponseError(ErrorCodes.NotAFile, `not a file: ${ref.path}`, { reason: 'not-a-file' });
    if (st.size === 0) throw new ResponseError(ErrorCodes.EmptyFile, `image file is empty: ${ref.path}`, { reason: 'empty-file' });
    if (st.size > max) throw new ResponseError(ErrorCodes.FileTooLarge, `image file is ${st.size} bytes; the limit is ${max}: ${ref.path}`, { reason: 'file-too-large' });
    return readFile(ref.path);
  }

  /**
   * Many images as durable batch jobs: each distinct job (by dedupe id) is enqueued once, workers
   * pull them, and `onResult` gets every item's outcome in input order as results arrive (equal
   * items share one job and one result). A job that no worker could finish within its deliveries
   * fails with the reason. Resolves when every item has been handed over, or `onResult` returned false.
   */
  async runJobs<R>(
    method: ImageMethod,
    items: readonly Record<string, unknown>[],
    onResult: (outcome: Settled<R>, index: number) => boolean | void,
    onProgress?: (p: JobProgress) => void,
  ): Promise<void> {
    if (items.length === 0) return;
    const { model } = await this.model();
    const jsm = await this.nc.jetstreamManager();
    await ensureStreams(jsm, { ...DEFAULT_STREAMS, replicas: replicasFor(this.nc.info?.connect_urls) });
    const batch = nuid.next();
    const outcomes: Array<Settled<R> | undefined> = new Array(items.length);
    const groups = new Map<string, number[]>();
    const bySeq = new Map<number, string>();
    let next = 0;
    let settledCount = 0;
    let stopped = false;
    let finish!: () => void;
    const finished = new Promise<void>((r) => (finish = r));

    const flush = () => {
      onProgress?.({ done: settledCount, total: items.length });
      while (!stopped && next < items.length && outcomes[next]) {
        if (onResult(outcomes[next]!, next) === false) stopped = true;
        next++;
      }
      if (stopped || next === items.length) finish();
    };
    const settle = (id: string, outcome: Settled<R>) => {
      const indices = groups.get(id);
      if (!indices || outcomes[indices[0]]) return; // a duplicate result: already handed over
      for (const i of indices) outcomes[i] = outcome;
      settledCount += indices.length;
      flush();
    };

    // Listen before publishing: a cached job's result can come back at once. The batch's consumer
    // is replicated like the stream, so it survives a server going away, and it is pulled in short
    // rounds, each of which finds the consumer's current leader.
    const replicas = replicasFor(this.nc.info?.connect_urls);
    const durable = `results-${batch}`;
    await jsm.consumers.add(RESULTS_STREAM, {
      durable_name: durable,
      filter_subject: resultSubject(batch),
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(10_000),
      num_replicas: replicas,
      // Removed by the server if this client dies without deleting it.
      inactive_threshold: nanos(DEFAULT_STREAMS.resultsMaxAgeMs),
    });
    let collecting = true;
    let round: ConsumerMessages | undefined;
    const collected = (async () => {
      let consumer: Consumer | undefined;
      while (collecting) {
        try {
          consumer ??= await this.js.consumers.get(RESULTS_STREAM, durable);
          round = await consumer.fetch({ max_messages: 256, expires: 1000 });
          for await (const m of round) {
            const id = m.headers?.get(H.dedupe) ?? '';
            try {
              settle(id, { ok: true, value: unwrap<R>(m.data) });
            } catch (error) {
              settle(id, { ok: false, error });
            }
            m.ack();
            if (!collecting) round.stop();
          }
        } catch {
          if (collecting) await new Promise((r) => setTimeout(r, 250));
        }
      }
    })();
    // A job every delivery of which failed to finish (workers dying on it) is never answered by a
    // worker; the server says so in an advisory.
    const advisories = this.nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${JOBS_STREAM}.${consumerName(model.token)}`, {
      callback: (_err, m) => {
        const a = (() => {
          try {
            return m.json<{ stream_seq: number; deliveries: number }>();
          } catch {
            return undefined;
          }
        })();
        const id = a && bySeq.get(a.stream_seq);
        if (id) {
          const error = new ResponseError(
            ErrorCodes.InternalError,
            `no worker finished this job in ${a.deliveries} deliveries (each worker stopped, stalled or lost its connection while running it)`,
            {
              reason: 'max-deliveries',
            },
          );
          settle(id, { ok: false, error });
        }
      },
    });

    try {
      const limit = 32;
      const publishing = new Set<Promise<void>>();
      for (let i = 0; i < items.length && !stopped; i++) {
        let encoded;
        try {
          encoded = await this.encode(method, items[i]);
        } catch (error) {
          const id = `local:${i}`;
          groups.set(id, [i]);
          settle(id, { ok: false, error });
          continue;
        }
        const { data, headers, sha256 } = encoded;
        const id = dedupeId(model.modelId, sha256, method, items[i]);
        const group = groups.get(id);
        if (group) {
          group.push(i);
          if (outcomes[group[0]]) {
            outcomes[i] = outcomes[group[0]];
            settledCount++;
            flush();
          }
          continue;
        }
        groups.set(id, [i]);
        headers.set(H.dedupe, id);
        headers.set(H.replyTo, resultSubject(batch));
        const p = publishWithRetry(this.js, jobSubject(model.token, method), data, { headers, msgID: `${batch}:${id}` }).then(
          (seq) => void bySeq.set(seq, id),
          (error: unknown) =>
            settle(id, { ok: false, error: new ResponseError(ErrorCodes.InternalError, `cannot enqueue the job: ${(error as Error).message}`, { reason: 'broker' }) }),
        );
        publishing.add(p);
        void p.finally(() => publishing.delete(p));
        if (publishing.size >= limit) await Promise.race(publishing);
      }
      await Promise.all(publishing);
      await finished;
    } finally {
      collecting = false;
      round?.stop();
      advisories.unsubscribe();
      await collected;
      await jsm.consumers.delete(RESULTS_STREAM, durable).catch(() => {});
      await jsm.streams.purge(RESULTS_STREAM, { filter: resultSubject(batch) }).catch(() => {});
    }
  }
}

/** A worker's reply body: the result, or its error as the local daemon's ResponseError. */
function unwrap<R>(data: Uint8Array): R {
  let body: ReplyBody<R>;
  try {
    body = JSON.parse(new TextDecoder().decode(data)) as ReplyBody<R>;
  } catch {
    throw new ResponseError(ErrorCodes.InternalError, 'a worker answered with something other than JSON', { reason: 'internal' });
  }
  if ('error' in body) throw new ResponseError(body.error.code, body.error.message, body.error.data);
  return body.result;
}

/** `PALIGEMMA_BROKER` and friends: how the CLI finds and authenticates to a broker without flags. */
export function brokerFromEnv(env: NodeJS.ProcessEnv = process.env): Omit<BrokerConnectOptions, 'url'> {
  return {
    creds: env.PALIGEMMA_BROKER_CREDS || undefined,
    tokenFile: env.PALIGEMMA_BROKER_TOKEN_FILE || undefined,
    tlsCa: env.PALIGEMMA_BROKER_TLS_CA || undefined,
    tlsCert: env.PALIGEMMA_BROKER_TLS_CERT || undefined,
    tlsKey: env.PALIGEMMA_BROKER_TLS_KEY || undefined,
  };
}

/**
 * Many images through the worker pool as batch jobs, for commands that have a broker URL and a list
 * of requests (`paligemma alt-text fix --broker`): connects, hands every outcome over in input order
 * (ok with the result, or the local daemon's ResponseError), reports progress, and disconnects.
 */
export async function runBrokerJobs<R>(
  o: BrokerConnectOptions,
  method: ImageMethod,
  items: readonly Record<string, unknown>[],
  onResult: (outcome: Settled<R>, index: number) => boolean | void,
  onProgress?: (p: JobProgress) => void,
): Promise<void> {
  const broker = await connectBroker(o);
  try {
    await broker.runJobs(method, items, onResult, onProgress);
  } finally {
    await broker.close();
  }
}
