// The decoder's key/value cache: each step's `present.*` outputs become the next step's `past.*`
// inputs. Tensors stay whatever onnxruntime returned (no copies per token); only beam search's
// reorder gathers rows. With WebGPU the tensors are GPU buffers (the decoder session asks for
// 'gpu-buffer' present outputs), so the cache never leaves the device between steps.
import * as ort from 'onnxruntime-node';
import type { KvDtype } from './manifest.js';

export class KvCache {
  /** past_key.{i} / past_value.{i}, in graph input order. */
  private tensors: Map<string, ort.Tensor>;

  constructor(
    readonly numLayers: number,
    readonly numKvHeads: number,
    readonly headDim: number,
    readonly dtype: KvDtype,
    batch: number,
  ) {
    this.tensors = new Map();
    for (let i = 0; i < numLayers; i++) {
      this.tensors.set(`past_key.${i}`, this.empty(batch));
      this.tensors.set(`past_value.${i}`, this.empty(batch));
    }
  }

  private empty(batch: number): ort.Tensor {
    const data = this.dtype === 'float16' ? new Uint16Array(0) : new Float32Array(0);
    return new ort.Tensor(this.dtype, data, [batch, this.numKvHeads, 0, this.headDim]);
  }

  /** Number of cached positions. */
  get length(): number {
    return this.tensors.get('past_key.0')!.dims[2];
  }

  get batch(): number {
    return this.tensors.get('past_key.0')!.dims[0];
  }

  /** Adds the past tensors to a feeds object. */
  feed(feeds: Record<string, ort.Tensor>): void {
    for (const [name, t] of this.tensors) feeds[name] = t;
  }

  /** Takes `present_*.{i}` from a run's outputs as the new past. */
  update(outputs: ort.InferenceSession.OnnxValueMapType): void {
    for (let i = 0; i < this.numLayers; i++) {
      const k = outputs[`present_key.${i}`] as ort.Tensor | undefined;
      const v = outputs[`present_value.${i}`] as ort.Tensor | undefined;
      if (!k || !v) throw new Error(`decoder did not return present_key.${i} / present_value.${i}`);
      this.tensors.get(`past_key.${i}`)?.dispose?.();
      this.tensors.get(`past_value.${i}`)?.dispose?.();
      this.tensors.set(`past_key.${i}`, k);
      this.tensors.set(`past_value.${i}`, v);
    }
  }

  /** Releases the tensors (GPU buffers with WebGPU). */
  dispose(): void {
    for (const t of this.tensors.values()) t.dispose?.();
    this.tensors.clear();
  }

  /**
   * Row i becomes old row `sources[i]` (beam search; also expands 1 row to n). Gathers on the host.
   * A cache in WebGPU buffers cannot be gathered: onnxruntime-node 1.29 aborts the process on their
   * download, so PaliGemma.generate refuses beam search there before reaching this.
   */
  reorder(sources: readonly number[]): void {
    if (sources.every((s, i) => s === i) && sources.length === this.batch) return;
    this.select(sources);
  }

  /**
   * Keeps rows `sources` (in that order) and, when given, only the cache slots `slots` (ascending):
   * batched decoding drops the rows that finished and the slots that are padding in every row
   * left. Gathers on the host, contiguous runs of slots at a time.
   */
  select(sources: readonly number[], slots?: readonly number[]): void {
    const runs: Array<[number, number]> = slots ? slotRuns(slots) : [[0, this.length]];
    const kept = slots ? slots.length : this.length;
    for (const [name, t] of this.tensors) {
      const [, heads, len, dim] = t.dims;
      if (t.location !== 'cpu') throw new Error('cannot gather a KV cache held in GPU memory');
      const src = t.data as Float32Array | Uint16Array;
      const out = src instanceof Float32Array ? new Float32Array(sources.length * heads * kept * dim) : new Uint16Array(sources.length * heads * kept * dim);
      let o = 0;
      for (const s of sources) {
        for (let h = 0; h < heads; h++) {
          const base = (s * heads + h) * len * dim;
          for (const [from, count] of runs) {
            out.set(src.subarray(base + from * dim, base + (from + count) * dim), o);
            o += count * dim;
          }
        }
      }
      this.tensors.set(name, new ort.Tensor(this.dtype, out, [sources.length, heads, kept, dim]));
    }
  }
}

/** [start, count] runs of consecutive slot indices. */
function slotRuns(slots: readonly number[]): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  for (const j of slots) {
    const last = runs[runs.length - 1];
    if (last && last[0] + last[1] === j) last[1]++;
    else runs.push([j, 1]);
  }
  return runs;
}
