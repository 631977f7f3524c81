// Where the converter's weights come from: a Hugging Face checkpoint (names mapped from the
// several prefixes transformers has used) or a seeded random generator of the right shapes.
// Names here are canonical: `text.*` (Gemma decoder), `vision.*` (SigLIP), `projector.*`.
import { EngineError } from '../errors.js';
import type { ModelConfig } from './config.js';
import { SafetensorsCheckpoint } from './safetensors.js';

export interface WeightSource {
  /** Rows [start, start+count) of a tensor seen as [shape[0], rest], as fp32. */
  readRows(name: string, start: number, count: number): Float32Array;
  read(name: string): Float32Array;
  shape(name: string): number[];
  has(name: string): boolean;
  close(): void;
}

/** Every tensor the graphs read, with the shape the config implies. */
export function expectedShapes(cfg: ModelConfig, opts: { textLayers?: number; visionLayers?: number } = {}): Map<string, number[]> {
  const s = new Map<string, number[]>();
  const t = cfg.text;
  const H = t.hiddenSize;
  s.set('text.embed_tokens.weight', [t.vocabSize, H]);
  for (let i = 0; i < (opts.textLayers ?? t.numLayers); i++) {
    const p = `text.layers.${i}.`;
    s.set(`${p}self_attn.q_proj.weight`, [t.numHeads * t.headDim, H]);
    s.set(`${p}self_attn.k_proj.weight`, [t.numKvHeads * t.headDim, H]);
    s.set(`${p}self_attn.v_proj.weight`, [t.numKvHeads * t.headDim, H]);
    s.set(`${p}self_attn.o_proj.weight`, [H, t.numHeads * t.headDim]);
    s.set(`${p}mlp.gate_proj.weight`, [t.intermediateSize, H]);
    s.set(`${p}mlp.up_proj.weight`, [t.intermediateSize, H]);
    s.set(`${p}mlp.down_proj.weight`, [H, t.intermediateSize]);
    s.set(`${p}input_layernorm.weight`, [H]);
    s.set(`${p}post_attention_layernorm.weight`, [H]);
    if (t.modelType === 'gemma2') {
      s.set(`${p}pre_feedforward_layernorm.weight`, [H]);
      s.set(`${p}post_feedforward_layernorm.weight`, [H]);
    }
  }
  s.set('text.norm.weight', [H]);
  if (!t.tieWordEmbeddings) s.set('text.lm_head.weight', [t.vocabSize, H]);
  const v = cfg.vision;
  const C = v.hiddenSize;
  s.set('vision.embeddings.patch_embedding.weight', [C, v.numChannels, v.patchSize, v.patchSize]);
  s.set('vision.embeddings.patch_embedding.bias', [C]);
  s.set('vision.embeddings.position_embedding.weight', [cfg.numImageTokens, C]);
  for (let i = 0; i < (opts.visionLayers ?? v.numLayers); i++) {
    const p = `vision.encoder.layers.${i}.`;
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
      s.set(`${p}self_attn.${n}.weight`, [C, C]);
      s.set(`${p}self_attn.${n}.bias`, [C]);
    }
    s.set(`${p}mlp.fc1.weight`, [v.intermediateSize, C]);
    s.set(`${p}mlp.fc1.bias`, [v.intermediateSize]);
    s.set(`${p}mlp.fc2.weight`, [C, v.intermediateSize]);
    s.set(`${p}mlp.fc2.bias`, [C]);
    for (const n of ['layer_norm1', 'layer_norm2']) {
      s.set(`${p}${n}.weight`, [C]);
      s.set(`${p}${n}.bias`, [C]);
    }
  }
  s.set('vision.post_layernorm.weight', [C]);
  s.set('vision.post_layernorm.bias', [C]);
  s.set('projector.linear.weight', [cfg.projectionDim, C]);
  s.set('projector.linear.bias', [cfg.projectionDim]);
  return s;
}

// transformers 4.x checkpoints: language_model.model.*, vision_tower.vision_model.*;
// 5.x in-memory names: model.language_model.*, model.vision_tower.vision_model.*.
const PREFIXES: Record<'text' | 'vision' | 'projector', string[]> = {
  text: ['language_model.model.', 'model.language_model.', 'language_model.'],
  vision: ['vision_tower.vision_model.', 'model.vision_tower.vision_model.', 'vision_tower.', 'model.vision_tower.'],
  projector: ['multi_modal_projector.', 'model.multi_modal_projector.'],
};
const LM_HEAD = ['language_model.lm_head.weight', 'lm_head.weight'];
const PROBE = { text: 'embed_tokens.weight', vision: 'embeddings.patch_embedding.weight', projector: 'linear.weight' };

/** A checkpoint seen through canonical names, its shapes checked against the config. */
export class CheckpointWeights implements WeightSource {
  private readonly map = new Map<string, string>();

  constructor(
    private readonly ckpt: SafetensorsCheckpoint,
    expected: Map<string, number[]>,
  ) {
    const prefix = {} as Record<keyof typeof PREFIXES, string>;
    for (const part of Object.keys(PREFIXES) as (keyof typeof PREFIXES)[]) {
      const found = PREFIXES[part].find((p) => ckpt.has(p + PROBE[part]));
      if (!found) throw new EngineError('model-invalid', `checkpoint has no ${part} weights (looked for ${PREFIXES[part].map((p) => p + PROBE[part]).join(', ')})`);
      prefix[part] = found;
    }
    for (const [name, shape] of expected) {
      let source: string;
      if (name === 'text.lm_head.weight') {
        const f = LM_HEAD.find((n) => ckpt.has(n));
        if (!f) throw new EngineError('model-invalid', 'tie_word_embeddings is false but the checkpoint has no lm_head.weight');
        source = f;
      } else {
        const part = name.slice(0, name.indexOf('.')) as keyof typeof PREFIXES;
        source = prefix[part] + name.slice(part.length + 1);
      }
      if (!ckpt.has(source)) throw new EngineError('model-invalid', `checkpoint has no tensor ${source}`);
      const actual = ckpt.info(source).shape;
      if (actual.length !== shape.length || actual.some((d, i) => d !== shape[i])) {
        throw new EngineError('model-invalid', `tensor ${source} has shape [${actual}] but config.json implies [${shape}]`);
      }
      this.map.set(name, source);
    }
  }

  private source(name: string): string {
    const s = this.map.get(name);
    if (!s) throw new Error(`weight ${name} was not expected`);
    return s;
  }
  has(name: string): boolean {
    return this.map.has(name);
  }
  shape(name: string): number[] {
    return this.ckpt.info(this.source(name)).shape;
  }
  readRows(name: string, start: number, count: number): Float32Array {
    return this.ckpt.readRows(this.source(name), start, count);
  }
  read(name: string): Float32Array {
    return this.ckpt.read(this.source(name));
  }
  close(): void {
    this.ckpt.close();
  }
}

function hash32(s: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h || 1;
}

/**
 * Seeded random weights of the expected shapes: uniform with the standard deviation HF's
 * init uses (0.02) for matrices, ~1 for LayerNorm scales, 0 for biases and RMSNorm offsets
 * near 0. Each row block is generated from (seed, name, row), so reading by rows is
 * deterministic whatever the chunking.
 */
export class RandomWeights implements WeightSource {
  constructor(
    private readonly expected: Map<string, number[]>,
    private readonly seed: number,
  ) {}

  has(name: string): boolean {
    return this.expected.has(name);
  }
  shape(name: string): number[] {
    const s = this.expected.get(name);
    if (!s) throw new Error(`weight ${name} was not expected`);
    return s;
  }
  readRows(name: string, start: number, count: number): Float32Array {
    const shape = this.shape(name);
    const rowElems = shape.slice(1).reduce((a, b) => a * b, 1);
    const out = new Float32Array(count * rowElems);
    const isNorm = /norm/.test(name);
    const isBias = name.endsWith('.bias');
    const layerNormScale = isNorm && name.startsWith('vision.') && name.endsWith('.weight');
    const amp = isBias ? 0.02 : isNorm ? 0.1 : 0.02 * Math.sqrt(3);
    const base = layerNormScale ? 1 : 0;
    const h = hash32(name, this.seed);
    for (let r = 0; r < count; r++) {
      // xorshift32 per row
      let x = (h ^ Math.imul(start + r + 1, 0x9e3779b1)) >>> 0 || 1;
      const o = r * rowElems;
      for (let i = 0; i < rowElems; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        out[o + i] = base + amp * ((x >>> 0) / 2147483648 - 1);
      }
    }
    return out;
  }
  read(name: string): Float32Array {
    const shape = this.shape(name);
    return this.readRows(name, 0, shape.length === 0 ? 1 : shape[0]);
  }
  close(): void {}
}
