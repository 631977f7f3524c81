// decodeLoop 'search': greedy and beam requests run inside onnxruntime's com.microsoft
// GreedySearch / BeamSearch ops (decoder-search.onnx, decoder-beam-search.onnx; DESIGN.md), one
// session run per request, the KV cache and the token choice inside the op.
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { EngineError } from '../errors.js';
import type { BeamRequest } from '../generate/decode.js';
import { NO_TOKEN } from '../convert/search-graph.js';
import type { Manifest } from './manifest.js';
import { createSession, type ExecutionProvider } from './providers.js';

export class SearchSessions {
  /** decoder-beam-search.onnx, loaded by the first beam request that it serves. */
  private beamSession: Promise<ort.InferenceSession> | null = null;

  private constructor(
    private readonly dir: string,
    private readonly manifest: Manifest,
    private readonly ep: ExecutionProvider,
    private readonly threads: number | undefined,
    private readonly greedySession: ort.InferenceSession,
  ) {}

  static async create(dir: string, manifest: Manifest, ep: ExecutionProvider, threads?: number): Promise<SearchSessions> {
    const file = manifest.files.decoderSearch;
    if (!file) throw new EngineError('invalid-params', `${dir} has no decoder-search.onnx (converted by an older version): convert it again, or decode on the host`);
    if (ep !== 'cpu' && ep !== 'cuda') {
      throw new EngineError('invalid-params', `onnxruntime has GreedySearch / BeamSearch kernels for the CPU and CUDA only, not ${ep}: decode on the host or in the graph loop`);
    }
    if (ep === 'cpu' && manifest.kvDtype === 'float16') {
      // The CPU kernels pass their float16 helpers unset (greedy_search.cc, GreedySearch::Compute:
      // process_logits_fp16_func_ and friends are set only by the CUDA kernel): bad_function_call.
      throw new EngineError(
        'invalid-params',
        `${dir} has a float16 KV cache, which onnxruntime's CPU GreedySearch / BeamSearch cannot run: use --ep cuda, a conversion with --activations fp32 (or fp32 / int4 weights), or decode on the host`,
      );
    }
    return new SearchSessions(dir, manifest, ep, threads, await createSession(join(dir, file), ep, threads));
  }

  /**
   * Whether BeamSearch scores these options exactly as decode.ts's beamSearch does. Its scorer
   * divides by the whole sequence's length, prompt included and eos not (beam_search_scorer.cc,
   * BeamHypotheses::Add: `sum_logprobs / pow(hypothesis.size(), length_penalty)`) where
   * transformers and decode.ts divide by the generated length with the eos; and it masks eos for
   * min_length after the log-softmax (ProcessLogits: SoftmaxCPU, then the logits processors) where
   * decode.ts masks before it. So only length penalty 0 and no minimum agree; other beam requests
   * run on the host.
   */
  scoresLikeHost(o: BeamRequest): boolean {
    return o.lengthPenalty === 0 && o.minNewTokens === 0 && this.manifest.files.decoderBeamSearch !== undefined;
  }

  /** Each row's generated ids, ending with eos when it stopped on one. */
  async greedy(features: ort.Tensor, textIds: readonly (readonly number[])[], maxNewTokens: number, minNewTokens: number): Promise<number[][]> {
    const { feeds, promptLength } = this.feeds(features, textIds, maxNewTokens, minNewTokens);
    const out = (await this.greedySession.run(feeds)).sequences as ort.Tensor;
    const width = out.dims[1];
    const data = out.data as Int32Array;
    // GreedySearch writes pad_token_id (NO_TOKEN) in place of eos and after it
    // (GreedySearchBase::GenerateNextToken), and stops once every row has.
    return textIds.map((_, r) => this.ended(Array.from(data.subarray(r * width + promptLength, (r + 1) * width))));
  }

  /** The best hypothesis of one prompt, ending with eos when it stopped on one. */
  async beam(features: ort.Tensor, textIds: readonly (readonly number[])[], o: BeamRequest): Promise<number[]> {
    if (textIds.length !== 1) throw new Error('beam search decodes one prompt at a time');
    this.beamSession ??= createSession(join(this.dir, this.manifest.files.decoderBeamSearch!), this.ep, this.threads);
    const session = await this.beamSession;
    const { feeds, promptLength } = this.feeds(features, textIds, o.maxNewTokens, o.minNewTokens);
    const int32 = (v: number) => new ort.Tensor('int32', Int32Array.of(v), [1]);
    feeds.num_beams = int32(o.numBeams);
    feeds.num_return_sequences = int32(1);
    feeds.length_penalty = new ort.Tensor('float32', Float32Array.of(o.lengthPenalty), [1]);
    const out = (await session.run(feeds)).sequences as ort.Tensor;
    // The scorer stores a hypothesis that ended on eos without it (BeamSearchScorer::Process clones
    // the sequence before the eos is appended) and fills the rest with pad_token_id (NO_TOKEN).
    return this.ended(Array.from((out.data as Int32Array).subarray(promptLength, out.dims[2])));
  }

  /** Ids up to the first NO_TOKEN, which stands for eos. */
  private ended(ids: number[]): number[] {
    const end = ids.indexOf(NO_TOKEN);
    return end === -1 ? ids : [...ids.slice(0, end), this.manifest.tokens.eos];
  }

  async release(): Promise<void> {
    const beam = this.beamSession;
    this.beamSession = null;
    await Promise.allSettled([this.greedySession.release(), beam?.then((s) => s.release())]);
  }

  /**
   * The ops' inputs: each row is N image placeholders, left pads, then its text (the layout of
   * runtime.ts's prefill), pads masked.
   */
  private feeds(features: ort.Tensor, textIds: readonly (readonly number[])[], maxNewTokens: number, minNewTokens: number) {
    const { tokens } = this.manifest;
    const n = features.dims[1];
    const t = Math.max(...textIds.map((ids) => ids.length));
    const promptLength = n + t;
    const ids = new Int32Array(textIds.length * promptLength);
    const mask = new Int32Array(textIds.length * promptLength).fill(1);
    textIds.forEach((row, r) => {
      const base = r * promptLength;
      ids.fill(tokens.image, base, base + n);
      ids.fill(tokens.pad, base + n, base + n + t - row.length);
      mask.fill(0, base + n, base + n + t - row.length);
      ids.set(row, base + n + t - row.length);
    });
    const int32 = (v: number) => new ort.Tensor('int32', Int32Array.of(v), [1]);
    const feeds: Record<string, ort.Tensor> = {
      prompt_ids: new ort.Tensor('int32', ids, [textIds.length, promptLength]),
      attention_mask: new ort.Tensor('int32', mask, [textIds.length, promptLength]),
      image_features: features,
      max_length: int32(promptLength + maxNewTokens),
      min_length: int32(promptLength + minNewTokens),
    };
    return { feeds, promptLength };
  }
}
