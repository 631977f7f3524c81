// decoder.onnx: one graph for prefill and decode steps (DESIGN.md "Graph interfaces").
// Gemma (PaliGemma 1) and Gemma 2 (PaliGemma 2) layers as in modeling_gemma / modeling_gemma2:
// embeddings x normalizer, RMSNorm (1 + w), RoPE, grouped-query attention with an additive
// bias (Gemma 2: attention softcap before the bias, sliding-window layers get their own bias,
// four norms per layer), gated GELU MLP, final norm, tied lm_head on the last position only.
import { MS_DOMAIN, GraphAttr, toHalfBits, halfBitsToFloat, float32ToFloat16, type Dim, type DTypeName, type GraphBuilder } from '../onnx/builder.js';
import { MASKED } from '../model/masks.js';
import { EngineError } from '../errors.js';
import { AddedResidual, Blocks, ResidualStream, type Residual } from './blocks.js';
import type { ModelConfig } from './config.js';
import { INT4_BLOCK, int4Dims, quantizeInt4Rows, quantizeUint8Rows } from './quantize.js';

export type KvDtype = 'float32' | 'float16';

const ROWS_PER_CHUNK = 4096;

/** What one decoder run reads: the graph inputs of decoder.onnx, or the loop body's values. */
export interface StepInputs {
  inputIds: string;
  /** [B, N, hidden] image features placed before the text; null in the loop body (text only). */
  imageFeatures: string | null;
  positionIds: string;
  bias: string;
  biasSliding: string | null;
  past: { key: string; value: string }[];
  /** [B, S, hidden] embeddings made by the caller, image rows included (the transformers.js layout's inputs_embeds): used instead of inputIds and imageFeatures. */
  embeds?: string;
  /** In the 'buffer' loop's body: the cache in two parts (`past` unused, the biases in it). */
  loop?: TwoPartCache;
}

/** The cache a 'buffer' loop step attends over (bufferLoop). */
interface TwoPartCache {
  /** Per layer: the prefill's keys and values as its attention read them (float32), never copied. */
  prefix: { key: string; value: string }[];
  /** Per layer: the loop-carried buffers of generated keys and values, float32 [B, kvHeads, S, D]. */
  generated: { key: string; value: string }[];
  /** int64 [B, kvHeads, 1, D], every element this step's slot in `generated`. */
  slot: string;
  /** int64 [2]: the two parts' lengths. */
  lengths: string;
  /** [B, 1, 1, prefix + generated] biases over both parts, for full and sliding layers. */
  bias: string;
  biasSliding: string | null;
}

export interface StepOutputs {
  /** float32 [B, vocab], last position only. */
  logits: string;
  /** The cache after this step (in the 'buffer' loop's body: the updated generated buffers). */
  presents: { key: string; value: string }[];
  /** The keys and values the attention read, float32 (the presents, cast when kvDtype is float16). */
  attended: { key: string; value: string }[];
}

/** decoder.onnx: prefill and decode steps, the host runs the decoding loop. */
export function buildDecoderGraph(b: Blocks, cfg: ModelConfig, numLayers: number, kvDtype: KvDtype, onLayer?: (i: number) => void): void {
  const io = declareStepInputs(b, cfg, numLayers, kvDtype);
  const out = decoderStep({ b, cfg, numLayers, kvDtype, io, onLayer, presentName: (i, kind) => `present_${kind}.${i}` });
  declareStepOutputs(b, cfg, kvDtype, out);
}

/** How decoder-loop.onnx's body holds the cache (DESIGN.md "decoder-loop.onnx"). */
export type LoopCache = 'buffer' | 'concat';

/**
 * decoder-loop.onnx: decoder.onnx plus greedy decoding inside the graph. After the prefill, an
 * ONNX Loop runs up to `greedy_steps` decode steps, choosing each token by argmax (eos masked
 * for the first `min_new_tokens` tokens, stopping once every row has produced eos), so the KV
 * cache never leaves the device and the host makes one run per request. onnxruntime-node 1.29
 * can bind device memory only for WebGPU, so with CUDA this is how the cache stays on the GPU.
 * With `greedy_steps` = 0 the graph is one decoder.onnx run, for the host loop (sampling,
 * beams, grammars). Greedy ids equal the host loop's: same logits, argmax with ties to
 * the lowest id, attention biases computed from the same slot positions.
 *
 * `cache`: 'buffer' (the default) keeps the prefill's cache where the prefill put it, read by
 * every step from the outer graph, and the generated tokens' keys and values in preallocated
 * loop-carried buffers of `greedy_steps` slots, one slot written per step (ScatterElements);
 * 'concat' carries the whole cache and grows it by Concat every step (the first version, kept for
 * A/B benchmarks as decoder-loop-concat.onnx). onnxruntime 1.29 writes no loop-carried value in
 * place (its allocation planner never lets a kernel reuse a graph input's buffer, and a loop
 * body's carried values are its graph inputs), so 'buffer' still copies each layer's generated
 * part once per step; what it saves is the copy of the prefill's part, the bulk of the cache.
 */
export function buildDecoderLoopGraph(b: Blocks, cfg: ModelConfig, numLayers: number, kvDtype: KvDtype, eos: number, cache: LoopCache = 'buffer'): void {
  const g = b.g;
  const t = cfg.text;
  const io = declareStepInputs(b, cfg, numLayers, kvDtype);
  // Always fed (onnxruntime-node feeds only the inputs it lists, and it does not list inputs with
  // defaults): greedy_steps = 0 makes one plain run for the host loop. next_position: each row's
  // first generated position; slot_positions: every slot's position id so far (pads: a large
  // negative number, masked by both biases).
  const steps = g.input('greedy_steps', 'int64', []);
  const minNew = g.input('min_new_tokens', 'int64', []);
  const nextPosition = g.input('next_position', 'int64', ['batch', 1]);
  const slotPositions = g.input('slot_positions', 'int64', ['batch', 'total_len']);

  const presentName = (i: number, kind: 'key' | 'value') => `present_${kind}.${i}`;
  const prefill = decoderStep({ b, cfg, numLayers, kvDtype, io, ...(cache === 'buffer' ? { presentName } : {}) });
  const eosId = g.constant('int64', [eos], []);
  const isEos = g.op('Equal', [g.op('Range', [g.constant('int64', [0], []), g.constant('int64', [t.vocabSize], []), g.constant('int64', [1], [])]), eosId]);
  const loop: GreedyLoop = {
    b,
    cfg,
    numLayers,
    kvDtype,
    io,
    steps,
    nextPosition,
    slotPositions,
    prefill,
    eosId,
    choose: (gb, logits, index) => {
      const banned = gb.op('And', [isEos, gb.op('Less', [index, minNew])]);
      const masked = gb.op('Where', [banned, gb.scalar('float32', -Infinity), logits]);
      return gb.op('ArgMax', [masked], { axis: -1, keepdims: 1, select_last_index: 0 });
    },
    anyUnfinished: (gb, finished) => {
      const open = gb.op('Cast', [gb.op('Not', [finished])], { to: 1 });
      return gb.op('Cast', [gb.op('ReduceMax', [open], { keepdims: 0 })], { to: 9 });
    },
    first: '',
    finished0: '',
  };
  loop.first = loop.choose(g, prefill.logits, g.constant('int64', [0], []));
  loop.finished0 = g.op('Equal', [loop.first, eosId]);
  if (cache === 'concat') concatLoop(loop);
  else bufferLoop(loop);
}

/** What both loop bodies share: the outer graph's values and the token choice. */
interface GreedyLoop {
  b: Blocks;
  cfg: ModelConfig;
  numLayers: number;
  kvDtype: KvDtype;
  io: StepInputs;
  steps: string;
  nextPosition: string;
  slotPositions: string;
  prefill: StepOutputs;
  eosId: string;
  /** The next token of every row: argmax of `logits`, eos banned while `index` < min_new_tokens. */
  choose(gb: GraphBuilder, logits: string, index: string): string;
  /** bool []: whether any row has not produced eos (the Loop's condition). */
  anyUnfinished(gb: GraphBuilder, finished: string): string;
  /** int64 [B, 1]: the prefill's token, and whether it was eos. */
  first: string;
  finished0: string;
}

/** [B, L] bool -> float32 additive bias [B, 1, 1, L]. */
function toBias(gb: GraphBuilder, masked: string): string {
  return gb.op('Unsqueeze', [gb.op('Where', [masked, gb.scalar('float32', MASKED), gb.scalar('float32', 0)]), gb.int64s([1, 2])]);
}

/**
 * The 'buffer' loop. Carried: tokens [B, G], pos [B, 1], finished [B, 1] and, per layer, the
 * generated keys and values, float32 [B, kvHeads, greedy_steps, D] (zeros at first; values
 * rounded to kvDtype as the host loop's cache holds them). Step `iter` writes its token's key and
 * value at slot `iter` and attends over [prefill part, generated part] with biases derived from
 * `iter` and the step's position: generated slots after `iter` are masked, and on sliding layers
 * also those at or before `iter - window` (their positions are consecutive from next_position).
 * present_* are the prefill's cache: the loop's buffers are no graph outputs, so nothing the size
 * of the cache leaves the graph unless the caller fetches present_* (the host loop does).
 */
function bufferLoop(l: GreedyLoop): void {
  const { b, cfg, numLayers, kvDtype, io, prefill } = l;
  const g = b.g;
  const t = cfg.text;
  const KV = t.numKvHeads;
  const D = t.headDim;
  const window = io.biasSliding ? t.slidingWindow! : null;

  // Loop-invariant values, computed once in the outer graph and read by every step.
  const batch = g.op('Slice', [g.op('Shape', [l.nextPosition]), g.int64s([0]), g.int64s([1])]);
  const stepsDim = g.op('Reshape', [l.steps, g.int64s([1])]);
  // ConstantOfShape without a value: float32 zeros.
  const emptyBuffer = g.op('ConstantOfShape', [g.op('Concat', [batch, g.int64s([KV]), stepsDim, g.int64s([D])], { axis: 0 })]);
  const slotShape = g.op('Concat', [batch, g.int64s([KV, 1, D])], { axis: 0 });
  const generatedSlots = g.op('Range', [g.constant('int64', [0], []), l.steps, g.constant('int64', [1], [])]);
  const generatedBiasShape = g.op('Concat', [batch, g.int64s([1, 1]), stepsDim], { axis: 0 });
  const lengths = g.op('Concat', [g.op('Slice', [g.op('Shape', [l.slotPositions]), g.int64s([1]), g.int64s([2])]), stepsDim], { axis: 0 });
  const prefixBias = toBias(g, g.op('Less', [l.slotPositions, g.constant('int64', [0], [])]));

  const body = g.body('greedy_step');
  const bb = new Blocks(body, b.w, b.p);
  const iter = body.input(g.fresh('iter'), 'int64', []);
  body.input(g.fresh('cond_in'), 'bool', []);
  const tokens = body.input(g.fresh('tokens'), 'int64', ['batch', 'generated']);
  const pos = body.input(g.fresh('pos'), 'int64', ['batch', 1]);
  const finished = body.input(g.fresh('finished'), 'bool', ['batch', 1]);
  const generated = Array.from({ length: numLayers }, () => ({
    key: body.input(g.fresh('loop_generated_key'), 'float32', ['batch', KV, 'greedy_steps', D]),
    value: body.input(g.fresh('loop_generated_value'), 'float32', ['batch', KV, 'greedy_steps', D]),
  }));
  // [B, 1, 1, P + S]: the prefix part's bias and the generated part's, [S] masked -> [B, 1, 1, S].
  const joined = (prefix: string, generatedMasked: string) => {
    const generatedBias = body.op('Where', [generatedMasked, body.scalar('float32', MASKED), body.scalar('float32', 0)]);
    return body.op('Concat', [prefix, body.op('Expand', [generatedBias, generatedBiasShape])], { axis: 3 });
  };
  const notYet = body.op('Greater', [generatedSlots, iter]);
  const bias = joined(prefixBias, notYet);
  const biasSliding =
    window === null
      ? null
      : joined(
          toBias(body, body.op('LessOrEqual', [l.slotPositions, body.op('Sub', [pos, body.constant('int64', [window], [])])])),
          body.op('Or', [notYet, body.op('LessOrEqual', [generatedSlots, body.op('Sub', [iter, body.constant('int64', [window], [])])])]),
        );
  const last = body.op('Slice', [tokens, body.int64s([-1]), body.int64s([Number.MAX_SAFE_INTEGER]), body.int64s([1])]);
  const step = decoderStep({
    b: bb,
    cfg,
    numLayers,
    kvDtype,
    io: {
      inputIds: last,
      imageFeatures: null,
      positionIds: pos,
      bias,
      biasSliding,
      past: [],
      loop: { prefix: prefill.attended, generated, slot: body.op('Expand', [iter, slotShape]), lengths, bias, biasSliding },
    },
  });
  const next = l.choose(body, step.logits, body.op('Add', [iter, body.constant('int64', [1], [])]));
  const nowFinished = body.op('Or', [finished, body.op('Equal', [next, l.eosId])]);
  const bodyOuts: [string, DTypeName, Dim[]][] = [
    [l.anyUnfinished(body, nowFinished), 'bool', []],
    [body.op('Concat', [tokens, next], { axis: 1 }), 'int64', ['batch', 'generated_next']],
    [body.op('Add', [pos, body.constant('int64', [1], [])]), 'int64', ['batch', 1]],
    [nowFinished, 'bool', ['batch', 1]],
    ...step.presents.flatMap((p): [string, DTypeName, Dim[]][] => [
      [p.key, 'float32', ['batch', KV, 'greedy_steps', D]],
      [p.value, 'float32', ['batch', KV, 'greedy_steps', D]],
    ]),
  ];
  for (const [name, dtype, dims] of bodyOuts) body.output(name, name, dtype, dims);

  const carried = [l.first, l.nextPosition, l.finished0, ...generated.flatMap(() => [emptyBuffer, emptyBuffer])];
  const outNames = [
    'generated_ids',
    g.fresh('final_position'),
    g.fresh('final_finished'),
    ...generated.flatMap(() => [g.fresh('final_generated_key'), g.fresh('final_generated_value')]),
  ];
  g.opN('Loop', [l.steps, l.anyUnfinished(g, l.finished0), ...carried], outNames.length, { body: new GraphAttr(body.toGraph()) }, { outputs: outNames });
  g.output('generated_ids', 'generated_ids', 'int64', ['batch', 'generated']);
  declareStepOutputs(b, cfg, kvDtype, prefill);
}

/** The 'concat' loop: the whole cache carried and grown by Concat every step. */
function concatLoop(l: GreedyLoop): void {
  const { b, cfg, numLayers, kvDtype, io, prefill } = l;
  const g = b.g;
  const t = cfg.text;
  const body = g.body('greedy_step');
  const bb = new Blocks(body, b.w, b.p);
  const KV = t.numKvHeads;
  const D = t.headDim;
  const iter = body.input(g.fresh('iter'), 'int64', []);
  body.input(g.fresh('cond_in'), 'bool', []);
  const tokens = body.input(g.fresh('tokens'), 'int64', ['batch', 'generated']);
  const pos = body.input(g.fresh('pos'), 'int64', ['batch', 1]);
  const slots = body.input(g.fresh('slots'), 'int64', ['batch', 'past_len']);
  const finished = body.input(g.fresh('finished'), 'bool', ['batch', 1]);
  const past = Array.from({ length: numLayers }, () => ({
    key: body.input(g.fresh('loop_past_key'), kvDtype, ['batch', KV, 'past_len', D]),
    value: body.input(g.fresh('loop_past_value'), kvDtype, ['batch', KV, 'past_len', D]),
  }));
  const allSlots = body.op('Concat', [slots, pos], { axis: 1 });
  const bias = toBias(body, body.op('Less', [allSlots, body.constant('int64', [0], [])]));
  // Sliding layers: a generated token sees slots with position > its position - window (masks.ts).
  const biasSliding = io.biasSliding ? toBias(body, body.op('LessOrEqual', [allSlots, body.op('Sub', [pos, body.constant('int64', [t.slidingWindow!], [])])])) : null;
  const last = body.op('Slice', [tokens, body.int64s([-1]), body.int64s([Number.MAX_SAFE_INTEGER]), body.int64s([1])]);
  const step = decoderStep({ b: bb, cfg, numLayers, kvDtype, io: { inputIds: last, imageFeatures: null, positionIds: pos, bias, biasSliding, past } });
  const next = l.choose(body, step.logits, body.op('Add', [iter, body.constant('int64', [1], [])]));
  const nowFinished = body.op('Or', [finished, body.op('Equal', [next, l.eosId])]);
  const bodyOuts: [string, DTypeName, Dim[]][] = [
    [l.anyUnfinished(body, nowFinished), 'bool', []],
    [body.op('Concat', [tokens, next], { axis: 1 }), 'int64', ['batch', 'generated_next']],
    [body.op('Add', [pos, body.constant('int64', [1], [])]), 'int64', ['batch', 1]],
    [allSlots, 'int64', ['batch', 'total_len']],
    [nowFinished, 'bool', ['batch', 1]],
    ...step.presents.flatMap((p): [string, DTypeName, Dim[]][] => [
      [p.key, kvDtype, ['batch', KV, 'total_len', D]],
      [p.value, kvDtype, ['batch', KV, 'total_len', D]],
    ]),
  ];
  for (const [name, dtype, dims] of bodyOuts) body.output(name, name, dtype, dims);

  const carried = [l.first, l.nextPosition, l.slotPositions, l.finished0, ...prefill.presents.flatMap((p) => [p.key, p.value])];
  const outNames = [
    'generated_ids',
    g.fresh('final_position'),
    g.fresh('final_slots'),
    g.fresh('final_finished'),
    ...prefill.presents.flatMap((_, i) => [`present_key.${i}`, `present_value.${i}`]),
  ];
  g.opN('Loop', [l.steps, l.anyUnfinished(g, l.finished0), ...carried], outNames.length, { body: new GraphAttr(body.toGraph()) }, { outputs: outNames });
  g.output('generated_ids', 'generated_ids', 'int64', ['batch', 'generated']);
  // The cache after the last step: the Loop's outputs, already named present_*.
  const presents = Array.from({ length: numLayers }, (_, i) => ({ key: `present_key.${i}`, value: `present_value.${i}` }));
  declareStepOutputs(b, cfg, kvDtype, { logits: prefill.logits, presents, attended: [] });
}

function declareStepInputs(b: Blocks, cfg: ModelConfig, numLayers: number, kvDtype: KvDtype): StepInputs {
  const g = b.g;
  const t = cfg.text;
  const hasSliding = t.layerTypes.slice(0, numLayers).includes('sliding');
  const inputIds = g.input('input_ids', 'int64', ['batch', 'text_len']);
  const imageFeatures = g.input('image_features', 'float32', ['batch', 'image_len', t.hiddenSize]);
  const positionIds = g.input('position_ids', 'int64', ['batch', 'seq_len']);
  const bias = g.input('attention_bias', 'float32', ['batch', 1, 'seq_len', 'total_len']);
  const biasSliding = hasSliding ? g.input('attention_bias_sliding', 'float32', ['batch', 1, 'seq_len', 'total_len']) : null;
  const past = Array.from({ length: numLayers }, (_, i) => ({
    key: g.input(`past_key.${i}`, kvDtype, ['batch', t.numKvHeads, 'past_len', t.headDim]),
    value: g.input(`past_value.${i}`, kvDtype, ['batch', t.numKvHeads, 'past_len', t.headDim]),
  }));
  return { inputIds, imageFeatures, positionIds, bias, biasSliding, past };
}

function declareStepOutputs(b: Blocks, cfg: ModelConfig, kvDtype: KvDtype, out: StepOutputs): void {
  const t = cfg.text;
  out.presents.forEach((p, i) => {
    b.g.output(`present_key.${i}`, p.key, kvDtype, ['batch', t.numKvHeads, 'total_len', t.headDim]);
    b.g.output(`present_value.${i}`, p.value, kvDtype, ['batch', t.numKvHeads, 'total_len', t.headDim]);
  });
  b.g.output('logits', out.logits, 'float32', ['batch', t.vocabSize]);
}

/** One decoder run to emit: where (a graph or a loop body), what model, over which values. */
export interface StepSpec {
  b: Blocks;
  cfg: ModelConfig;
  numLayers: number;
  kvDtype: KvDtype;
  io: StepInputs;
  onLayer?: (i: number) => void;
  /** Names for the present_* values (decoder.onnx's outputs); generated names otherwise. */
  presentName?: (i: number, kind: 'key' | 'value') => string;
}

/** What every layer of a step reads: the step and the building blocks of its op set. */
interface LayerContext extends StepSpec {
  ops: LayerOps;
}

/**
 * The building blocks whose ops differ between standard ONNX and onnxruntime's fused contrib ops
 * (Precision.fusedOps); the layer itself (decoderLayer) is the same for both.
 */
interface LayerOps {
  residual: Residual;
  /** RMSNorm of x (a sub-layer's input, or Gemma 2's post-norms of its output). */
  norm(x: string, weight: string): string;
  /** q [B, heads, S, D] and k, v [B, kvHeads, S, D] of the normalised input, RoPE applied. */
  queryKeyValue(x: string, layer: string): { q: string; k: string; v: string };
  /** The gated MLP's activated gate and its up projection. */
  gateUp(x: string, layer: string): { gate: string; up: string };
}

/** The decoder layers over `io`, emitted into `b.g` (a graph or a loop body). */
export function decoderStep(spec: StepSpec): StepOutputs {
  const { b, cfg, io } = spec;
  const g = b.g;
  const t = cfg.text;
  const H = t.hiddenSize;

  const embed = embeddingTable(b, cfg);
  // The normalizer is a tensor of the compute dtype in HF: sqrt(hidden) rounded to it.
  const normalizer = b.p.matmul === 'float16' ? halfBitsToFloat(toHalfBits(Math.sqrt(H))) : Math.fround(Math.sqrt(H));
  const embeds = io.embeds ?? (io.imageFeatures ? g.op('Concat', [io.imageFeatures, embed.gather(io.inputIds)], { axis: 1 }) : embed.gather(io.inputIds));
  const h = g.op('Mul', [embeds, g.scalar('float32', normalizer)]);

  const ctx: LayerContext = { ...spec, ops: b.p.fusedOps ? fusedOps(spec, h) : standardOps(spec, h) };
  const presents: { key: string; value: string }[] = [];
  const attended: { key: string; value: string }[] = [];
  for (let i = 0; i < spec.numLayers; i++) {
    const layer = decoderLayer(ctx, i);
    presents.push(layer.present);
    attended.push(layer.attended);
    spec.onLayer?.(i);
  }

  // Norm is per position: take the last position first.
  const last = g.op('Gather', [ctx.ops.residual.current, g.constant('int64', [-1], [])], { axis: 1 });
  const normed = b.rmsNorm(last, 'text.norm.weight', t.rmsNormEps);
  // No final logit softcap: transformers' PaliGemmaForConditionalGeneration applies its own
  // lm_head to the Gemma 2 model's hidden states and never calls Gemma2ForCausalLM's softcap
  // (the golden outputs confirm it). The cap is monotonic, so greedy decoding is unaffected;
  // the manifest records it (text.finalLogitSoftcap) for runtimes that want big_vision's scores.
  return { logits: embed.project(normed), presents, attended };
}

/**
 * Layer i of Gemma (modeling_gemma) or Gemma 2 (modeling_gemma2, with post-norms after attention
 * and the MLP): pre-norm, attention over the cache, residual add, pre-norm, gated GELU MLP,
 * residual add. Returns the layer's present key and value, and those its attention read.
 */
function decoderLayer(ctx: LayerContext, i: number): CachedAttention {
  const { b, ops } = ctx;
  const t = ctx.cfg.text;
  const p = `text.layers.${i}.`;
  const gemma2 = t.modelType === 'gemma2';
  // The pre-norm of a sub-layer; with fused ops one node with the residual add before it.
  const preNorm = (weight: string) =>
    ops.residual.norm(
      (x) => ops.norm(x, weight),
      (x, residual) => b.skipRmsNorm(x, residual, weight, t.rmsNormEps),
    );

  const { q, k, v } = ops.queryKeyValue(preNorm(`${p}input_layernorm.weight`), p);
  const { out, ...cache } = cachedAttention(ctx, i, q, k, v);
  let a = b.linear(out, `${p}self_attn.o_proj.weight`, null);
  if (gemma2) a = ops.norm(a, `${p}post_attention_layernorm.weight`);
  ops.residual.add(a);

  const x = preNorm(gemma2 ? `${p}pre_feedforward_layernorm.weight` : `${p}post_attention_layernorm.weight`);
  const { gate, up } = ops.gateUp(x, p);
  let m = b.linear(b.g.op('Mul', [gate, up]), `${p}mlp.down_proj.weight`, null);
  if (gemma2) m = ops.norm(m, `${p}post_feedforward_layernorm.weight`);
  ops.residual.add(m);
  return cache;
}

/** Standard ONNX ops: RMSNorm, each projection its own matmul, RoPE from cos/sin tables of the positions. */
function standardOps({ b, cfg, io }: StepSpec, embeds: string): LayerOps {
  const t = cfg.text;
  const D = t.headDim;
  const eps = t.rmsNormEps;
  const rope = b.ropeTables(io.positionIds, D, t.ropeTheta);
  const heads = (x: string, weight: string, count: number) => b.splitHeads(b.linear(x, weight, null), count, D);
  return {
    residual: new AddedResidual(b.g, embeds),
    norm: (x, weight) => b.rmsNorm(x, weight, eps),
    queryKeyValue: (x, p) => {
      const q = heads(x, `${p}self_attn.q_proj.weight`, t.numHeads);
      const k = heads(x, `${p}self_attn.k_proj.weight`, t.numKvHeads);
      const v = heads(x, `${p}self_attn.v_proj.weight`, t.numKvHeads);
      return { q: b.applyRope(q, rope, D), k: b.applyRope(k, rope, D), v };
    },
    gateUp: (x, p) => ({ gate: b.gelu(b.linear(x, `${p}mlp.gate_proj.weight`, null), t.activation), up: b.linear(x, `${p}mlp.up_proj.weight`, null) }),
  };
}

/**
 * onnxruntime's fused contrib ops: RMSNorm and the residual add before it in one
 * SkipSimplifiedLayerNormalization, q/k/v and gate/up as one matmul each, RoPE as
 * RotaryEmbedding on [B, S, heads * D], and FastGelu.
 */
function fusedOps({ b, cfg, io }: StepSpec, embeds: string): LayerOps {
  const t = cfg.text;
  const D = t.headDim;
  const eps = t.rmsNormEps;
  const caches = b.ropeCaches(D, t.ropeTheta, t.maxPositions);
  const split = (y: string, heads: number) => b.splitHeads(y, heads, D);
  return {
    residual: new ResidualStream(b.g, embeds),
    norm: (x, weight) => b.rmsNormFused(x, weight, eps),
    queryKeyValue: (x, p) => {
      const [qProj, kProj, v] = b.linears(
        x,
        ['q_proj', 'k_proj', 'v_proj'].map((n) => `${p}self_attn.${n}.weight`),
        `${p}self_attn.qkv_proj`,
      );
      const q = b.rope(qProj, io.positionIds, caches, t.numHeads);
      const k = b.rope(kProj, io.positionIds, caches, t.numKvHeads);
      return { q: split(q, t.numHeads), k: split(k, t.numKvHeads), v: split(v, t.numKvHeads) };
    },
    gateUp: (x, p) => {
      const [gateProj, up] = b.linears(x, [`${p}mlp.gate_proj.weight`, `${p}mlp.up_proj.weight`], `${p}mlp.gate_up_proj`);
      return { gate: t.activation === 'gelu_tanh' ? b.fastGelu(gateProj) : b.gelu(gateProj, t.activation), up };
    },
  };
}

interface CachedAttention {
  present: { key: string; value: string };
  attended: { key: string; value: string };
}

/**
 * Layer i's attention: appends k and v ([B, kvHeads, S, D]) to its cache (the present_* values)
 * and attends q ([B, heads, S, D]) over it with the layer's bias; out [B, S, heads * D]. In standard
 * ops in both op sets: onnxruntime 1.29 has no fused op that takes Gemma 2's softcap, and its
 * WebGPU MultiHeadAttention is off by up to 0.25 over 266 unmasked keys (1e-7 on the CPU EP;
 * measured on lavapipe), so Gemma 1 does not use it either. In the 'buffer' loop's body the
 * new key and value are written at the step's slot of the generated part instead, and q attends
 * over both parts.
 */
function cachedAttention({ b, cfg, kvDtype, io, presentName }: LayerContext, i: number, q: string, k: string, v: string): CachedAttention & { out: string } {
  const t = cfg.text;
  const g = b.g;
  const asKv = (y: string) => (kvDtype === 'float16' ? b.cast(y, 'float16') : y);
  const fromKv = (y: string) => (kvDtype === 'float16' ? b.cast(y, 'float32') : y);
  const shape = { heads: t.numHeads, kvHeads: t.numKvHeads, headDim: t.headDim, scale: t.attnScale, softcap: t.attnSoftcap };
  const sliding = t.layerTypes[i] === 'sliding';
  if (io.loop) {
    const c = io.loop;
    // Rounded to kvDtype as the host loop's cache holds it.
    const write = (buffer: string, y: string) => g.op('ScatterElements', [buffer, c.slot, fromKv(asKv(y))], { axis: 2 });
    const key = write(c.generated[i].key, k);
    const value = write(c.generated[i].value, v);
    const bias = sliding && c.biasSliding ? c.biasSliding : c.bias;
    const attn = b.attentionOverParts(q, [c.prefix[i].key, key], [c.prefix[i].value, value], { ...shape, bias, lengths: c.lengths });
    return { out: b.mergeHeads(attn, t.numHeads, t.headDim), present: { key, value }, attended: { key, value } };
  }
  const named = (kind: 'key' | 'value') => (presentName ? { outputs: [presentName(i, kind)] } : {});
  const key = g.op('Concat', [io.past[i].key, asKv(k)], { axis: 2 }, named('key'));
  const value = g.op('Concat', [io.past[i].value, asKv(v)], { axis: 2 }, named('value'));
  const attended = { key: fromKv(key), value: fromKv(value) };
  const attn = b.attention(q, attended.key, attended.value, { ...shape, bias: sliding && io.biasSliding ? io.biasSliding : io.bias });
  return { out: b.mergeHeads(attn, t.numHeads, t.headDim), present: { key, value }, attended };
}

export interface EmbeddingTable {
  /** input_ids [B, T] -> float32 [B, T, H] */
  gather(ids: string): string;
  /** float32 [B, H] -> float32 logits [B, V] */
  project(x: string): string;
}

/**
 * The embedding matrix, written once and streamed in row chunks. float32/float16: one
 * initializer used by Gather and by the lm_head Gemm (transB=1). int4 and int8: the lm_head is a
 * MatMulNBits over the quantised rows and the lookup a GatherBlockQuantized over the same
 * packed bytes with their own shape (onnxruntime prepacks MatMulNBits weights, so it cannot
 * share an initializer with the lookup).
 */
export function embeddingTable(b: Blocks, cfg: ModelConfig): EmbeddingTable {
  const g = b.g;
  const t = cfg.text;
  const V = t.vocabSize;
  const H = t.hiddenSize;
  const name = 'text.embed_tokens.weight';
  const chunks = (emit: (rows: Float32Array, count: number) => void, source = name) => {
    for (let r = 0; r < V; r += ROWS_PER_CHUNK) {
      const count = Math.min(ROWS_PER_CHUNK, V - r);
      emit(b.w.readRows(source, r, count), count);
    }
  };
  const floatTable = (dtype: 'float32' | 'float16', source: string) =>
    b.once(source, () => g.streamedInitializer(source, dtype, [V, H], (write) => chunks((rows) => write(dtype === 'float16' ? float32ToFloat16(rows) : rows), source)));
  const gemmHead = (table: string, dtype: 'float32' | 'float16') => (x: string) => {
    const y = g.op('Gemm', [dtype === 'float16' ? b.cast(x, 'float16') : x, table], { transB: 1 });
    return dtype === 'float16' ? b.cast(y, 'float32') : y;
  };

  if (b.p.weights !== 'int4' && b.p.weights !== 'int8') {
    const dtype = b.p.weights === 'fp16' ? 'float16' : 'float32';
    const table = floatTable(dtype, name);
    const head = t.tieWordEmbeddings ? table : floatTable(dtype, 'text.lm_head.weight');
    return {
      gather: (ids) => {
        const e = g.op('Gather', [table, ids], { axis: 0 });
        return dtype === 'float16' ? b.cast(e, 'float32') : e;
      },
      project: gemmHead(head, dtype),
    };
  }

  // int8 graphs keep the table in 8 bits per value, block-wise like int4's: the lm_head runs one row
  // per step, where MatMulNBits reads it as fast as a per-channel int8 GEMM would, and the lookup
  // (GatherBlockQuantized) reads the same bytes.
  const bits = b.p.weights === 'int8' ? 8 : 4;
  if (H % INT4_BLOCK !== 0) {
    // GatherBlockQuantized reads rows of exactly H * bits / 8 bytes: no padded last block.
    throw new EngineError('convert-failed', `${b.p.weights} needs a hidden size that is a multiple of ${INT4_BLOCK} (got ${H})`);
  }
  const quantizedTable = (source: string) => {
    const kBlocks = H / INT4_BLOCK;
    const blob = (INT4_BLOCK * bits) / 8;
    const zpBytes = bits === 8 ? kBlocks : int4Dims(H, INT4_BLOCK).zpBytes;
    const names = { packed: `${source}.q${bits}`, scales: `${source}.scales`, zps: `${source}.zp` };
    if (!g.hasInitializer(names.packed)) {
      const scales = new Float32Array(V * kBlocks);
      const zps = new Uint8Array(V * zpBytes);
      let row = 0;
      g.streamedInitializer(names.packed, 'uint8', [V, kBlocks * blob], (write) =>
        chunks((rows, count) => {
          const q = bits === 8 ? quantizeUint8Rows(rows, count, H, INT4_BLOCK) : quantizeInt4Rows(rows, count, H, INT4_BLOCK);
          scales.set(q.scales, row * kBlocks);
          zps.set(q.zeroPoints, row * zpBytes);
          row += count;
          write(q.packed);
        }, source),
      );
      g.initializer(names.scales, 'float32', [V, kBlocks], scales);
      g.initializer(names.zps, 'uint8', [V, zpBytes], zps);
    }
    return { ...names, kBlocks, blob };
  };
  const table = quantizedTable(name);
  const matmulNBits = (x: string, w: ReturnType<typeof quantizedTable>) => {
    // Built once in the outermost graph, so the loop body reuses it instead of folding a copy.
    const B = g.shared(`${w.packed}.3d`, (root) => root.op('Reshape', [w.packed, root.int64s([V, w.kBlocks, w.blob])]));
    return g.op('MatMulNBits', [x, B, w.scales, w.zps], { K: H, N: V, bits, block_size: INT4_BLOCK, accuracy_level: b.p.accuracyLevel ?? 0 }, { domain: MS_DOMAIN });
  };
  const head = t.tieWordEmbeddings ? table : quantizedTable('text.lm_head.weight');
  return {
    gather: (ids) =>
      g.op('GatherBlockQuantized', [table.packed, ids, table.scales, table.zps], { gather_axis: 0, quantize_axis: 1, block_size: INT4_BLOCK, bits }, { domain: MS_DOMAIN }),
    project: (x) => matmulNBits(x, head),
  };
}
