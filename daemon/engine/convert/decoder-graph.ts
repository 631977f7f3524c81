// decoder.onnx: one graph for prefill and decode steps (DESIGN.md "Graph interfaces").
// Gemma (PaliGemma 1) and Gemma 2 (PaliGemma 2) layers as in modeling_gemma / modeling_gemma2:
// embeddings x normalizer, RMSNorm (1 + w), RoPE, grouped-query attention with an additive
// bias (Gemma 2: attention softcap before the bias, sliding-window layers get their own bias,
// four norms per layer), gated GELU MLP, final norm, tied lm_head on the last position only.
import { MS_DOMAIN, toHalfBits, halfBitsToFloat, float32ToFloat16 } from '../onnx/builder.js';
import { EngineError } from '../errors.js';
import { Blocks } from './blocks.js';
import type { ModelConfig } from './config.js';
import { INT4_BLOCK, int4Dims, quantizeInt4Rows } from './quantize.js';

export type KvDtype = 'float32' | 'float16';

const ROWS_PER_CHUNK = 4096;

export function buildDecoderGraph(
  b: Blocks,
  cfg: ModelConfig,
  numLayers: number,
  kvDtype: KvDtype,
  onLayer?: (i: number) => void,
): void {
  const g = b.g;
  const t = cfg.text;
  const H = t.hiddenSize;
  const D = t.headDim;
  const KV = t.numKvHeads;
  const layerTypes = t.layerTypes.slice(0, numLayers);
  const hasSliding = layerTypes.includes('sliding');

  const inputIds = g.input('input_ids', 'int64', ['batch', 'text_len']);
  const imageFeatures = g.input('image_features', 'float32', ['batch', 'image_len', H]);
  const positionIds = g.input('position_ids', 'int64', ['batch', 'seq_len']);
  const bias = g.input('attention_bias', 'float32', ['batch', 1, 'seq_len', 'total_len']);
  const biasSliding = hasSliding ? g.input('attention_bias_sliding', 'float32', ['batch', 1, 'seq_len', 'total_len']) : null;
  const past: { key: string; value: string }[] = [];
  for (let i = 0; i < numLayers; i++) {
    past.push({
      key: g.input(`past_key.${i}`, kvDtype, ['batch', KV, 'past_len', D]),
      value: g.input(`past_value.${i}`, kvDtype, ['batch', KV, 'past_len', D]),
    });
  }

  const embed = embeddingTable(b, cfg);
  const textEmbeds = embed.gather(inputIds);
  // The normalizer is a tensor of the compute dtype in HF: sqrt(hidden) rounded to it.
  const normalizer = b.p.matmul === 'float16' ? halfBitsToFloat(toHalfBits(Math.sqrt(H))) : Math.fround(Math.sqrt(H));
  let h = g.op('Mul', [g.op('Concat', [imageFeatures, textEmbeds], { axis: 1 }), g.scalar('float32', normalizer)]);

  const rope = b.ropeTables(positionIds, D, t.ropeTheta);
  for (let i = 0; i < numLayers; i++) {
    const p = `text.layers.${i}.`;
    const gemma2 = t.modelType === 'gemma2';
    const residual = h;
    let x = b.rmsNorm(h, `${p}input_layernorm.weight`, t.rmsNormEps);

    let q = b.splitHeads(b.linear(x, `${p}self_attn.q_proj.weight`, null), t.numHeads, D);
    let k = b.splitHeads(b.linear(x, `${p}self_attn.k_proj.weight`, null), KV, D);
    let v = b.splitHeads(b.linear(x, `${p}self_attn.v_proj.weight`, null), KV, D);
    q = b.applyRope(q, rope, D);
    k = b.applyRope(k, rope, D);
    const asKv = (y: string) => (kvDtype === 'float16' ? b.cast(y, 'float16') : y);
    const presentK = g.op('Concat', [past[i].key, asKv(k)], { axis: 2 }, { outputs: [`present_key.${i}`] });
    const presentV = g.op('Concat', [past[i].value, asKv(v)], { axis: 2 }, { outputs: [`present_value.${i}`] });
    g.output(`present_key.${i}`, presentK, kvDtype, ['batch', KV, 'total_len', D]);
    g.output(`present_value.${i}`, presentV, kvDtype, ['batch', KV, 'total_len', D]);
    const fromKv = (y: string) => (kvDtype === 'float16' ? b.cast(y, 'float32') : y);
    const attn = b.attention(q, fromKv(presentK), fromKv(presentV), {
      heads: t.numHeads,
      kvHeads: KV,
      headDim: D,
      scale: t.attnScale,
      softcap: t.attnSoftcap,
      bias: layerTypes[i] === 'sliding' && biasSliding ? biasSliding : bias,
    });
    let a = b.linear(b.mergeHeads(attn, t.numHeads, D), `${p}self_attn.o_proj.weight`, null);
    if (gemma2) a = b.rmsNorm(a, `${p}post_attention_layernorm.weight`, t.rmsNormEps);
    h = g.op('Add', [residual, a]);

    x = b.rmsNorm(h, gemma2 ? `${p}pre_feedforward_layernorm.weight` : `${p}post_attention_layernorm.weight`, t.rmsNormEps);
    const gate = b.gelu(b.linear(x, `${p}mlp.gate_proj.weight`, null), t.activation);
    const up = b.linear(x, `${p}mlp.up_proj.weight`, null);
    let m = b.linear(g.op('Mul', [gate, up]), `${p}mlp.down_proj.weight`, null);
    if (gemma2) m = b.rmsNorm(m, `${p}post_feedforward_layernorm.weight`, t.rmsNormEps);
    h = g.op('Add', [h, m]);
    onLayer?.(i);
  }

  // Norm is per position: take the last position first.
  const last = g.op('Gather', [h, g.constant('int64', [-1], [])], { axis: 1 });
  const normed = b.rmsNorm(last, 'text.norm.weight', t.rmsNormEps);
  // No final logit softcap: transformers' PaliGemmaForConditionalGeneration applies its own
  // lm_head to the Gemma 2 model's hidden states and never calls Gemma2ForCausalLM's softcap
  // (the golden outputs confirm it). The cap is monotonic, so greedy decoding is unaffected;
  // the manifest records it (text.finalLogitSoftcap) for runtimes that want big_vision's scores.
  g.output('logits', embed.project(normed), 'float32', ['batch', t.vocabSize]);
}

interface EmbeddingTable {
  /** input_ids [B, T] -> float32 [B, T, H] */
  gather(ids: string): string;
  /** float32 [B, H] -> float32 logits [B, V] */
  project(x: string): string;
}

/**
 * The embedding matrix, written once and streamed in row chunks. float32/float16: one
 * initializer used by Gather and by the lm_head Gemm (transB=1). int4: the lm_head is a
 * MatMulNBits over the quantised rows and the lookup a GatherBlockQuantized over the same
 * packed bytes with their own shape (onnxruntime prepacks MatMulNBits weights, so it cannot
 * share an initializer with the lookup).
 */
function embeddingTable(b: Blocks, cfg: ModelConfig): EmbeddingTable {
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
    g.streamedInitializer(source, dtype, [V, H], (write) =>
      chunks((rows) => write(dtype === 'float16' ? float32ToFloat16(rows) : rows), source),
    );
  const gemmHead = (table: string, dtype: 'float32' | 'float16') => (x: string) => {
    const y = g.op('Gemm', [dtype === 'float16' ? b.cast(x, 'float16') : x, table], { transB: 1 });
    return dtype === 'float16' ? b.cast(y, 'float32') : y;
  };

  if (b.p.weights !== 'int4') {
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

  if (H % INT4_BLOCK !== 0) {
    // GatherBlockQuantized reads rows of exactly H / 2 bytes: no padded last block.
    throw new EngineError('convert-failed', `int4 needs a hidden size that is a multiple of ${INT4_BLOCK} (got ${H})`);
  }
  const q4 = (source: string) => {
    const { kBlocks, blob, zpBytes } = int4Dims(H, INT4_BLOCK);
    const scales = new Float32Array(V * kBlocks);
    const zps = new Uint8Array(V * zpBytes);
    let row = 0;
    const packed = g.streamedInitializer(`${source}.q4`, 'uint8', [V, kBlocks * blob], (write) =>
      chunks((rows, count) => {
        const q = quantizeInt4Rows(rows, count, H, INT4_BLOCK);
        scales.set(q.scales, row * kBlocks);
        zps.set(q.zeroPoints, row * zpBytes);
        row += count;
        write(q.packed);
      }, source),
    );
    return {
      packed,
      scales: g.initializer(`${source}.scales`, 'float32', [V, kBlocks], scales),
      zps: g.initializer(`${source}.zp`, 'uint8', [V, zpBytes], zps),
      kBlocks,
      blob,
    };
  };
  const table = q4(name);
  const matmulNBits = (x: string, w: ReturnType<typeof q4>) => {
    const B = g.op('Reshape', [w.packed, g.int64s([V, w.kBlocks, w.blob])]);
    return g.op('MatMulNBits', [x, B, w.scales, w.zps], { K: H, N: V, bits: 4, block_size: INT4_BLOCK, accuracy_level: b.p.accuracyLevel ?? 0 }, { domain: MS_DOMAIN });
  };
  const head = t.tieWordEmbeddings ? table : q4('text.lm_head.weight');
  return {
    gather: (ids) =>
      g.op('GatherBlockQuantized', [table.packed, ids, table.scales, table.zps], { gather_axis: 0, quantize_axis: 1, block_size: INT4_BLOCK, bits: 4 }, { domain: MS_DOMAIN }),
    project: (x) => matmulNBits(x, head),
  };
}
