// Config normalisation (transformers 4.x and 5.x configs, model-type defaults), the --random
// presets' dimensions, and the relocated tokenizer of random models.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import { normalizeConfig } from '../../../daemon/engine/convert/config.js';
import { PRESETS, relocatedTokenizer } from '../../../daemon/engine/convert/index.js';
import { isEngineError } from '../../../daemon/engine/errors.js';
import { fixture } from './helpers.js';

describe('normalizeConfig', () => {
  it('reads a transformers 4.x PaliGemma 1 config with model-type defaults', () => {
    // As google/paligemma-3b-pt-224's config.json states it (defaults omitted).
    const c = normalizeConfig({
      model_type: 'paligemma',
      image_token_index: 257152,
      projection_dim: 2048,
      hidden_size: 2048,
      text_config: {
        hidden_size: 2048,
        intermediate_size: 16384,
        model_type: 'gemma',
        num_attention_heads: 8,
        num_hidden_layers: 18,
        num_image_tokens: 256,
        num_key_value_heads: 1,
        torch_dtype: 'float32',
        vocab_size: 257216,
      },
      vision_config: {
        hidden_size: 1152,
        intermediate_size: 4304,
        model_type: 'siglip_vision_model',
        num_attention_heads: 16,
        num_hidden_layers: 27,
        num_image_tokens: 256,
        patch_size: 14,
        projection_dim: 2048,
        projector_hidden_act: 'gelu_fast',
        vision_use_head: false,
      },
    });
    assert.equal(c.architecture, 'paligemma');
    assert.deepEqual(
      [c.text.headDim, c.text.rmsNormEps, c.text.ropeTheta, c.text.activation, c.text.maxPositions, c.text.attnScale],
      [256, 1e-6, 10000, 'gelu_tanh', 8192, 1 / 16],
    );
    assert.deepEqual([c.text.attnSoftcap, c.text.finalSoftcap, c.text.slidingWindow], [null, null, null]);
    assert.ok(c.text.layerTypes.every((t) => t === 'full'));
    assert.deepEqual([c.vision.imageSize, c.vision.layerNormEps, c.vision.activation, c.numImageTokens], [224, 1e-6, 'gelu_tanh', 256]);
  });

  it('fills Gemma 2 defaults: softcaps 50/30, window 4096 on even layers, query_pre_attn_scalar 256', () => {
    const c = normalizeConfig({
      model_type: 'paligemma',
      image_token_index: 257152,
      projection_dim: 2304,
      text_config: {
        model_type: 'gemma2',
        hidden_size: 2304,
        intermediate_size: 9216,
        num_hidden_layers: 26,
        num_attention_heads: 8,
        num_key_value_heads: 4,
        vocab_size: 257216,
        rope_theta: 10000.0,
      },
      vision_config: { hidden_size: 1152, intermediate_size: 4304, num_attention_heads: 16, num_hidden_layers: 27, patch_size: 14, image_size: 448 },
    });
    assert.equal(c.architecture, 'paligemma2');
    assert.deepEqual([c.text.attnSoftcap, c.text.finalSoftcap, c.text.slidingWindow, c.text.attnScale], [50, 30, 4096, 1 / 16]);
    assert.deepEqual(c.text.layerTypes.slice(0, 4), ['sliding', 'full', 'sliding', 'full']);
    assert.equal(c.numImageTokens, 1024);
  });

  it('reads the 5.x fixtures (rope_parameters, layer_types, query_pre_attn_scalar)', () => {
    const c = normalizeConfig(JSON.parse(readFileSync(join(fixture('tiny-paligemma2-224'), 'config.json'), 'utf8')));
    assert.deepEqual([c.text.ropeTheta, c.text.attnScale, c.text.numKvHeads, c.text.vocabSize], [10000, 0.25, 2, 2112]);
    assert.deepEqual(c.text.layerTypes, ['sliding', 'full', 'sliding']);
  });

  it("takes SiglipVisionConfig's own defaults for omitted vision fields, as transformers does", () => {
    const c = normalizeConfig({ model_type: 'paligemma', text_config: { model_type: 'gemma' }, vision_config: { model_type: 'siglip_vision_model' } });
    assert.deepEqual([c.vision.hiddenSize, c.vision.numLayers, c.vision.patchSize], [768, 12, 16]);
    const none = normalizeConfig({ model_type: 'paligemma' });
    assert.deepEqual([none.vision.hiddenSize, none.vision.numLayers, none.vision.patchSize, none.text.hiddenSize, none.text.numLayers], [1152, 27, 14, 2048, 18]);
  });

  it('rejects unsupported RoPE scaling and activations with model-invalid', () => {
    assert.throws(
      () => normalizeConfig({ model_type: 'paligemma', text_config: { model_type: 'gemma', rope_scaling: { rope_type: 'linear', factor: 2 } } }),
      (e: unknown) => isEngineError(e, 'model-invalid'),
    );
    assert.throws(
      () => normalizeConfig({ model_type: 'paligemma', text_config: { model_type: 'gemma', hidden_activation: 'silu' } }),
      (e: unknown) => isEngineError(e, 'model-invalid'),
    );
  });
});

describe('presets', () => {
  it('have the real dimensions', () => {
    const dims = (n: string) => {
      const c = normalizeConfig(structuredClone(PRESETS[n]));
      return [c.architecture, c.text.hiddenSize, c.text.numLayers, c.text.numHeads, c.text.numKvHeads, c.text.headDim, c.text.vocabSize, c.numImageTokens];
    };
    assert.deepEqual(dims('paligemma-3b-224'), ['paligemma', 2048, 18, 8, 1, 256, 257216, 256]);
    assert.deepEqual(dims('paligemma-3b-448'), ['paligemma', 2048, 18, 8, 1, 256, 257216, 1024]);
    assert.deepEqual(dims('paligemma-3b-896'), ['paligemma', 2048, 18, 8, 1, 256, 257216, 4096]);
    assert.deepEqual(dims('paligemma2-3b-224'), ['paligemma2', 2304, 26, 8, 4, 256, 257216, 256]);
    assert.deepEqual(dims('paligemma2-3b-896'), ['paligemma2', 2304, 26, 8, 4, 256, 257216, 4096]);
    assert.deepEqual(dims('paligemma2-10b-224'), ['paligemma2', 3584, 42, 16, 8, 256, 257216, 256]);
  });

  it('random models get the tiny tokenizer with <loc>, <seg> and <image> at the real ids', () => {
    const template = JSON.parse(readFileSync(join(fixture('tiny-paligemma-224'), 'tokenizer.json'), 'utf8'));
    const tok = new Tokenizer(relocatedTokenizer(template, 257216), {});
    assert.deepEqual(tok.encode('<loc0005><seg127><image>', { add_special_tokens: false }).ids, [256005, 257024 + 127, 257152]);
  });
});
