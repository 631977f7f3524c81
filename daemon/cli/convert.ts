// `paligemma convert <hf-checkpoint-dir> <out-dir> [--dtype fp32|fp16|int4] [--random <preset>] [--layers N]`
import { parseArgs } from 'node:util';
import { ACCURACY_LEVELS, convert, cpuHint, PRESETS, type ActivationDtype, type ConvertDtype, type VisionDtype } from '../engine/convert/index.js';
import type { Command } from './main.js';

const USAGE = `usage: paligemma convert <hf-checkpoint-dir> <out-dir> [options]
       paligemma convert --random <preset> <out-dir> [options]

options:
  --dtype fp32|fp16|int4   weight format (default fp32)
  --random <preset>        full-size model of a real configuration with seeded random weights:
                           ${Object.keys(PRESETS).join(', ')}
  --vision-dtype fp32|fp16 vision tower weights and matmuls (default: fp16 for --dtype fp16,
                           else fp32; fp16 is slow on CPUs and inexact on WebGPU, see DESIGN.md)
  --accuracy-level 0-4     int4: MatMulNBits accuracy_level (default 0; 4 = int8 activations,
                           faster on CPUs)
  --activations fp32|fp16  int4: what the decoder's int4 layers compute in, and the KV cache
                           (default fp32; fp16 for CUDA: half-precision GEMMs in the prefill)
  --standard-ops           layers in standard ONNX ops only, not onnxruntime's fused
                           contrib ops (norms, RoPE, GELU) and merged matmuls: for other runtimes
  --layers N               keep only the first N decoder layers
  --vision-layers N        keep only the first N vision layers
  --seed N                 seed for --random (default 0)
  --tokenizer <file>       tokenizer.json template for --random
  --force                  replace <out-dir> if it exists
`;

export const command: Command = {
  summary: 'convert a Hugging Face PaliGemma checkpoint (or a random preset) to ONNX',
  async run(argv: string[]): Promise<number> {
    let parsed;
    try {
      parsed = parseArgs({
        args: argv,
        allowPositionals: true,
        options: {
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
          help: { type: 'boolean', short: 'h', default: false },
        },
      });
    } catch (e) {
      process.stderr.write(`paligemma convert: ${(e as Error).message}\n${USAGE}`);
      return 2;
    }
    const { values, positionals } = parsed;
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    const random = values.random;
    const expected = random ? 1 : 2;
    if (positionals.length !== expected) {
      process.stderr.write(`paligemma convert: expected ${random ? '<out-dir>' : '<hf-checkpoint-dir> <out-dir>'}\n${USAGE}`);
      return 2;
    }
    const dtype = values.dtype as ConvertDtype;
    if (!['fp32', 'fp16', 'int4'].includes(dtype)) {
      process.stderr.write(`paligemma convert: --dtype must be fp32, fp16 or int4\n`);
      return 2;
    }
    const visionDtype = values['vision-dtype'] as VisionDtype | undefined;
    if (visionDtype !== undefined && !['fp32', 'fp16'].includes(visionDtype)) {
      process.stderr.write(`paligemma convert: --vision-dtype must be fp32 or fp16\n`);
      return 2;
    }
    const accuracyLevel = values['accuracy-level'] === undefined ? undefined : Number(values['accuracy-level']);
    if (accuracyLevel !== undefined && !(ACCURACY_LEVELS as readonly number[]).includes(accuracyLevel)) {
      process.stderr.write(`paligemma convert: --accuracy-level must be one of ${ACCURACY_LEVELS.join(', ')}\n`);
      return 2;
    }
    if (accuracyLevel !== undefined && dtype !== 'int4') {
      process.stderr.write(`paligemma convert: --accuracy-level applies only to --dtype int4\n`);
      return 2;
    }
    const activations = values.activations as ActivationDtype | undefined;
    if (activations !== undefined && !['fp32', 'fp16'].includes(activations)) {
      process.stderr.write(`paligemma convert: --activations must be fp32 or fp16\n`);
      return 2;
    }
    if (activations !== undefined && dtype !== 'int4') {
      process.stderr.write(`paligemma convert: --activations applies only to --dtype int4\n`);
      return 2;
    }
    const int = (v: string | undefined, name: string): number | undefined => {
      if (v === undefined) return undefined;
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer`);
      return n;
    };
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
        layers: int(values.layers, 'layers'),
        visionLayers: int(values['vision-layers'], 'vision-layers'),
        seed: int(values.seed, 'seed'),
        tokenizer: values.tokenizer,
        overwrite: values.force,
        onProgress: (p) => {
          const line = `[${Math.round(p.fraction * 100)
            .toString()
            .padStart(3)}%] ${p.message}`;
          if (line !== lastLine) process.stderr.write(line + '\n');
          lastLine = line;
        },
      });
      process.stderr.write(
        `converted ${manifest.name} (${manifest.architecture}, ${manifest.dtype}) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
      );
      const hint = cpuHint(manifest);
      if (hint) process.stderr.write(`hint: ${hint}\n`);
      return 0;
    } catch (e) {
      process.stderr.write(`paligemma convert: ${(e as Error).message}\n`);
      return 1;
    }
  },
};
