// What the broker client and the cluster worker agree on: subjects, headers, stream and bucket
// names, the job dedupe id, the reply envelope and how to connect (auth, TLS). Both sides import
// this file; it holds no transport state.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  type ConnectionOptions,
  credsAuthenticator,
  type JetStreamClient,
  type JetStreamManager,
  type JetStreamPublishOptions,
  NatsError,
  nanos,
  RetentionPolicy,
  StorageType,
} from 'nats';
import * as protocol from '../protocol.js';

/** The methods a worker serves; each is `paligemma.<model>.<name>` on the broker. */
export const BROKER_METHODS = {
  caption: protocol.Caption.method,
  ocr: protocol.Ocr.method,
  answer: protocol.Answer.method,
  detect: protocol.Detect.method,
  segment: protocol.Segment.method,
  status: protocol.Status.method,
} as const;
export type BrokerMethod = keyof typeof BROKER_METHODS;
export type ImageMethod = Exclude<BrokerMethod, 'status'>;

export function brokerMethodOf(rpcMethod: string): BrokerMethod | undefined {
  return (Object.keys(BROKER_METHODS) as BrokerMethod[]).find((k) => BROKER_METHODS[k] === rpcMethod);
}

export const SERVICE_NAME = 'paligemma';
export const JOBS_STREAM = 'PALIGEMMA_JOBS';
export const RESULTS_STREAM = 'PALIGEMMA_RESULTS';
export const CACHE_BUCKET = 'paligemma-results';
export const IMAGES_BUCKET = 'paligemma-images';

export const H = {
  /** JSON of the request's params without the image. */
  params: 'Paligemma-Params',
  /** The image is in the object store under this name (its sha256) instead of the payload. */
  imageObject: 'Paligemma-Image-Object',
  /** Batch jobs: where the worker publishes the result (`paligemma.results.<batch>`). */
  replyTo: 'Paligemma-Reply-To',
  /** Batch jobs and their results: the dedupe id. */
  dedupe: 'Paligemma-Dedupe',
  method: 'Paligemma-Method',
} as const;

/** Bytes kept free under the server's max_payload for headers (params, ids). */
export const HEADER_ROOM = 64 * 1024;
/** Longest accepted params header: prompts and object lists are short. */
export const MAX_PARAMS_BYTES = 32 * 1024;

/**
 * A subject token for a model: its name (letters, digits, `-`, `_` only) and the first 12 hex
 * digits of its identity, so two builds of one model never share a queue group.
 */
export function modelToken(name: string, id: string): string {
  const clean = name.replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 64) || 'model';
  return `${clean}-${id.slice(0, 12)}`;
}

export const methodSubject = (token: string, method: BrokerMethod) => `paligemma.${token}.${method}`;
export const jobSubject = (token: string, method: ImageMethod) => `paligemma.jobs.${token}.${method}`;
export const jobFilter = (token: string) => `paligemma.jobs.${token}.>`;
export const resultSubject = (batch: string) => `paligemma.results.${batch}`;
export const RESULT_SUBJECT_RE = /^paligemma\.results\.[A-Za-z0-9_-]{1,64}$/;
export const consumerName = (token: string) => `workers-${token}`;

/** Params that determine an answer, keys sorted at every level, undefined dropped. */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>)
        .filter(([, x]) => x !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, x]) => [k, canonical(x)]),
    );
  }
  return v;
}

/** What the image-free params of a request are, for the dedupe id: no image, no streaming, no cacheOnly. */
export function answerParams(params: Record<string, unknown>): Record<string, unknown> {
  const { image: _image, streamId: _streamId, cacheOnly: _cacheOnly, ...rest } = params;
  return rest;
}

/**
 * The id of a job: one hash of the model identity, the image bytes (their sha256), the task and the
 * params that make its prompt and decoding. Equal ids give equal answers, so it keys the shared
 * result cache and dedupes jobs.
 */
export function dedupeId(modelId: string, imageSha256: string, method: ImageMethod, params: Record<string, unknown>): string {
  return createHash('sha256')
    .update(JSON.stringify(['paligemma-job/1', modelId, imageSha256, method, canonical(answerParams(params))]))
    .digest('hex');
}

/** A worker's reply, and a batch result's body: JSON-RPC's result or error. */
export type ReplyBody<R> = { result: R } | { error: { code: number; message: string; data?: { reason: string } } };

export interface BrokerAuthOptions {
  /** A NATS credentials file (JWT + nkey seed), as `nsc` writes it. */
  creds?: string;
  /** A file holding the server's auth token (kept off the command line). */
  tokenFile?: string;
  /** The same, held in memory (the extension keeps them in VS Code's SecretStorage). */
  credsData?: string;
  token?: string;
  /** TLS: a CA bundle to trust, and a client certificate and key for mutual TLS. */
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

/** Connection options for `nats://host:4222[,nats://other:4222...]` (or `tls://...`). */
export async function natsConnectOptions(url: string, auth: BrokerAuthOptions, name: string): Promise<ConnectionOptions> {
  if ((auth.creds || auth.credsData) && (auth.tokenFile || auth.token)) throw new Error('give either NATS credentials or a token, not both');
  const servers = url
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (servers.length === 0) throw new Error(`no broker address in '${url}' (expected nats://host:4222)`);
  const o: ConnectionOptions = { servers, name, maxReconnectAttempts: -1, reconnectTimeWait: 250, waitOnFirstConnect: false };
  if (auth.creds) {
    const creds = await readFile(auth.creds).catch((e: Error) => {
      throw new Error(`cannot read the NATS credentials file ${auth.creds}: ${e.message}`);
    });
    o.authenticator = credsAuthenticator(new Uint8Array(creds));
  }
  if (auth.credsData) o.authenticator = credsAuthenticator(new TextEncoder().encode(auth.credsData));
  if (auth.token) o.token = auth.token;
  if (auth.tokenFile) {
    const token = (
      await readFile(auth.tokenFile, 'utf8').catch((e: Error) => {
        throw new Error(`cannot read the NATS token file ${auth.tokenFile}: ${e.message}`);
      })
    ).trim();
    if (!token) throw new Error(`the NATS token file ${auth.tokenFile} is empty`);
    o.token = token;
  }
  if (auth.tlsCa || auth.tlsCert || auth.tlsKey || servers.some((s) => s.startsWith('tls://'))) {
    o.tls = {};
    if (auth.tlsCa) o.tls.caFile = auth.tlsCa;
    if (auth.tlsCert) o.tls.certFile = auth.tlsCert;
    if (auth.tlsKey) o.tls.keyFile = auth.tlsKey;
  }
  return o;
}

/** A connection failure in words: what failed and what to do. */
export function describeConnectError(url: string, e: unknown): string {
  if (e instanceof NatsError) {
    if (e.isAuthError() || e.code === 'AUTHORIZATION_VIOLATION') {
      return `the NATS broker at ${url} refused the credentials (${e.message}); check the token or creds file`;
    }
    if (e.code === 'CONNECTION_REFUSED') return `cannot reach the NATS broker at ${url} (connection refused): is nats-server running there?`;
    if (e.code === 'TLS') return `TLS to the NATS broker at ${url} failed: ${e.message}`;
  }
  return `cannot connect to the NATS broker at ${url}: ${e instanceof Error ? e.message : String(e)}`;
}

/** How the streams and buckets are created when missing. */
export interface StreamSettings {
  /** 3 on a cluster of 3 or more servers, else 1. */
  replicas: number;
  /** How long results wait for their client, and cached images for their worker. */
  resultsMaxAgeMs: number;
  /** How long results stay in the shared cache. */
  cacheTtlMs: number;
}

export const DEFAULT_STREAMS: Omit<StreamSettings, 'replicas'> = { resultsMaxAgeMs: 60 * 60_000, cacheTtlMs: 24 * 60 * 60_000 };

/** R3 where the cluster has three servers or more (JetStream's usual), else R1. */
export function replicasFor(connectUrls: string[] | undefined): number {
  return (connectUrls?.length ?? 0) >= 3 ? 3 : 1;
}

/**
 * Creates the job and result streams when missing (workers and clients both call this, so either
 * may start first). An existing stream is left as its operator configured it.
 */
export async function ensureStreams(jsm: JetStreamManager, s: StreamSettings): Promise<void> {
  const want = [
    {
      name: JOBS_STREAM,
      subjects: ['paligemma.jobs.>'],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      num_replicas: s.replicas,
      // Publishing a job again (a retry after a lost acknowledgement) within this window is a no-op.
      duplicate_window: nanos(10 * 60_000),
    },
    {
      name: RESULTS_STREAM,
      subjects: ['paligemma.results.>'],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      num_replicas: s.replicas,
      max_age: nanos(s.resultsMaxAgeMs),
      duplicate_window: nanos(10 * 60_000),
    },
  ];
  for (const cfg of want) {
    try {
      await jsm.streams.info(cfg.name);
    } catch (e) {
      if (!(e instanceof NatsError && e.api_error?.err_code === 10059)) throw e;
      await jsm.streams.add(cfg).catch((err: unknown) => {
        // Another worker created it meanwhile.
        if (!(err instanceof NatsError && err.api_error?.err_code === 10058)) throw err;
      });
    }
  }
}

/**
 * Publishes to a stream, trying again for about 10 s: a stream's leader election after a server
 * stopped takes a few seconds. Safe to repeat because of `msgID` (the stream keeps one copy).
 */
export async function publishWithRetry(
  js: JetStreamClient,
  subject: string,
  data: string | Uint8Array,
  opts: Partial<JetStreamPublishOptions> & { msgID: string },
): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await js.publish(subject, data, { timeout: 5000, ...opts })).seq;
    } catch (e) {
      if (attempt >= 8) throw e;
      await new Promise((r) => setTimeout(r, 250 * attempt));
    }
  }
}
