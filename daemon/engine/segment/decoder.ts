// Runs the converted mask VAE (vae.onnx) on CPU: it is a few MFLOPs per mask, not worth a GPU
// session next to the language model.
import * as ort from 'onnxruntime-node';
import { EngineError } from '../errors.js';
import { MASK_SIZE } from './paste.js';
import { CODES_PER_MASK } from './vae.js';
import { errorMessage } from '../../common/errors.js';

export const NUM_SEG_CODES = 128;

export class MaskDecoder {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly source: string,
  ) {}

  /** Loads a converted decoder from a file path or from the serialised model bytes. */
  static async load(model: string | Uint8Array): Promise<MaskDecoder> {
    const source = typeof model === 'string' ? model : '<memory>';
    try {
      const options: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], intraOpNumThreads: 1 };
      const session = typeof model === 'string' ? await ort.InferenceSession.create(model, options) : await ort.InferenceSession.create(model, options);
      if (!session.inputNames.includes('codes') || !session.outputNames.includes('masks')) {
        await session.release();
        throw new EngineError('model-invalid', `${source} is not a mask decoder (expected input 'codes', output 'masks')`);
      }
      return new MaskDecoder(session, source);
    } catch (e) {
      if (e instanceof EngineError) throw e;
      throw new EngineError('model-invalid', `cannot load the mask decoder ${source}: ${errorMessage(e)}`, {
        cause: e,
      });
    }
  }

  /** 64x64 masks (row-major, about [-1, 1], > 0 inside) for rows of 16 codes in 0..127. */
  async decode(codes: readonly (readonly number[])[]): Promise<Float32Array[]> {
    if (codes.length === 0) return [];
    const flat = new BigInt64Array(codes.length * CODES_PER_MASK);
    codes.forEach((row, i) => {
      if (row.length !== CODES_PER_MASK) {
        throw new EngineError('invalid-params', `a mask needs ${CODES_PER_MASK} codes, got ${row.length}`);
      }
      row.forEach((c, j) => {
        if (!Number.isInteger(c) || c < 0 || c >= NUM_SEG_CODES) {
          throw new EngineError('invalid-params', `segmentation code ${c} is outside 0..${NUM_SEG_CODES - 1}`);
        }
        flat[i * CODES_PER_MASK + j] = BigInt(c);
      });
    });
    const input = new ort.Tensor('int64', flat, [codes.length, CODES_PER_MASK]);
    const result = await this.session.run({ codes: input });
    const masks = result.masks;
    const data = masks.data as Float32Array;
    const n = MASK_SIZE * MASK_SIZE;
    const out = codes.map((_, i) => data.slice(i * n, (i + 1) * n));
    masks.dispose();
    return out;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
