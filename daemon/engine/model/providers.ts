// Execution providers: which onnxruntime backend runs the graphs, and the error a person sees when
// the one they asked for cannot load.
import * as ort from 'onnxruntime-node';
import { EngineError } from '../errors.js';
import { errorMessage } from '../../common/errors.js';
import { createCachedSession, loadCacheEnabled } from './load-cache.js';

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
