// `paligemma generate --model <dir> --image <file> --prompt <text>`: one generation in this process,
// no daemon. With --json the last line of stdout is one JSON object (ids, text, per-step top-3).
import { parseArgs } from 'node:util';
import { isEngineError, loadImage, PaliGemma, parseExecutionProvider, type Strategy } from '../engine/index.js';
import type { Command } from './main.js';

const USAGE = `usage: paligemma generate --model <converted-dir> --image <file> --prompt <text> [options]

options:
  --max-new-tokens N        stop after N tokens (default 32)
  --min-new-tokens N        do not stop on <eos> before N tokens (default 0)
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

function integer(value: string | undefined, name: string, min = 0): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}`);
  return n;
}

function number(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number`);
  return n;
}

class UsageError extends Error {}

export const command: Command = {
  summary: 'run one prompt on one image with a converted model (no daemon)',
  async run(argv: string[]): Promise<number> {
    let values;
    try {
      ({ values } = parseArgs({
        args: argv,
        options: {
          model: { type: 'string' },
          image: { type: 'string' },
          prompt: { type: 'string' },
          'max-new-tokens': { type: 'string' },
          'min-new-tokens': { type: 'string' },
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
          help: { type: 'boolean', short: 'h', default: false },
        },
      }));
    } catch (e) {
      process.stderr.write(`paligemma generate: ${(e as Error).message}\n${USAGE}`);
      return 2;
    }
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    let opts;
    try {
      if (!values.model || !values.image || values.prompt === undefined) throw new UsageError('--model, --image and --prompt are required');
      const strategy = (values.strategy ?? 'greedy') as Strategy;
      if (!['greedy', 'beam', 'sample'].includes(strategy)) throw new UsageError('--strategy must be greedy, beam or sample');
      opts = {
        strategy,
        maxNewTokens: integer(values['max-new-tokens'], 'max-new-tokens', 1),
        minNewTokens: integer(values['min-new-tokens'], 'min-new-tokens'),
        numBeams: integer(values['num-beams'], 'num-beams', 1),
        temperature: number(values.temperature, 'temperature'),
        topK: integer(values['top-k'], 'top-k'),
        topP: number(values['top-p'], 'top-p'),
        seed: integer(values.seed, 'seed'),
        forceTokens: values['force-tokens']?.split(',').map((s) => integer(s.trim(), 'force-tokens')!),
        threads: integer(values.threads, 'threads', 1),
      };
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      process.stderr.write(`paligemma generate: ${e.message}\n${USAGE}`);
      return 2;
    }

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
  },
};

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
