// `paligemma convert <hf-checkpoint-dir> <out-dir> [--dtype fp32|fp16|int4] [--random <preset>] [--layers N]`
import { errorMessage } from '../common/errors.js';
import {
  ACCURACY_LEVELS,
  convert,
  cpuHint,
  PRESETS,
  takesAccuracyLevel,
  VISION_DTYPES,
  WEIGHT_DTYPES,
  type ActivationDtype,
  type ConvertDtype,
  type VisionDtype,
} from '../engine/convert/index.js';
import { choiceOption, integerOption, runCommand, UsageError } from './args.js';
import type { Command } from './main.js';

const USAGE = `usage: paligemma convert <hf-checkpoint-dir> <out-dir> [options]
       paligemma convert --random <preset> <out-dir> [options]

options:
  --dtype fp32|fp16|int4|int8  weight format (default fp32; int8, for CPUs: per-channel int8 layers
                           and vision tower, 8-bit embedding table, run as int8 GEMMs)
  --random <preset>        full-size model of a real configuration with seeded random weights:
                           ${Object.keys(PRESETS).join(', ')}
  --vision-dtype fp32|fp16|int8  vision tower weights and matmuls (default: fp16 for --dtype
                           fp16, int8 for int8, else fp32; fp16 is slow on CPUs and inexact on
                           WebGPU, see DESIGN.md; int8: a quarter of fp32's memory and int8
                           GEMMs on CPUs)
  --accuracy-level 0-4     int4 and int8: MatMulNBits accuracy_level (default 0 for int4, 4 for
                           int8; 4 = int8 activations, faster on CPUs)
  --activations fp32|fp16  int4: what the decoder's int4 layers compute in, and the KV cache
                           (default fp32; fp16 for CUDA: half-precision GEMMs in the prefill)
  --standard-ops           layers in standard ONNX ops only, not onnxruntime's fused
                           contrib ops (norms, RoPE, GELU) and merged matmuls: for other runtimes
  --layers N               keep only the first N decoder layers
  --vision-layers N        keep only the first N vision layers
  --seed N                 seed for --random (default 0)
  --tokenizer <file>       tokenizer.json template for --random
  --layout paligemma|transformers.js  the folder's layout (default paligemma: manifest.json,
                           vision.onnx, decoder.onnx, decoder-loop.onnx); transformers.js: the
                           onnx-community export layout (onnx/vision_encoder, embed_tokens,
                           decoder_model_merged), which transformers.js loads too, with a
                           causal prompt (approximate attention)
  --force                  replace <out-dir> if it exists
`;

const OPTIONS = {
  dtype: { type: 'string', default: 'fp32' },
  random: { type: 'string' },
  'vision-dtype': { type: 'string' },
  'accuracy-level': { type: 'string' },
  activations: { type: 'string' },
  'standard-ops': { type: 'boolean', default: false },
  layers: { type: 'string' },
  'vision-layers': { type: 'string' },
  seed: { type: 'string' },
  tokenizer: { type: 'string' },
  force: { type: 'boolean', default: false },
  layout: { type: 'string', default: 'paligemma' },
} as const;

export const command: Command = {
  summary: 'convert a Hugging Face PaliGemma checkpoint (or a random preset) to ONNX',
  run: (argv) =>
    runCommand({ name: 'convert', usage: USAGE, options: OPTIONS }, argv, async (values, positionals) => {
      const random = values.random;
      if (positionals.length !== (random ? 1 : 2)) throw new UsageError(`expected ${random ? '<out-dir>' : '<hf-checkpoint-dir> <out-dir>'}`, true);
      const dtype = choiceOption<ConvertDtype>(values.dtype, 'dtype', WEIGHT_DTYPES)!;
      const visionDtype = choiceOption<VisionDtype>(values['vision-dtype'], 'vision-dtype', VISION_DTYPES);
      const accuracyLevel = choiceOption(values['accuracy-level'], 'accuracy-level', ACCURACY_LEVELS);
      if (accuracyLevel !== undefined && !takesAccuracyLevel(dtype)) throw new UsageError('--accuracy-level applies only to --dtype int4 and int8');
      const activations = choiceOption<ActivationDtype>(values.activations, 'activations', ['fp32', 'fp16']);
      if (activations !== undefined && dtype !== 'int4') throw new UsageError('--activations applies only to --dtype int4');
      const layers = integerOption(values.layers, 'layers', 0);
      const visionLayers = integerOption(values['vision-layers'], 'vision-layers', 0);
      const seed = integerOption(values.seed, 'seed', 0);
      const started = Date.now();
      let lastLine = '';
      try {
        const manifest = await convert({
          input: random ? undefined : positionals[0],
          random,
          output: positionals[positionals.length - 1],
          dtype,
          visionDtype,
          accuracyLevel,
          activations,
          standardOps: values['standard-ops'],
          layers,
          visionLayers,
          seed,
          tokenizer: values.tokenizer,
          overwrite: values.force,
          layout: choiceOption(values.layout, 'layout', ['paligemma', 'transformers.js'] as const),
          onProgress: (p) => {
            const line = `[${Math.round(p.fraction * 100)
              .toString()
              .padStart(3)}%] ${p.message}`;
            if (line !== lastLine) process.stderr.write(line + '\n');
            lastLine = line;
          },
        });
        process.stderr.write(`converted ${manifest.name} (${manifest.architecture}, ${manifest.dtype}) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
        const hint = cpuHint(manifest);
        if (hint) process.stderr.write(`hint: ${hint}\n`);
        return 0;
      } catch (e) {
        process.stderr.write(`paligemma convert: ${errorMessage(e)}\n`);
        return 1;
      }
    }),
};
