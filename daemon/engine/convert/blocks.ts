// The building blocks both graphs share: linear layers in each weight format, norms, GELU,
// softcap, rotary embedding and multi-head attention. Formulas follow transformers'
// modeling_gemma / modeling_gemma2 / modeling_siglip (eager paths).
import { f, MS_DOMAIN, float32ToFloat16, type GraphBuilder, type DTypeName } from '../onnx/builder.js';
import type { Activation } from './config.js';
import { INT4_BLOCK, int4Dims, quantizeInt4Rows, quantizeInt8Columns } from './quantize.js';
import type { WeightSource } from './weights.js';

export type WeightFormat = 'fp32' | 'fp16' | 'int4' | 'int8';

/**
 * How one graph stores and computes: the residual stream, norms, softmax, softcaps and RoPE
 * are always float32; `matmul` is the dtype linear layers take and give (float16 for fp16
 * weights); int4 layers are MatMulNBits computing in `matmul` (their scales stored in it).
 */
export interface Precision {
  weights: WeightFormat;
  matmul: 'float32' | 'float16';
  /**
   * MatMulNBits `accuracy_level` (0 = the EP's default, 1 fp32, 2 fp16, 3 bf16, 4 int8 compute
   * of the activations); only int4 layers read it.
   */
  accuracyLevel?: number;
  /**
   * Fused onnxruntime contrib ops (Skip/SimplifiedLayerNormalization, SkipLayerNormalization,
   * RotaryEmbedding, FastGelu) instead of the same formulas in standard ops: fewer kernels per layer.
   */
  fusedOps?: boolean;
}

/** The sizes and constants of an attention over grouped kv heads. */
export interface AttentionShape {
  heads: number;
  kvHeads: number;
  headDim: number;
  scale: number;
  softcap: number | null;
}

export class Blocks {
  constructor(
    readonly g: GraphBuilder,
    readonly w: WeightSource,
    readonly p: Precision,
  ) {}

  cast(x: string, to: DTypeName): string {
    return this.g.op('Cast', [x], { to: to === 'float16' ? 10 : to === 'float32' ? 1 : 7 });
  }

  /** float32 -> the matmul dtype (a no-op for float32 graphs). */
  toMatmul(x: string): string {
    return this.p.matmul === 'float16' ? this.cast(x, 'float16') : x;
  }
  fromMatmul(x: string): string {
    return this.p.matmul === 'float16' ? this.cast(x, 'float32') : x;
  }

  /** A float tensor initializer in the matmul dtype. */
  private floatInit(name: string, dims: number[], data: Float32Array, dtype = this.p.matmul): string {
    return dtype === 'float16' ? this.g.initializer(name, 'float16', dims, float32ToFloat16(data)) : this.g.initializer(name, 'float32', dims, data);
  }

  /**
   * y = x W^T (+ b) for an HF Linear weight [out, in]; x and y float32.
   * `quantize` false keeps this layer in the float matmul dtype even in int4 graphs.
   */
  linear(x: string, weight: string, bias: string | null, opts: { quantize?: boolean } = {}): string {
    const [N, K] = this.w.shape(weight);
    return this.matmul(x, weight.replace(/[^A-Za-z0-9_.]/g, '_'), N, K, () => this.w.read(weight), bias, opts.quantize !== false);
  }

  /**
   * Several bias-free linears of one input (q, k, v; gate, up) as one matmul over their rows
   * stacked, split after: fewer, larger kernels. int4 quantises each row on its own, so the
   * stacked weights are exactly the separate ones.
   */
  linears(x: string, weights: readonly string[], name: string): string[] {
    const shapes = weights.map((w) => this.w.shape(w));
    const K = shapes[0][1];
    if (shapes.some(([, k]) => k !== K)) throw new Error(`${weights.join(', ')}: different input sizes`);
    const sizes = shapes.map(([n]) => n);
    const N = sizes.reduce((a, b) => a + b, 0);
    const stacked = () => {
      const W = new Float32Array(N * K);
      let row = 0;
      weights.forEach((w, i) => {
        W.set(this.w.read(w), row * K);
        row += sizes[i];
      });
      return W;
    };
    const y = this.matmul(x, name, N, K, stacked, null, true);
    return this.g.opN('Split', [y, this.g.int64s(sizes)], weights.length, { axis: -1 });
  }

  /** x W^T (+ bias) for W [N, K] read by `read`, its initializers named after `safe`. */
  private matmul(x: string, safe: string, N: number, K: number, read: () => Float32Array, bias: string | null, quantize: boolean): string {
    const biasInit = (dtype: 'float32' | 'float16') => (bias ? this.once(bias, () => this.floatInit(bias, [N], this.w.read(bias), dtype)) : null);
    if (this.p.weights === 'int4' && quantize) {
      const names = { B: `${safe}.q4`, S: `${safe}.scales`, Z: `${safe}.zp` };
      if (!this.g.hasInitializer(names.B)) {
        const q = quantizeInt4Rows(read(), N, K, INT4_BLOCK);
        const { kBlocks, blob, zpBytes } = int4Dims(K, INT4_BLOCK);
        this.g.initializer(names.B, 'uint8', [N, kBlocks, blob], q.packed);
        this.floatInit(names.S, [N, kBlocks], q.scales);
        this.g.initializer(names.Z, 'uint8', [N, zpBytes], q.zeroPoints);
      }
      const inputs = [this.toMatmul(x), names.B, names.S, names.Z];
      const b = biasInit(this.p.matmul);
      if (b) inputs.push('', b);
      const y = this.g.op('MatMulNBits', inputs, { K, N, bits: 4, block_size: INT4_BLOCK, accuracy_level: this.p.accuracyLevel ?? 0 }, { domain: MS_DOMAIN });
      return this.fromMatmul(y);
    }
    if (this.p.weights === 'int8' && quantize) return this.int8MatMul(x, safe, N, K, read, biasInit('float32'));

    // ONNX MatMul wants [in, out]: transpose once here.
    const Wt = this.once(`${safe}.T`, (name) => {
      const W = read();
      const T = new Float32Array(N * K);
      for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) T[k * N + n] = W[n * K + k];
      return this.floatInit(name, [K, N], T);
    });
    let y = this.g.op('MatMul', [this.toMatmul(x), Wt]);
    const b = biasInit(this.p.matmul);
    if (b) y = this.g.op('Add', [y, b]);
    return this.fromMatmul(y);
  }

  /**
   * x W^T (+ bias) with W in int8 per output channel (quantize.ts), the activations quantised per
   * tensor at run time: the standard ops onnxruntime's own quantizer writes (DynamicQuantizeLinear,
   * MatMulInteger, Cast, Mul), which its CPU EP fuses into one DynamicQuantizeMatMul (an int8 GEMM
   * on VNNI and AMX) and other EPs run as they are.
   */
  private int8MatMul(x: string, safe: string, N: number, K: number, read: () => Float32Array, bias: string | null): string {
    const names = { Q: `${safe}.q8`, S: `${safe}.q8scales` };
    if (!this.g.hasInitializer(names.Q)) {
      const q = quantizeInt8Columns(read(), N, K);
      this.g.initializer(names.Q, 'int8', [K, N], q.q);
      this.g.initializer(names.S, 'float32', [N], q.scales);
    }
    const [xq, xScale, xZero] = this.g.opN('DynamicQuantizeLinear', [x], 3);
    const acc = this.g.op('MatMulInteger', [xq, names.Q, xZero]);
    const y = this.g.op('Mul', [this.cast(acc, 'float32'), this.g.op('Mul', [xScale, names.S])]);
    return bias ? this.g.op('Add', [y, bias]) : y;
  }

  /**
   * The initializer `name`, made by `make` only the first time: a graph that emits the same layers
   * twice (the decoder step inside its greedy loop) reads and converts each weight once.
   */
  once(name: string, make: (name: string) => string): string {
    return this.g.hasInitializer(name) ? name : make(name);
  }

  /** Gemma RMSNorm in float32: x * rsqrt(mean(x^2) + eps) * (1 + w). */
  rmsNorm(x: string, weight: string, eps: number): string {
    const g = this.g;
    // Written as Pow -> ReduceMean -> Add -> Sqrt -> Div -> Mul, the pattern onnxruntime fuses
    // into one SimplifiedLayerNormalization (fp32 accumulation) on CPU and CUDA.
    const ms = g.op('ReduceMean', [g.op('Pow', [x, g.scalar('float32', 2)])], { axes: [-1], keepdims: 1 });
    const rms = g.op('Sqrt', [g.op('Add', [ms, g.scalar('float32', eps)])]);
    const scale = this.onePlus(weight);
    return g.op('Mul', [g.op('Div', [x, rms]), scale]);
  }

  /** SigLIP LayerNorm in float32. */
  layerNorm(x: string, prefix: string, eps: number): string {
    const dim = this.w.shape(`${prefix}.weight`)[0];
    const scale = this.once(`${prefix}.weight`, (name) => this.g.initializer(name, 'float32', [dim], this.w.read(name)));
    const bias = this.once(`${prefix}.bias`, (name) => this.g.initializer(name, 'float32', [dim], this.w.read(name)));
    return this.g.op('LayerNormalization', [x, scale, bias], { axis: -1, epsilon: f(eps) });
  }

  /** GELU in float32, tanh approximation as torch's gelu(approximate='tanh') computes it. */
  gelu(x: string, kind: Activation): string {
    const g = this.g;
    if (kind === 'gelu_erf') {
      const e = g.op('Erf', [g.op('Mul', [x, g.scalar('float32', Math.SQRT1_2)])]);
      return g.op('Mul', [g.op('Mul', [x, g.scalar('float32', 0.5)]), g.op('Add', [e, g.scalar('float32', 1)])]);
    }
    const cube = g.op('Mul', [g.op('Mul', [x, x]), x]);
    const inner = g.op('Add', [x, g.op('Mul', [cube, g.scalar('float32', 0.044715)])]);
    const t = g.op('Tanh', [g.op('Mul', [inner, g.scalar('float32', Math.sqrt(2 / Math.PI))])]);
    return g.op('Mul', [g.op('Mul', [x, g.scalar('float32', 0.5)]), g.op('Add', [t, g.scalar('float32', 1)])]);
  }

  /** tanh(x / cap) * cap (Gemma 2 attention and final logit softcapping). */
  softcap(x: string, cap: number): string {
    const c = this.g.scalar('float32', cap);
    return this.g.op('Mul', [this.g.op('Tanh', [this.g.op('Div', [x, c])]), c]);
  }

  /**
   * cos/sin [B, 1, S, headDim] for HF's default RoPE: inv_freq = 1 / theta^(2i/d) in float32,
   * freqs = position * inv_freq, emb = cat(freqs, freqs).
   */
  ropeTables(positionIds: string, headDim: number, theta: number): { cos: string; sin: string } {
    const g = this.g;
    const half = headDim / 2;
    const invFreq = ropeInvFreq(headDim, theta);
    const pos = g.op('Unsqueeze', [this.cast(positionIds, 'float32'), g.int64s([2])]);
    const freqs = g.op('Mul', [pos, g.initializer(g.fresh('rope_inv_freq'), 'float32', [half], invFreq)]);
    const emb = g.op('Unsqueeze', [g.op('Concat', [freqs, freqs], { axis: -1 }), g.int64s([1])]);
    return { cos: g.op('Cos', [emb]), sin: g.op('Sin', [emb]) };
  }

  /** x * cos + rotate_half(x) * sin, x [B, heads, S, D]. */
  applyRope(x: string, rope: { cos: string; sin: string }, headDim: number): string {
    const g = this.g;
    const half = headDim / 2;
    const axis = g.int64s([-1]);
    const x1 = g.op('Slice', [x, g.int64s([0]), g.int64s([half]), axis]);
    const x2 = g.op('Slice', [x, g.int64s([half]), g.int64s([headDim]), axis]);
    const rotated = g.op('Concat', [g.op('Neg', [x2]), x1], { axis: -1 });
    return g.op('Add', [g.op('Mul', [x, rope.cos]), g.op('Mul', [rotated, rope.sin])]);
  }

  /** [B, S, heads*D] -> [B, heads, S, D] */
  splitHeads(x: string, heads: number, headDim: number): string {
    const r = this.g.op('Reshape', [x, this.g.int64s([0, 0, heads, headDim])]);
    return this.g.op('Transpose', [r], { perm: [0, 2, 1, 3] });
  }

  /** [B, heads, S, D] -> [B, S, heads*D] */
  mergeHeads(x: string, heads: number, headDim: number): string {
    const t = this.g.op('Transpose', [x], { perm: [0, 2, 1, 3] });
    return this.g.op('Reshape', [t, this.g.int64s([0, 0, heads * headDim])]);
  }

  /**
   * Scaled dot-product attention in float32 with grouped kv heads:
   * q [B, H, S, D], k/v [B, KV, L, D]; scores = (q k^T) * scale, optional softcap, + bias
   * [B, 1, S, L], softmax, times v. Query heads are grouped per kv head (head h uses kv head
   * h / (H/KV), as repeat_kv does) by reshaping instead of repeating k and v.
   */
  attention(q: string, k: string, v: string, o: AttentionShape & { bias: string | null }): string {
    return this.attentionOverParts(q, [k], [v], o);
  }

  /**
   * `attention` over keys and values held in parts along L (k/v [B, KV, L_i, D]; a cache and what
   * was added to it), as over their concatenation but without copying them into one tensor: the
   * parts' scores are joined for the softmax (`bias` covers the joined length) and the parts'
   * weighted values are added. `lengths`: int64 [parts], the L_i (for more than one part).
   */
  attentionOverParts(q: string, keys: string[], values: string[], o: AttentionShape & { bias: string | null; lengths?: string }): string {
    const g = this.g;
    const grouped = o.heads !== o.kvHeads;
    const qg = grouped ? g.op('Reshape', [q, g.int64s([0, o.kvHeads, -1, o.headDim])]) : q;
    const scores = keys.map((k) => g.op('MatMul', [qg, g.op('Transpose', [k], { perm: [0, 1, 3, 2] })]));
    let s = scores.length === 1 ? scores[0] : g.op('Concat', scores, { axis: -1 });
    s = g.op('Mul', [s, g.scalar('float32', o.scale)]);
    if (o.softcap !== null) s = this.softcap(s, o.softcap);
    if (grouped) s = g.op('Reshape', [s, g.int64s([0, o.heads, -1, 0])]);
    if (o.bias) s = g.op('Add', [s, o.bias]);
    let p = g.op('Softmax', [s], { axis: -1 });
    if (grouped) p = g.op('Reshape', [p, g.int64s([0, o.kvHeads, -1, 0])]);
    const weights = values.length === 1 ? [p] : g.opN('Split', [p, o.lengths!], values.length, { axis: -1 });
    let out = values.map((v, i) => g.op('MatMul', [weights[i], v])).reduce((a, b) => g.op('Add', [a, b]));
    if (grouped) out = g.op('Reshape', [out, g.int64s([0, o.heads, -1, o.headDim])]);
    return out;
  }

  /**
   * The RoPE cos/sin tables for positions 0..maxPosition as onnxruntime's RotaryEmbedding reads
   * them ([positions, headDim / 2]), each angle computed as HF does in float32
   * (position * inv_freq, one rounding) and its cos/sin rounded once to float32.
   */
  ropeCaches(headDim: number, theta: number, maxPosition: number): { cos: string; sin: string } {
    const half = headDim / 2;
    const invFreq = ropeInvFreq(headDim, theta);
    const n = maxPosition + 1;
    const cos = new Float32Array(n * half);
    const sin = new Float32Array(n * half);
    for (let p = 0; p < n; p++) {
      for (let i = 0; i < half; i++) {
        const angle = Math.fround(p * invFreq[i]);
        cos[p * half + i] = Math.cos(angle);
        sin[p * half + i] = Math.sin(angle);
      }
    }
    return {
      cos: this.once('rope_cos_cache', (name) => this.g.initializer(name, 'float32', [n, half], cos)),
      sin: this.once('rope_sin_cache', (name) => this.g.initializer(name, 'float32', [n, half], sin)),
    };
  }

  /** RotaryEmbedding (com.microsoft) on x [B, S, heads * D] with rotate_half (non-interleaved) pairs. */
  rope(x: string, positionIds: string, caches: { cos: string; sin: string }, heads: number): string {
    return this.g.op('RotaryEmbedding', [x, positionIds, caches.cos, caches.sin], { interleaved: 0, num_heads: heads }, { domain: MS_DOMAIN });
  }

  /** Gemma RMSNorm of (x + skip), also returning the sum (the next residual): one fused node. */
  skipRmsNorm(x: string, skip: string, weight: string, eps: number): { normed: string; sum: string } {
    const scale = this.onePlus(weight);
    const [normed, , , sum] = this.g.opN('SkipSimplifiedLayerNormalization', [x, skip, scale], 4, { epsilon: f(eps) }, { domain: MS_DOMAIN });
    return { normed, sum };
  }

  /** Gemma RMSNorm as one SimplifiedLayerNormalization node (float32 statistics). */
  rmsNormFused(x: string, weight: string, eps: number): string {
    return this.g.op('SimplifiedLayerNormalization', [x, this.onePlus(weight)], { axis: -1, epsilon: f(eps), stash_type: 1 });
  }

  /** tanh-approximated GELU of (x + bias) as one FastGelu node (same formula as `gelu`). */
  fastGelu(x: string, bias?: string): string {
    return this.g.op('FastGelu', bias ? [x, bias] : [x], {}, { domain: MS_DOMAIN });
  }

  /** A float32 bias vector initializer. */
  floatBias(name: string): string {
    return this.once(name, () => this.g.initializer(name, 'float32', this.w.shape(name), this.w.read(name)));
  }

  /** LayerNorm of (x + skip) with `prefix`.weight/.bias, also returning the sum: one fused node. */
  skipLayerNorm(x: string, skip: string, prefix: string, eps: number): { normed: string; sum: string } {
    const scale = this.floatBias(`${prefix}.weight`);
    const bias = this.floatBias(`${prefix}.bias`);
    const [normed, , , sum] = this.g.opN('SkipLayerNormalization', [x, skip, scale, bias], 4, { epsilon: f(eps) }, { domain: MS_DOMAIN });
    return { normed, sum };
  }

  private onePlus(weight: string): string {
    return this.once(`${weight}.plus1`, (name) => {
      const w = this.w.read(weight);
      const onePlus = new Float32Array(w.length);
      for (let i = 0; i < w.length; i++) onePlus[i] = 1 + w[i];
      return this.g.initializer(name, 'float32', [w.length], onePlus);
    });
  }
}

/** The residual stream of a pre-norm transformer layer: `norm` gives a sub-layer's input, `add` adds its output. */
export interface Residual {
  /** norm(stream) by `plain`; `skip` adds what is pending and normalises in one node, where the stream defers adds. */
  norm(plain: (x: string) => string, skip: (x: string, residual: string) => { normed: string; sum: string }): string;
  add(delta: string): void;
  /** The stream with everything added. */
  readonly current: string;
}

/** A residual stream in standard ops: each addition an Add node at once, norms separate. */
export class AddedResidual implements Residual {
  constructor(
    private readonly g: GraphBuilder,
    private value: string,
  ) {}

  norm(plain: (x: string) => string): string {
    return plain(this.value);
  }

  add(delta: string): void {
    this.value = this.g.op('Add', [this.value, delta]);
  }

  get current(): string {
    return this.value;
  }
}

/**
 * A residual stream whose latest addition waits to be folded into the next norm, so that the add
 * and the norm are one Skip*Normalization node (fused graphs).
 */
export class ResidualStream implements Residual {
  private pending: string | null = null;

  constructor(
    private readonly g: GraphBuilder,
    private value: string,
  ) {}

  add(delta: string): void {
    this.flush();
    this.pending = delta;
  }

  /** norm(stream): `plain` when nothing is pending, else `skip` adds and normalises in one node. */
  norm(plain: (x: string) => string, skip: (x: string, residual: string) => { normed: string; sum: string }): string {
    if (this.pending === null) return plain(this.value);
    const r = skip(this.pending, this.value);
    this.value = r.sum;
    this.pending = null;
    return r.normed;
  }

  /** The stream with everything added. */
  get current(): string {
    this.flush();
    return this.value;
  }

  private flush(): void {
    if (this.pending !== null) this.value = this.g.op('Add', [this.value, this.pending]);
    this.pending = null;
  }
}

/** HF's default RoPE inverse frequencies, 1 / theta^(2i/d), in float32. */
function ropeInvFreq(headDim: number, theta: number): Float32Array {
  const half = headDim / 2;
  const invFreq = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const exponent = Math.fround(Math.fround(2 * i) / headDim);
    invFreq[i] = Math.fround(1 / Math.fround(Math.pow(theta, exponent)));
  }
  return invFreq;
}
