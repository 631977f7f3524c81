// A GPU worker behind NATS: the local daemon's service (queue, batcher, caches, engine in a worker
// thread) served two ways at once. Interactive requests arrive through a NATS service endpoint
// (`paligemma.<model>.<method>`, a queue group per model identity, so each request reaches one
// worker); batch jobs come from a durable JetStream pull consumer on the job stream. Both feed the
// same service, so waiting requests of either kind batch together in one model call.
import {
  AckPolicy,
  type Consumer,
  type JetStreamClient,
  type JsMsg,
  type KV,
  headers as natsHeaders,
  type NatsConnection,
  NatsError,
  nanos,
  type ObjectStore,
  type Service,
  type ServiceMsg,
} from 'nats';
import type { ExecutionProviderSetting, ModelStatus } from '../protocol.js';
import { ErrorCodes } from '../protocol.js';
import {
  BROKER_METHODS,
  type BrokerMethod,
  CACHE_BUCKET,
  consumerName,
  DEFAULT_STREAMS,
  dedupeId,
  ensureStreams,
  H,
  IMAGES_BUCKET,
  type ImageMethod,
  jobFilter,
  JOBS_STREAM,
  modelToken,
  publishWithRetry,
  type ReplyBody,
  replicasFor,
  RESULT_SUBJECT_RE,
  SERVICE_NAME,
  type StreamSettings,
} from '../client/brokerWire.js';
import { DAEMON_VERSION } from '../client/version.js';
import { toResponseError } from '../server/errors.js';
import type { Logger } from '../server/log.js';
import type { PaliGemmaService } from '../server/service.js';
import { readIncoming, statusParams } from './incoming.js';
import { SharedCache } from './sharedCache.js';

export interface ClusterWorkerOptions {
  nc: NatsConnection;
  service: PaliGemmaService;
  modelPath: string;
  executionProvider?: ExecutionProviderSetting;
  log: Logger;
  /** Largest accepted image, in bytes (the service's own limit). */
  maxBytes: number;
  /** A job not acknowledged (nor heartbeated) this long goes to another worker (default 30 s). */
  ackWaitMs?: number;
  /** Deliveries of one job before it is given up with its reason (default 5). */
  maxDeliver?: number;
  /** Jobs taken at once (default: two of the model's batches: one running, one waiting). */
  jobConcurrency?: number;
  streams?: Partial<StreamSettings>;
}

export interface WorkerStats {
  requests: number;
  jobsDone: number;
  jobsFailed: number;
  jobsRetried: number;
  sharedCacheHits: number;
  sharedCacheMisses: number;
  inFlight: number;
}

export interface ClusterWorker {
  /** The model's subject token: requests go to `paligemma.<token>.<method>`. */
  token: string;
  model: ModelStatus;
  stats(): WorkerStats;
  /** Stops taking work, finishes what is in flight (answers and acknowledgements), then closes the connection. */
  drain(reason: string): Promise<void>;
}

const IMAGE_METHODS = Object.keys(BROKER_METHODS).filter((m) => m !== 'status') as ImageMethod[];
/** Errors that say nothing about the job itself: another delivery (maybe another worker) may succeed. */
const TRANSIENT = new Set<number>([ErrorCodes.ShuttingDown, ErrorCodes.Busy, ErrorCodes.Cancelled, ErrorCodes.InternalError]);

export async function startClusterWorker(o: ClusterWorkerOptions): Promise<ClusterWorker> {
  const { nc, service, log } = o;
  const ackWaitMs = o.ackWaitMs ?? 30_000;
  const maxDeliver = o.maxDeliver ?? 5;
  const settings: StreamSettings = { ...DEFAULT_STREAMS, replicas: replicasFor(nc.info?.connect_urls), ...o.streams };

  // Loaded before registering: a worker only announces itself when it can answer.
  const model = await service.loadModel({ path: o.modelPath, executionProvider: o.executionProvider }, { signal: new AbortController().signal });
  const token = modelToken(model.name ?? 'model', model.id ?? '');
  const modelId = model.id ?? '';

  const jsm = await nc.jetstreamManager();
  await ensureStreams(jsm, settings);
  const durable = consumerName(token);
  await jsm.consumers.info(JOBS_STREAM, durable).catch(async (e: unknown) => {
    if (!(e instanceof NatsError && e.api_error?.err_code === 10014)) throw e;
    await jsm.consumers.add(JOBS_STREAM, {
      durable_name: durable,
      filter_subject: jobFilter(token),
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(ackWaitMs),
      max_deliver: maxDeliver,
      max_ack_pending: 10_000,
    });
  });
  const js = nc.jetstream();
  const cache = new SharedCache(await openKv(js, settings), log);
  let images: Promise<ObjectStore> | undefined;
  const imageStore = () => (images ??= js.views.os(IMAGES_BUCKET, { replicas: settings.replicas, ttl: nanos(settings.resultsMaxAgeMs) }));

  const counts = { requests: 0, jobsDone: 0, jobsFailed: 0, jobsRetried: 0 };
  const inFlight = new Set<Promise<void>>();
  const track = (p: Promise<void>) => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };
  // Nothing cancels a request once a worker has it: a drain finishes it, and a caller that gave up
  // has no way to reach this worker.
  const uncancelled = new AbortController().signal;
  let draining = false;

  const answer = async (method: ImageMethod, headers: ServiceMsg['headers'], data: Uint8Array): Promise<object> => {
    const t0 = performance.now();
    const req = await readIncoming(method, headers, data, o.maxBytes, imageStore);
    const id = dedupeId(modelId, req.imageSha256, method, req.params);
    const hit = await cache.get(id);
    if (hit) return { ...hit, ms: Math.round(performance.now() - t0), cached: true };
    const run = service[method] as (p: unknown, ctx: { signal: AbortSignal }) => Promise<object & { cached: boolean }>;
    const result = await run.call(service, req.params, { signal: uncancelled });
    if (!result.cached) await cache.set(id, result);
    return result;
  };

  const statsData = (): WorkerStats => ({ ...counts, sharedCacheHits: cache.hits, sharedCacheMisses: cache.misses, inFlight: inFlight.size });

  const srv: Service = await nc.services.add({
    name: SERVICE_NAME,
    version: DAEMON_VERSION,
    description: `PaliGemma worker: ${model.name} on ${model.executionProvider}`,
    queue: token,
    metadata: { model: model.name ?? '', modelId, token, maxBatch: String(model.maxBatch ?? 1), executionProvider: model.executionProvider ?? '' },
    statsHandler: () => Promise.resolve(statsData()),
  });
  const group = srv.addGroup(`paligemma.${token}`);
  for (const method of Object.keys(BROKER_METHODS) as BrokerMethod[]) {
    group.addEndpoint(method, (err, msg) => {
      if (err) {
        log.warn('service endpoint error', { method, error: err.message });
        return;
      }
      counts.requests++;
      track(serveRequest(method, msg));
    });
  }

  async function serveRequest(method: BrokerMethod, msg: ServiceMsg): Promise<void> {
    const t0 = performance.now();
    try {
      const result = method === 'status' ? service.status(statusParams(msg.headers)) : await answer(method, msg.headers, msg.data);
      msg.respond(JSON.stringify({ result } satisfies ReplyBody<object>));
      log.debug('request done', { method, ms: Math.round(performance.now() - t0) });
    } catch (e) {
      const body = errorBody(e);
      log[body.error.code === ErrorCodes.InternalError ? 'error' : 'info']('request failed', { method, code: body.error.code, error: body.error.message });
      msg.respondError(body.error.code, body.error.message, new TextEncoder().encode(JSON.stringify(body)));
    }
  }

  async function runJob(m: JsMsg): Promise<void> {
    const method = m.subject.split('.').pop() as ImageMethod;
    const replyTo = m.headers?.get(H.replyTo) ?? '';
    const dedupe = m.headers?.get(H.dedupe) ?? '';
    if (!RESULT_SUBJECT_RE.test(replyTo) || !/^[0-9a-f]{64}$/.test(dedupe)) {
      // Nobody could ever receive an answer: drop it for good, with the reason in the log.
      log.warn('job dropped: no valid reply subject or dedupe id', { seq: m.seq, subject: m.subject });
      m.term('no valid reply subject or dedupe id');
      counts.jobsFailed++;
      return;
    }
    const delivery = m.info.redeliveryCount;
    if (delivery > 1) {
      log.warn('job delivered again', {
        seq: m.seq,
        delivery,
        maxDeliver,
        reason: 'the previous delivery failed or was not acknowledged in time (its worker stopped, stalled or lost its connection)',
      });
    }
    // Tells the server the job is still being worked on, so a long one is not handed to another worker.
    const heartbeat = setInterval(() => m.working(), Math.max(200, Math.floor(ackWaitMs / 3)));
    let body: ReplyBody<object>;
    try {
      body = IMAGE_METHODS.includes(method)
        ? { result: await answer(method, m.headers, m.data) }
        : errorBody(new Error(`unknown job method '${method}'`), ErrorCodes.MethodNotFound);
    } catch (e) {
      body = errorBody(e);
      if (TRANSIENT.has(body.error.code) && delivery < maxDeliver) {
        clearInterval(heartbeat);
        counts.jobsRetried++;
        log.warn('job failed, will be delivered again', { seq: m.seq, delivery, maxDeliver, reason: body.error.message });
        m.nak(1000);
        return;
      }
      if (TRANSIENT.has(body.error.code)) {
        body.error.message = `gave up after ${delivery} deliveries; the last one failed: ${body.error.message}`;
      }
    }
    try {
      const h = natsHeaders();
      h.set(H.dedupe, dedupe);
      h.set(H.method, method);
      // The result stream drops a second publication of this id: a job run twice is answered once.
      await publishWithRetry(js, replyTo, JSON.stringify(body), { headers: h, msgID: `${replyTo}:${dedupe}` });
      await m
        .ackAck({ timeout: 5000 })
        .catch((e: unknown) => log.warn('job acknowledgement lost (it will run again; its result is published once)', { seq: m.seq, error: String(e) }));
      if ('error' in body) counts.jobsFailed++;
      else counts.jobsDone++;
    } catch (e) {
      counts.jobsRetried++;
      log.warn('cannot publish a job result; the job will be delivered again', { seq: m.seq, error: (e as Error).message });
      m.nak(1000);
    } finally {
      clearInterval(heartbeat);
    }
  }

  // One batch running and the next one waiting in the service's queue, so the broker round trips
  // (pull, result, ack) of one job overlap the model run of another.
  const limit = Math.max(1, o.jobConcurrency ?? 2 * (model.maxBatch ?? 1));
  // Each slot pulls one job when it is free, so a job never waits behind a half-filled pull.
  const slot = async () => {
    let consumer: Consumer | undefined;
    while (!draining) {
      let m: JsMsg | null;
      try {
        consumer ??= await js.consumers.get(JOBS_STREAM, durable);
        m = await consumer.next({ expires: 1000 });
      } catch (e) {
        if (draining) break;
        log.debug('pulling a job failed; trying again', { error: (e as Error).message });
        await new Promise((r) => setTimeout(r, 250));
        continue;
      }
      if (!m) continue;
      if (draining) {
        // Pulled as the drain began: straight back to the stream for another worker.
        m.nak();
        break;
      }
      const job = runJob(m).catch((e: unknown) => log.error('job failed unexpectedly', { seq: m.seq, error: String(e) }));
      track(job);
      await job;
    }
  };
  const pulling = Promise.all(Array.from({ length: limit }, slot));

  log.info('worker serving', {
    token,
    model: model.name,
    modelId,
    executionProvider: model.executionProvider,
    replicas: settings.replicas,
    jobConcurrency: limit,
    server: nc.getServer(),
  });

  let drained: Promise<void> | undefined;
  return {
    token,
    model,
    stats: statsData,
    drain(reason) {
      drained ??= (async () => {
        log.info('worker draining', { reason, inFlight: inFlight.size });
        draining = true;
        await srv.stop().catch(() => {});
        await pulling;
        await Promise.allSettled([...inFlight]);
        await nc.drain().catch(() => {});
        log.info('worker drained', statsData() as unknown as Record<string, unknown>);
      })();
      return drained;
    },
  };
}

function errorBody(e: unknown, code?: number): { error: { code: number; message: string; data?: { reason: string } } } {
  const err = toResponseError(e);
  const data = err.data as { reason: string } | undefined;
  return { error: { code: code ?? err.code, message: err.message, ...(data ? { data } : {}) } };
}

async function openKv(js: JetStreamClient, s: StreamSettings): Promise<KV> {
  try {
    return await js.views.kv(CACHE_BUCKET, { ttl: s.cacheTtlMs, history: 1, replicas: s.replicas });
  } catch {
    // Created by someone else with other settings: use it as it is.
    return js.views.kv(CACHE_BUCKET, { bindOnly: true });
  }
}
