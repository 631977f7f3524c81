// vision.onnx: pixel_values [B, 3, S, S] -> image_features [B, N, text hidden]
// SigLIP (modeling_siglip): Conv patch embedding + position embedding, pre-LN encoder layers
// (biased MHA, GELU MLP), post LayerNorm; then PaliGemma's projector Linear and the division by
// sqrt(text hidden) of get_image_features.
import { f, float32ToFloat16 as floatToHalf, MS_DOMAIN, type GraphBuilder } from '../onnx/builder.js';
import { Blocks, ResidualStream } from './blocks.js';
import type { ModelConfig } from './config.js';

export function buildVisionGraph(b: Blocks, cfg: ModelConfig, numLayers: number, onLayer?: (i: number) => void): void {
  const g: GraphBuilder = b.g;
  const v = cfg.vision;
  const C = v.hiddenSize;
  const N = cfg.numImageTokens;
  const px = g.input('pixel_values', 'float32', ['batch', v.numChannels, v.imageSize, v.imageSize]);

  // Patch embedding: Conv kernel = stride = patch, no padding -> [B, C, h, w] -> [B, N, C].
  const convW = b.w.read('vision.embeddings.patch_embedding.weight');
  const convB = b.w.read('vision.embeddings.patch_embedding.bias');
  const [wName, bName] = ['vision.embeddings.patch_embedding.weight', 'vision.embeddings.patch_embedding.bias'];
  const half = b.p.matmul === 'float16';
  const weight = half
    ? g.initializer(wName, 'float16', [C, v.numChannels, v.patchSize, v.patchSize], floatToHalf(convW))
    : g.initializer(wName, 'float32', [C, v.numChannels, v.patchSize, v.patchSize], convW);
  const bias = half ? g.initializer(bName, 'float16', [C], floatToHalf(convB)) : g.initializer(bName, 'float32', [C], convB);
  const patches = b.fromMatmul(
    g.op('Conv', [b.toMatmul(px), weight, bias], { kernel_shape: [v.patchSize, v.patchSize], strides: [v.patchSize, v.patchSize] }),
  );
  const seq = g.op('Transpose', [g.op('Reshape', [patches, g.int64s([0, C, -1])])], { perm: [0, 2, 1] });
  const pos = g.initializer('vision.embeddings.position_embedding.weight', 'float32', [N, C], b.w.read('vision.embeddings.position_embedding.weight'));
  let h = g.op('Add', [seq, pos]);

  const heads = v.numHeads;
  const headDim = C / heads;
  if (b.p.fusedOps) h = fusedEncoder(b, cfg, numLayers, h, onLayer);
  for (let i = 0; i < (b.p.fusedOps ? 0 : numLayers); i++) {
    const p = `vision.encoder.layers.${i}.`;
    let x = b.layerNorm(h, `${p}layer_norm1`, v.layerNormEps);
    const q = b.splitHeads(b.linear(x, `${p}self_attn.q_proj.weight`, `${p}self_attn.q_proj.bias`, { quantize: false }), heads, headDim);
    const k = b.splitHeads(b.linear(x, `${p}self_attn.k_proj.weight`, `${p}self_attn.k_proj.bias`, { quantize: false }), heads, headDim);
    const vv = b.splitHeads(b.linear(x, `${p}self_attn.v_proj.weight`, `${p}self_attn.v_proj.bias`, { quantize: false }), heads, headDim);
    const a = b.attention(q, k, vv, { heads, kvHeads: heads, headDim, scale: headDim ** -0.5, softcap: null, bias: null });
    h = g.op('Add', [h, b.linear(b.mergeHeads(a, heads, headDim), `${p}self_attn.out_proj.weight`, `${p}self_attn.out_proj.bias`, { quantize: false })]);
    x = b.layerNorm(h, `${p}layer_norm2`, v.layerNormEps);
    const m = b.gelu(b.linear(x, `${p}mlp.fc1.weight`, `${p}mlp.fc1.bias`, { quantize: false }), v.activation);
    h = g.op('Add', [h, b.linear(m, `${p}mlp.fc2.weight`, `${p}mlp.fc2.bias`, { quantize: false })]);
    onLayer?.(i);
  }
  h = b.layerNorm(h, 'vision.post_layernorm', v.layerNormEps);

  const projected = b.linear(h, 'projector.linear.weight', 'projector.linear.bias', { quantize: false });
  // PaliGemma: image_features / text_hidden**0.5 (a float32 scalar for float32 features).
  const features = g.op('Div', [projected, g.scalar('float32', Math.sqrt(cfg.text.hiddenSize))]);
  g.output('image_features', features, 'float32', ['batch', N, cfg.projectionDim]);
}

/**
 * The encoder layers with fused contrib ops (Precision.fusedOps): the residual add and the next
 * LayerNorm in one SkipLayerNormalization, FastGelu with the fc1 bias folded in for the tanh GELU.
 */
function fusedEncoder(b: Blocks, cfg: ModelConfig, numLayers: number, embeds: string, onLayer?: (i: number) => void): string {
  const g = b.g;
  const v = cfg.vision;
  const heads = v.numHeads;
  const headDim = v.hiddenSize / heads;
  const eps = v.layerNormEps;
  const stream = new ResidualStream(g, embeds);
  const normed = (prefix: string) =>
    stream.norm(
      (x) => b.layerNorm(x, prefix, eps),
      (x, residual) => b.skipLayerNorm(x, residual, prefix, eps),
    );
  const linear = (x: string, name: string, bias = true) => b.linear(x, `${name}.weight`, bias ? `${name}.bias` : null, { quantize: false });
  for (let i = 0; i < numLayers; i++) {
    const p = `vision.encoder.layers.${i}.`;
    const x = normed(`${p}layer_norm1`);
    // Attention stays in standard ops: onnxruntime's WebGPU MultiHeadAttention is off by up to
    // 1.5e-2 over 64-266 keys (1e-7 on the CPU EP; measured on lavapipe).
    const [q, k, vv] = ['q_proj', 'k_proj', 'v_proj'].map((n) => b.splitHeads(linear(x, `${p}self_attn.${n}`), heads, headDim));
    const a = b.attention(q, k, vv, { heads, kvHeads: heads, headDim, scale: headDim ** -0.5, softcap: null, bias: null });
    stream.add(linear(b.mergeHeads(a, heads, headDim), `${p}self_attn.out_proj`));
    const x2 = normed(`${p}layer_norm2`);
    const fc1 = v.activation === 'gelu_tanh'
      ? b.fastGelu(linear(x2, `${p}mlp.fc1`, false), b.floatBias(`${p}mlp.fc1.bias`))
      : b.gelu(linear(x2, `${p}mlp.fc1`), v.activation);
    stream.add(linear(fc1, `${p}mlp.fc2`));
    onLayer?.(i);
  }
  return stream.current;
}

