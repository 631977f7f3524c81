// Which execution provider 'auto' means for a model: the fastest one that loads and runs it.
import { readdirSync, statSync } from 'node:fs';
import { freemem } from 'node:os';
import { join } from 'node:path';
import { errorMessage } from '../../common/errors.js';
import { EngineError, isEngineError } from '../errors.js';
import type { Manifest } from './manifest.js';
import type { ExecutionProvider } from './providers.js';
import { ModelSessions, type DecodeLoop } from './runtime.js';
import { withSequence, type Sessions } from './sessions.js';

/**
 * A converted model on 'auto': CUDA if it loads and runs a probe (vision, prefill, a step); else
 * WebGPU if it loads and runs a short prefill faster than the CPU; else the CPU. `notes` says
 * what was tried.
 */
export async function chooseProvider(dir: string, manifest: Manifest, threads: number | undefined, notes: string[], decodeLoop?: DecodeLoop): Promise<ModelSessions> {
  const create = (ep: ExecutionProvider) => ModelSessions.create(dir, manifest, ep, threads, decodeLoop);
  const attempt = async (ep: ExecutionProvider): Promise<ModelSessions | undefined> => {
    try {
      return await create(ep);
    } catch (e) {
      if (!isEngineError(e, 'provider-unavailable')) throw e;
      notes.push(`${ep} unavailable: ${e.message.split(' — ')[0]}`);
      return undefined;
    }
  };
  const cuda = await attempt('cuda');
  if (cuda) {
    // A provider can load a graph and still fail to run one of its ops: one probe run first.
    try {
      await probeMs(cuda);
      return cuda;
    } catch (e) {
      notes.push(`cuda failed its probe run: ${errorMessage(e).split('\n')[0]}`);
      await cuda.release();
    }
  }
  const webgpu = await attempt('webgpu');
  if (!webgpu) return create('cpu');
  let gpuMs: number;
  try {
    gpuMs = await probeMs(webgpu);
  } catch (e) {
    notes.push(`webgpu failed its probe run: ${errorMessage(e)}`);
    await webgpu.release();
    return create('cpu');
  }
  // Both providers' sessions at once need the weights twice in memory; when that would not fit
  // comfortably, measure one after the other and load the winner again.
  const together = 2 * modelBytes(dir, manifest) < 0.7 * freemem();
  if (!together) await webgpu.release();
  const cpu = await create('cpu');
  const cpuMs = await probeMs(cpu);
  notes.push(`webgpu probe ${gpuMs.toFixed(1)} ms vs cpu ${cpuMs.toFixed(1)} ms`);
  if (cpuMs <= gpuMs) {
    if (together) await webgpu.release();
    return cpu;
  }
  await cpu.release();
  return together ? webgpu : create('webgpu');
}

/**
 * The first of `providers` that `create` loads (no speed probe: for layouts whose graphs we did not
 * build, where a probe would time a different model than the one measured). `notes` says what failed.
 */
export async function firstAvailable<S extends Sessions>(
  dir: string,
  providers: readonly ExecutionProvider[],
  create: (ep: ExecutionProvider) => Promise<S>,
  notes: string[],
): Promise<S> {
  for (const ep of providers) {
    try {
      return await create(ep);
    } catch (e) {
      if (!isEngineError(e, 'provider-unavailable')) throw e;
      notes.push(`${ep}: ${e.message}`);
    }
  }
  throw new EngineError('provider-unavailable', `no execution provider could load ${dir}`);
}

/** Bytes of the graphs and their external data files. */
function modelBytes(dir: string, manifest: Manifest): number {
  let total = 0;
  for (const file of readdirSync(dir)) {
    if ([manifest.files.vision, manifest.files.decoder].some((g) => file.startsWith(g))) total += statSync(join(dir, file)).size;
  }
  return total;
}

/** Time of a vision run plus a short prefill and one decode step (the second of two tries). */
async function probeMs(sessions: ModelSessions): Promise<number> {
  const { image, tokens } = sessions.manifest;
  const once = async (): Promise<number> => {
    const t0 = performance.now();
    const features = await sessions.encodeImages(new Float32Array(3 * image.size * image.size), 1);
    await withSequence(sessions, features, [[tokens.bos, tokens.newline]], async (seq) => {
      await seq.prefill();
      await seq.next([tokens.bos]);
    });
    // decoder-loop.onnx: one greedy step inside the graph too.
    if (sessions.greedyInGraph) await withSequence(sessions, features, [[tokens.bos, tokens.newline]], (seq) => seq.greedy!(2, 2));
    return performance.now() - t0;
  };
  await once();
  return once();
}
