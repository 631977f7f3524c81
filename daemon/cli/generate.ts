// `paligemma generate --model <dir> --image <file> --prompt <text>`: one generation in this process,
// no daemon. With --json the last line of stdout is one JSON object (ids, text, per-step top-3).
import { isEngineError, loadImage, PaliGemma, parseExecutionProvider, type Strategy } from '../engine/index.js';
import { choiceOption, integerOption, runCommand, UsageError } from './args.js';
import type { Command } from './main.js';

const USAGE = `usage: paligemma generate --model <converted-dir> --image <file> --prompt <text> [options]

options:
  --max-tokens N            stop after N tokens (default 32)
  --min-tokens N            do not stop on <eos> before N tokens (default 0)
  --strategy greedy|beam|sample   (default greedy)
  --num-beams N             beam search width (default 4)
  --temperature T --top-k K --top-p P --seed S   sampling (defaults 1, 50, 1, 0)
  --force-tokens 1,2,3      feed these ids instead of the chosen ones (parity checks)
  --ep cpu|cuda|webgpu|auto execution provider (default auto)
  --threads N               CPU threads per session
  --json                    print one JSON object as the last line: input_ids, generated_ids,
                            text, raw, steps (top-3 ids and logits per generated token), timings
  --stream                  print text as it is generated (not with --json)
`;

function number(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got '${value}'`);
  return n;
}

const options = {
  model: { type: 'string' },
  image: { type: 'string' },
  prompt: { type: 'string' },
  'max-tokens': { type: 'string' },
  'min-tokens': { type: 'string' },
  strategy: { type: 'string' },
  'num-beams': { type: 'string' },
  temperature: { type: 'string' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  seed: { type: 'string' },
  'force-tokens': { type: 'string' },
  ep: { type: 'string', default: 'auto' },
  threads: { type: 'string' },
  json: { type: 'boolean', default: false },
  stream: { type: 'boolean', default: false },
} as const;

export const command: Command = {
  summary: 'run one prompt on one image with a converted model (no daemon)',
  run: (argv) =>
    runCommand({ name: 'generate', usage: USAGE, options, usageOnEveryError: true }, argv, async (values) => {
      if (!values.model || !values.image || values.prompt === undefined) throw new UsageError('--model, --image and --prompt are required');
      const opts = {
        strategy: choiceOption<Strategy>(values.strategy, 'strategy', ['greedy', 'beam', 'sample']) ?? 'greedy',
        maxNewTokens: integerOption(values['max-tokens'], 'max-tokens', 1),
        minNewTokens: integerOption(values['min-tokens'], 'min-tokens', 0),
        numBeams: integerOption(values['num-beams'], 'num-beams', 1),
        temperature: number(values.temperature, 'temperature'),
        topK: integerOption(values['top-k'], 'top-k', 0),
        topP: number(values['top-p'], 'top-p'),
        seed: integerOption(values.seed, 'seed', 0),
        forceTokens: values['force-tokens']?.split(',').map((s) => integerOption(s.trim(), 'force-tokens', 0)!),
        threads: integerOption(values.threads, 'threads', 1),
      };

      const ac = new AbortController();
      const onSigint = () => ac.abort();
      process.once('SIGINT', onSigint);
      let model: PaliGemma | undefined;
      try {
        // The image first: a bad one is reported at once, not after the model has loaded.
        const image = await loadImage(values.image);
        const t0 = performance.now();
        model = await PaliGemma.load(values.model, { executionProvider: parseExecutionProvider(values.ep), threads: opts.threads });
        const loadMs = performance.now() - t0;
        // e.g. approximate attention (a transformers.js export): said before the answer, not after.
        for (const warning of model.warnings) process.stderr.write(`paligemma generate: warning: ${warning}\n`);
        let firstTokenMs: number | undefined;
        let printed = '';
        const t1 = performance.now();
        const out = await model.generate({
          image,
          prompt: values.prompt,
          ...opts,
          signal: ac.signal,
          recordSteps: values.json,
          onToken: (_, text) => {
            firstTokenMs ??= performance.now() - t1;
            if (values.stream && !values.json) {
              process.stdout.write(text.slice(printed.length));
              printed = text;
            }
          },
        });
        const generateMs = performance.now() - t1;
        if (values.json) {
          process.stdout.write(
            `${JSON.stringify({
              model: model.manifest.name,
              execution_provider: model.executionProvider,
              warnings: model.warnings,
              input_ids: out.inputIds,
              generated_ids: out.generatedIds,
              text: out.text,
              raw: out.raw,
              steps: out.steps,
              timings: { load_ms: round(loadMs), first_token_ms: round(firstTokenMs ?? generateMs), generate_ms: round(generateMs) },
            })}\n`,
          );
        } else if (values.stream) {
          process.stdout.write(`${out.text.slice(printed.length)}\n`);
        } else {
          process.stdout.write(`${out.text}\n`);
        }
        for (const note of model.providerNotes) process.stderr.write(`paligemma generate: ${note}\n`);
        return 0;
      } catch (e) {
        if (isEngineError(e)) {
          process.stderr.write(`paligemma generate: ${e.message}\n`);
          return e.code === 'cancelled' ? 130 : 1;
        }
        throw e;
      } finally {
        process.off('SIGINT', onSigint);
        await model?.dispose();
      }
    }),
};

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
