// vision.onnx: pixel_values [B, 3, S, S] -> image_features [B, N, text hidden]
// SigLIP (modeling_siglip): Conv patch embedding + position embedding, pre-LN encoder layers
// (biased MHA, GELU MLP), post LayerNorm; then PaliGemma's projector Linear and the division by
// sqrt(text hidden) of get_image_features.
import { float32ToFloat16 as floatToHalf, type GraphBuilder } from '../onnx/builder.js';
import { AddedResidual, Blocks, ResidualStream } from './blocks.js';
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
  const patches = b.fromMatmul(g.op('Conv', [b.toMatmul(px), weight, bias], { kernel_shape: [v.patchSize, v.patchSize], strides: [v.patchSize, v.patchSize] }));
  const seq = g.op('Transpose', [g.op('Reshape', [patches, g.int64s([0, C, -1])])], { perm: [0, 2, 1] });
  const pos = g.initializer('vision.embeddings.position_embedding.weight', 'float32', [N, C], b.w.read('vision.embeddings.position_embedding.weight'));
  let h = g.op('Add', [seq, pos]);

  h = encoder(b, cfg, numLayers, h, onLayer);
  h = b.layerNorm(h, 'vision.post_layernorm', v.layerNormEps);

  const projected = b.linear(h, 'projector.linear.weight', 'projector.linear.bias', { quantize: false });
  // PaliGemma: image_features / text_hidden**0.5 (a float32 scalar for float32 features).
  const features = g.op('Div', [projected, g.scalar('float32', Math.sqrt(cfg.text.hiddenSize))]);
  g.output('image_features', features, 'float32', ['batch', N, cfg.projectionDim]);
}

/** A SigLIP Linear with its bias unless `bias` is false: float, or int8 in an int8 tower (int4 graphs keep it float). */
function visionLinear(b: Blocks, x: string, name: string, bias = true): string {
  return b.linear(x, `${name}.weight`, bias ? `${name}.bias` : null, { quantize: b.p.weights === 'int8' });
}

/**
 * SigLIP self-attention of layer `p` on x [B, N, C], before out_proj: [B, N, C]. In standard ops
 * in both variants: onnxruntime's WebGPU MultiHeadAttention is off by up to 1.5e-2 over 64-266
 * keys (1e-7 on the CPU EP; measured on lavapipe).
 */
function selfAttention(b: Blocks, cfg: ModelConfig, x: string, p: string): string {
  const heads = cfg.vision.numHeads;
  const headDim = cfg.vision.hiddenSize / heads;
  const [q, k, v] = ['q_proj', 'k_proj', 'v_proj'].map((n) => b.splitHeads(visionLinear(b, x, `${p}self_attn.${n}`), heads, headDim));
  const a = b.attention(q, k, v, { heads, kvHeads: heads, headDim, scale: headDim ** -0.5, softcap: null, bias: null });
  return b.mergeHeads(a, heads, headDim);
}

/**
 * The encoder layers: pre-LN, attention, GELU MLP, residual adds. With fused contrib ops
 * (Precision.fusedOps) the residual add and the next LayerNorm are one SkipLayerNormalization, and
 * the tanh GELU a FastGelu with the fc1 bias folded in.
 */
function encoder(b: Blocks, cfg: ModelConfig, numLayers: number, embeds: string, onLayer?: (i: number) => void): string {
  const v = cfg.vision;
  const eps = v.layerNormEps;
  const fused = b.p.fusedOps === true;
  const stream = fused ? new ResidualStream(b.g, embeds) : new AddedResidual(b.g, embeds);
  const normed = (prefix: string) =>
    stream.norm(
      (x) => b.layerNorm(x, prefix, eps),
      (x, residual) => b.skipLayerNorm(x, residual, prefix, eps),
    );
  const mlpIn = (x: string, p: string) =>
    fused && v.activation === 'gelu_tanh'
      ? b.fastGelu(visionLinear(b, x, `${p}mlp.fc1`, false), b.floatBias(`${p}mlp.fc1.bias`))
      : b.gelu(visionLinear(b, x, `${p}mlp.fc1`), v.activation);
  for (let i = 0; i < numLayers; i++) {
    const p = `vision.encoder.layers.${i}.`;
    stream.add(visionLinear(b, selfAttention(b, cfg, normed(`${p}layer_norm1`), p), `${p}self_attn.out_proj`));
    stream.add(visionLinear(b, mlpIn(normed(`${p}layer_norm2`), p), `${p}mlp.fc2`));
    onLayer?.(i);
  }
  return stream.current;
}
