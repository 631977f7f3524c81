// Real PaliGemma configurations (as the Hub's config.json files state them) for `--random`:
// full-size models with seeded random weights, for benchmarks and memory tests.
export const PRESETS: Record<string, Record<string, unknown>> = {};

function paligemma1(imageSize: number): Record<string, unknown> {
  return {
    model_type: 'paligemma',
    image_token_index: 257152,
    projection_dim: 2048,
    hidden_size: 2048,
    text_config: {
      model_type: 'gemma',
      hidden_size: 2048,
      intermediate_size: 16384,
      num_hidden_layers: 18,
      num_attention_heads: 8,
      num_key_value_heads: 1,
      head_dim: 256,
      vocab_size: 257216,
    },
    vision_config: siglip(imageSize, 2048),
  };
}

function siglip(imageSize: number, projectionDim: number): Record<string, unknown> {
  return {
    model_type: 'siglip_vision_model',
    hidden_size: 1152,
    intermediate_size: 4304,
    num_hidden_layers: 27,
    num_attention_heads: 16,
    patch_size: 14,
    image_size: imageSize,
    projection_dim: projectionDim,
    vision_use_head: false,
  };
}

function paligemma2(size: '3b' | '10b' | '28b', imageSize: number): Record<string, unknown> {
  const t = {
    '3b': { hidden_size: 2304, intermediate_size: 9216, num_hidden_layers: 26, num_attention_heads: 8, num_key_value_heads: 4, head_dim: 256, query_pre_attn_scalar: 256 },
    '10b': { hidden_size: 3584, intermediate_size: 14336, num_hidden_layers: 42, num_attention_heads: 16, num_key_value_heads: 8, head_dim: 256, query_pre_attn_scalar: 256 },
    '28b': { hidden_size: 4608, intermediate_size: 36864, num_hidden_layers: 46, num_attention_heads: 32, num_key_value_heads: 16, head_dim: 128, query_pre_attn_scalar: 144 },
  }[size];
  return {
    model_type: 'paligemma',
    image_token_index: 257152,
    projection_dim: t.hidden_size,
    hidden_size: t.hidden_size,
    text_config: {
      model_type: 'gemma2',
      vocab_size: 257216,
      attn_logit_softcapping: 50.0,
      final_logit_softcapping: 30.0,
      sliding_window: 4096,
      ...t,
    },
    vision_config: siglip(imageSize, t.hidden_size),
  };
}

for (const s of [224, 448, 896]) {
  PRESETS[`paligemma-3b-${s}`] = paligemma1(s);
  PRESETS[`paligemma2-3b-${s}`] = paligemma2('3b', s);
  PRESETS[`paligemma2-10b-${s}`] = paligemma2('10b', s);
  PRESETS[`paligemma2-28b-${s}`] = paligemma2('28b', s);
}

/** Where the real tokenizer puts the PaliGemma-specific tokens. */
export const REAL_TOKEN_IDS = { loc0: 256000, seg0: 257024, image: 257152 };
