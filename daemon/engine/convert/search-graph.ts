// decoder-search.onnx and decoder-beam-search.onnx: the decoder inside onnxruntime's
// com.microsoft GreedySearch / BeamSearch ops, which run the whole decoding loop (token choice,
// eos, beams and their cache reordering) in one session run. The op runs a `decoder` subgraph with
// the GPT contract (contrib_ops/cpu/transformers/subgraph_gpt.cc, GptSubgraph::Validate):
//   inputs  input_ids, position_ids, attention_mask (int32), past_i (2, B, kv_heads, P, head_dim)
//   outputs logits (B, S, vocab) of the past's dtype, present_i (2, B, kv_heads, P + S, head_dim)
// for the prefill and every later token (no `init_decoder`: DESIGN.md says why). The op passes no
// other inputs, so the image features reach the prefill as an outer-scope value (the op feeds a
// subgraph every implicit input of its node: GptSubgraph::CreateInitialFeeds), and the prompt ids
// hold image placeholders in front of the text, so that the op's sequence lengths, masks and cache
// count every slot. DESIGN.md has the whole contract.
import { GraphAttr, MS_DOMAIN, type GraphBuilder } from '../onnx/builder.js';
import type onnxProto from 'onnx-proto';
import { MASKED } from '../model/masks.js';
import { Blocks } from './blocks.js';
import type { ModelConfig } from './config.js';
import { decoderStep, type KvDtype } from './decoder-graph.js';

export type SearchKind = 'greedy' | 'beam';

/** The ops' pad_token_id: what `sequences` holds for eos (greedy) and after the end. */
export const NO_TOKEN = -1;

/** The file each search op's graph is written to, beside decoder.onnx (whose weights it reads). */
export const SEARCH_FILES: Record<SearchKind, string> = { greedy: 'decoder-search.onnx', beam: 'decoder-beam-search.onnx' };

/**
 * The outer graph: inputs `prompt_ids` int32 [B, N + T] (N image placeholders, then the text),
 * `attention_mask` int32 [B, N + T] (0 at pads), `image_features` float32 [B, N, hidden],
 * `max_length` / `min_length` int32 [1] (whole sequence lengths, prompt included); beam search
 * also `num_beams`, `num_return_sequences` int32 [1] and `length_penalty` float32 [1]. Output
 * `sequences` int32: [B, max_length] (greedy), [B, num_return_sequences, max_length] (beam), the
 * prompt ids first, then the generated ones, NO_TOKEN for eos (greedy) and after the end.
 */
export function buildSearchGraph(b: Blocks, cfg: ModelConfig, numLayers: number, kvDtype: KvDtype, tokens: { eos: number }, kind: SearchKind): void {
  const g = b.g;
  const prompt = g.input('prompt_ids', 'int32', ['batch', 'prompt_len']);
  const image = g.input('image_features', 'float32', ['batch', 'image_len', cfg.text.hiddenSize]);
  const maxLength = g.input('max_length', 'int32', [1]);
  const minLength = g.input('min_length', 'int32', [1]);
  const mask = g.input('attention_mask', 'int32', ['batch', 'prompt_len']);
  // pad_token_id -1, an id no token has: the ops write it for eos and everything after (greedy)
  // and after every hypothesis (beam), so a generated <pad> is not mistaken for the end. Prompt
  // pads are then found by attention_mask (which the ops pass through as given), and positions
  // come from the mask too (the ops would count pads by pad_token_id).
  const attrs = { eos_token_id: tokens.eos, pad_token_id: NO_TOKEN, model_type: 0, decoder: new GraphAttr(stepSubgraph(b, cfg, numLayers, kvDtype, image)) };
  if (kind === 'greedy') {
    g.op('GreedySearch', [prompt, maxLength, minLength, '', '', '', mask], attrs, { domain: MS_DOMAIN, outputs: ['sequences'] });
    g.output('sequences', 'sequences', 'int32', ['batch', 'max_length']);
    return;
  }
  const numBeams = g.input('num_beams', 'int32', [1]);
  const numReturn = g.input('num_return_sequences', 'int32', [1]);
  const lengthPenalty = g.input('length_penalty', 'float32', [1]);
  // early_stopping 0: transformers' default (stop when no running beam can beat the finished ones).
  g.op(
    'BeamSearch',
    [prompt, maxLength, minLength, numBeams, numReturn, lengthPenalty, '', '', '', mask],
    { ...attrs, early_stopping: 0 },
    { domain: MS_DOMAIN, outputs: ['sequences'] },
  );
  g.output('sequences', 'sequences', 'int32', ['batch', 'num_return_sequences', 'max_length']);
}

/**
 * The GPT-contract subgraph over decoder.onnx's layers, for the prefill and every later token.
 * At the prefill (empty past) the first N prompt slots take the image features (repeated for each
 * beam: the op expands input_ids to B x beams rows but passes outer values as they are); later
 * runs take none. Every query sees every non-pad slot: the whole prompt attends bidirectionally
 * (PaliGemma's prefix-LM) and a generated token sees all before it. Sliding layers also mask, for
 * generated tokens only, slots at or before its position - window.
 */
function stepSubgraph(b: Blocks, cfg: ModelConfig, numLayers: number, kvDtype: KvDtype, image: string): onnxProto.onnx.IGraphProto {
  const g = b.g;
  const t = cfg.text;
  const KV = t.numKvHeads;
  const D = t.headDim;
  const body = g.body('decoder');
  const bb = new Blocks(body, b.w, b.p);
  // The contract's names (input_ids, logits, ...) may not be taken in the builder's one namespace,
  // which it shares with the outer graph: fresh names, renamed in the finished proto.
  const names = new Map<string, string>();
  const input = (contractName: string, dtype: 'int32' | KvDtype, dims: (string | number)[]) => {
    const name = body.input(g.fresh(`search_${contractName}`), dtype, dims);
    names.set(name, contractName);
    return name;
  };
  const ids = input('input_ids', 'int32', ['batch', 'seq_len']);
  const positions = input('position_ids', 'int32', ['batch', 'seq_len']);
  const mask = input('attention_mask', 'int32', ['batch', 'total_len']);
  const pasts = Array.from({ length: numLayers }, (_, i) => input(`past_${i}`, kvDtype, [2, 'batch', KV, 'past_len', D]));

  const int64 = (x: string) => body.op('Cast', [x], { to: 7 });
  const zero = body.constant('int64', [0], []);
  const ids64 = int64(ids);
  // Position ids from the mask, 1-indexed as PaliGemma's (HF's): the count of non-pad slots up
  // to each one. The op's position_ids count pad_token_id's slots, which it cannot see here.
  const slotPositions = body.op('CumSum', [int64(mask), body.constant('int64', [1], [])]);
  const position = body.op('Slice', [
    slotPositions,
    body.op('Neg', [body.op('Shape', [positions], { start: 1, end: 2 })]),
    body.int64s([Number.MAX_SAFE_INTEGER]),
    body.int64s([1]),
  ]);
  const prefill = body.op('Equal', [body.op('Shape', [pasts[0]], { start: 3, end: 4 }), zero]);

  // Image slots: N at the prefill, none later (a zero-row slice, so nothing is copied per token).
  const imageLen = body.op('Where', [prefill, body.op('Shape', [image], { start: 1, end: 2 }), body.int64s([0])]);
  const inputIds = body.op('Slice', [ids64, imageLen, body.int64s([Number.MAX_SAFE_INTEGER]), body.int64s([1])]);
  const slots = body.op('Slice', [image, body.int64s([0]), imageLen, body.int64s([1])]);
  const rows = body.op('Shape', [ids], { start: 0, end: 1 });
  const images = body.op('Shape', [slots], { start: 0, end: 1 });
  const tail = body.op('Shape', [slots], { start: 1 });
  const repeated = body.op('Expand', [body.op('Unsqueeze', [slots, body.int64s([1])]), body.op('Concat', [images, body.op('Div', [rows, images]), tail], { axis: 0 })]);
  // allowzero: the zero image rows of later runs are a size, not "copy the input's dim".
  const features = body.op('Reshape', [repeated, body.op('Concat', [rows, tail], { axis: 0 })], { allowzero: 1 });

  const padded = body.op('Equal', [int64(mask), zero]);
  const toBias = (masked: string) => body.op('Unsqueeze', [body.op('Where', [masked, body.scalar('float32', MASKED), body.scalar('float32', 0)]), body.int64s([1, 2])]);
  const bias = toBias(padded);
  let biasSliding: string | null = null;
  if (t.layerTypes.slice(0, numLayers).includes('sliding')) {
    // The window never cuts into the bidirectional prompt block (masks.ts), so not at the prefill.
    const outside = body.op('LessOrEqual', [slotPositions, body.op('Sub', [position, body.constant('int64', [t.slidingWindow!], [])])]);
    biasSliding = toBias(body.op('Or', [padded, body.op('And', [outside, body.op('Not', [prefill])])]));
  }
  const past = pasts.map((p) => {
    const [key, value] = body.opN('Split', [p], 2, { axis: 0 });
    const squeeze = (x: string) => body.op('Squeeze', [x, body.int64s([0])]);
    return { key: squeeze(key), value: squeeze(value) };
  });
  const step = decoderStep({ b: bb, cfg, numLayers, kvDtype, io: { inputIds, imageFeatures: features, positionIds: position, bias, biasSliding, past } });

  // The contract wants logits in the past's dtype, with a sequence axis.
  let logits = body.op('Unsqueeze', [step.logits, body.int64s([1])]);
  if (kvDtype === 'float16') logits = bb.cast(logits, 'float16');
  names.set(logits, 'logits');
  body.output(logits, logits, kvDtype, ['batch', 1, t.vocabSize]);
  step.presents.forEach((p, i) => {
    const unsqueeze = (x: string) => body.op('Unsqueeze', [x, body.int64s([0])]);
    const present = body.op('Concat', [unsqueeze(p.key), unsqueeze(p.value)], { axis: 0 });
    names.set(present, `present_${i}`);
    body.output(present, present, kvDtype, [2, 'batch', KV, 'total_len', D]);
  });
  return renamed(body, names);
}

/** The body's proto with its values renamed (its names are unique, so no renaming collides). */
function renamed(body: GraphBuilder, names: Map<string, string>): onnxProto.onnx.IGraphProto {
  const proto = body.toGraph();
  const rename = (n: string) => names.get(n) ?? n;
  for (const v of [...(proto.input ?? []), ...(proto.output ?? [])]) v.name = rename(v.name!);
  for (const node of proto.node ?? []) {
    node.input = (node.input ?? []).map(rename);
    node.output = (node.output ?? []).map(rename);
  }
  return proto;
}
