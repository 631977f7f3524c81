// Execution providers: which onnxruntime backend runs the graphs, and the error a person sees when
// the one they asked for cannot load.
import * as ort from 'onnxruntime-node';
import { EngineError } from '../errors.js';
import { errorMessage } from '../../common/errors.js';
import { createCachedSession, loadCacheEnabled } from './load-cache.js';
import { openSessionThread, type GraphSession } from './session-thread.js';

export type ExecutionProvider = 'cpu' | 'cuda' | 'webgpu';
export type ExecutionProviderRequest = ExecutionProvider | 'auto';

export const EXECUTION_PROVIDERS: readonly ExecutionProviderRequest[] = ['auto', 'cpu', 'cuda', 'webgpu'];

export function parseExecutionProvider(value: string): ExecutionProviderRequest {
  if ((EXECUTION_PROVIDERS as readonly string[]).includes(value)) return value as ExecutionProviderRequest;
  throw new EngineError('invalid-params', `unknown execution provider '${value}' (choose one of ${EXECUTION_PROVIDERS.join(', ')})`);
}

/** Session options for one provider. Graph optimisation stays on 'all'; CPU threads default to ORT's. */
export function sessionOptions(ep: ExecutionProvider, threads?: number, deviceOutputs?: readonly string[]): ort.InferenceSession.SessionOptions {
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: [ep],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  };
  if (threads !== undefined) options.intraOpNumThreads = threads;
  // Outputs that stay in GPU memory (onnxruntime-node binds 'gpu-buffer' for WebGPU only).
  if (deviceOutputs && deviceOutputs.length > 0 && ep === 'webgpu') {
    options.preferredOutputLocation = Object.fromEntries(deviceOutputs.map((n) => [n, 'gpu-buffer' as const]));
  }
  return options;
}

/** Whether `sessionOptions(ep, _, outputs)` keeps those outputs on the device. */
export function keepsOutputsOnDevice(ep: ExecutionProvider): boolean {
  return ep === 'webgpu';
}

/** Creates a session, turning a provider that fails to load into 'provider-unavailable'. */
export async function createSession(path: string, ep: ExecutionProvider, threads?: number, deviceOutputs?: readonly string[]): Promise<ort.InferenceSession> {
  try {
    const options = sessionOptions(ep, threads, deviceOutputs);
    // CPU loads may go through the load cache (load-cache.ts): GPU providers optimise for their device.
    if (ep === 'cpu' && loadCacheEnabled()) return (await createCachedSession(path, options)).session;
    return await ort.InferenceSession.create(path, options);
  } catch (e) {
    const message = errorMessage(e);
    // CPU always exists, so a CPU failure is the model's fault; any other provider that fails to
    // load (or rejects the graph) is unusable here.
    if (ep !== 'cpu') throw new EngineError('provider-unavailable', providerHint(ep, message), { cause: e });
    throw new EngineError('model-invalid', `onnxruntime could not load ${path}: ${message}`, { cause: e });
  }
}

function providerHint(ep: ExecutionProvider, message: string): string {
  const first = message.split('\n')[0];
  if (ep === 'cuda') {
    return `the CUDA execution provider could not be loaded (${first}); it needs an NVIDIA GPU, CUDA 13 and libonnxruntime_providers_cuda.so for onnxruntime 1.29.0 next to onnxruntime-node's binary — use --ep cpu or --ep auto`;
  }
  return `the ${ep} execution provider could not be loaded (${first}) — use --ep cpu or --ep auto`;
}

/**
 * Opens a graph that can load beside others: on the CPU on a thread of its own (session-thread.ts),
 * unless PALIGEMMA_SESSION_THREAD=0 (the A/B of bench/results); GPU sessions stay on the calling
 * thread, where their device memory is.
 */
export function createSessionBeside(path: string, ep: ExecutionProvider, threads?: number, env: NodeJS.ProcessEnv = process.env): Promise<GraphSession> {
  return ep === 'cpu' && env.PALIGEMMA_SESSION_THREAD !== '0' ? openSessionThread(path, threads) : createSession(path, ep, threads);
}

/** Waits for sessions opening at once; when one fails, the others are released and its error thrown. */
export async function openAll<T extends readonly GraphSession[]>(opening: { readonly [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(opening);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (!failed) return settled.map((r) => (r as PromiseFulfilledResult<GraphSession>).value) as unknown as T;
  await Promise.allSettled(settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value.release()] : [])));
  throw failed.reason;
}
