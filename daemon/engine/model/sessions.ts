// What the facade (engine/index.ts) runs a model through, whatever the folder holds: our
// converted graphs (model/runtime.ts ModelSessions) or a transformers.js export
// (transformers-js/sessions.ts TransformersJsSessions).
import type * as ort from 'onnxruntime-node';
import type { StepModel } from '../generate/decode.js';
import type { Manifest } from './manifest.js';
import type { ExecutionProvider } from './providers.js';
import type { RunStats } from './runtime.js';

/** One generation over a batch of prompts; `dispose` frees its KV cache (GPU buffers with WebGPU). */
export interface Sequence extends StepModel {
  dispose?(): void;
}

export interface Sessions {
  readonly manifest: Manifest;
  readonly executionProvider: ExecutionProvider;
  /** Time inside onnxruntime and the number of runs since load (benchmarks). */
  readonly stats: RunStats;
  /** Known deviations from the reference (model status `warnings`). */
  readonly warnings: readonly string[];
  /** Where greedy decoding loops: 'graph' when a request runs its whole loop in one decoder call. */
  readonly decodeLoop: 'host' | 'graph' | 'search';
  /** Whether the KV cache can be reordered on the host, as beam search does. */
  readonly reordersOnHost: boolean;
  /** `pixels`: `count` float32 CHW images of image.size^2; returns float32 image_features [count, N, hidden]. */
  encodeImages(pixels: Float32Array, count: number): Promise<ort.Tensor>;
  sequence(imageFeatures: ort.Tensor, textIds: readonly (readonly number[])[]): Sequence;
  release(): Promise<void>;
}

/** Runs `use` on a new sequence and frees its KV cache afterwards. */
export async function withSequence<T>(s: Sessions, features: ort.Tensor, textIds: readonly (readonly number[])[], use: (seq: Sequence) => Promise<T>): Promise<T> {
  const seq = s.sequence(features, textIds);
  try {
    return await use(seq);
  } finally {
    seq.dispose?.();
  }
}
