// `paligemma download <repo-id>`: a model from the Hugging Face Hub into the models folder.
import { type ConvertDtype, defaultModelsDir, downloadModel, DownloadError } from '../engine/download/index.js';
import { formatBytes } from '../common/format.js';
import type { DownloadProgress } from '../protocol.js';
import { choiceOption, runCommand, UsageError } from './args.js';
import type { Command } from './main.js';

const DTYPES: readonly ConvertDtype[] = ['fp32', 'fp16', 'int4', 'int4-cpu', 'int4-cpu-v8', 'int8'];

const options = {
  revision: { type: 'string' },
  variant: { type: 'string' },
  dtype: { type: 'string' },
  'models-dir': { type: 'string' },
  token: { type: 'string' },
  force: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

const usage = `usage: paligemma download <repo-id> [--revision R] [--variant V | --dtype T] [--models-dir D] [--token T] [--force]

Downloads a PaliGemma model from the Hugging Face Hub, checks every file's size and hash, and
installs it as <models-dir>/<owner>--<name>[--<variant>]. An interrupted download resumes where
it stopped (the partial files wait in <models-dir>/.downloads/).

  <repo-id>        e.g. onnx-community/paligemma2-3b-pt-224 or google/paligemma-3b-mix-224
  --revision R     branch, tag or commit (default main)
  --variant V      for ONNX exports (onnx/*.onnx): fp32, fp16, q4, q4f16, quantized, ...
  --dtype T        for checkpoints (safetensors), converted after the download: fp32
                   (default), fp16, int4, int4-cpu (int4 with int8 compute: about 4x
                   faster decoding on x86 CPUs), int4-cpu-v8 (int4-cpu with an int8
                   vision tower: 1.2 GB less memory at 3B-224) or int8 (int8 layers and
                   vision tower: the fastest prefill on CPUs with VNNI or AMX)
  --models-dir D   default $PALIGEMMA_MODELS_DIR, else ${defaultModelsDir()}
  --token T        Hugging Face token (default $HF_TOKEN); gated models (google/paligemma*)
                   need one, after accepting the license on the model's page
  --force          replace an installed model of the same name
  --json           machine-readable output for other programs (the extension): one JSON object
                   per line on stdout, {"progress": ...} events then {"result": ...} or {"error": ...}
Environment: HF_ENDPOINT points at another Hub (a mirror).
`;

export const command: Command = {
  summary: 'download a model from the Hugging Face Hub (resumable, verified)',
  run: (argv) =>
    runCommand({ name: 'download', usage, options }, argv, async (values, positionals) => {
      if (positionals.length !== 1) throw new UsageError(positionals.length ? 'give one repo id' : 'give the repo id of the model', true);
      const dtype = choiceOption(values.dtype, 'dtype', DTYPES);
      const controller = new AbortController();
      const onSigint = () => controller.abort();
      process.once('SIGINT', onSigint);
      const json = values.json === true;
      const emit = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
      const bar = new ProgressBar(process.stderr);
      // A line per chunk would be thousands a second: a few a second, plus every file's end and every message.
      let lastEmit = 0;
      const throttled = (p: DownloadProgress) => {
        const now = Date.now();
        if (p.phase !== 'download' || p.message || p.fileBytes === p.fileTotal || now - lastEmit >= 250) {
          lastEmit = now;
          emit({ progress: p });
        }
      };
      try {
        const result = await downloadModel({
          repo: positionals[0],
          revision: values.revision,
          variant: values.variant,
          dtype,
          modelsDir: values['models-dir'],
          token: values.token,
          force: values.force,
          signal: controller.signal,
          onProgress: (p) => (json ? throttled(p) : bar.update(p)),
        });
        bar.finish();
        if (json) {
          emit({ result });
          return 0;
        }
        if (result.alreadyInstalled) process.stderr.write(`already installed: ${result.path}\n`);
        else process.stderr.write(`installed ${result.repo}@${result.commit.slice(0, 12)} (${formatBytes(result.totalBytes)})\n`);
        process.stdout.write(`${result.path}\n`);
        return 0;
      } catch (e) {
        bar.finish();
        if (e instanceof DownloadError) {
          // `code` is what failed (network, gated, ...): the engine code behind it says only "no model".
          if (json) emit({ error: { reason: e.reason, code: e.reason, message: e.message } });
          else process.stderr.write(`paligemma download: ${e.message}\n`);
          return e.reason === 'cancelled' ? 130 : 1;
        }
        throw e;
      } finally {
        process.off('SIGINT', onSigint);
      }
    }),
};

/** One line on stderr, redrawn in place on a terminal, a line per file otherwise. */
class ProgressBar {
  private lastFile: string | undefined;
  private lastDraw = 0;
  private drawn = false;
  constructor(private readonly out: NodeJS.WriteStream) {}

  update(p: DownloadProgress): void {
    if (p.message && p.phase !== 'download') {
      this.line(p.message);
      return;
    }
    if (p.message) this.line(p.message); // a retry
    if (p.phase !== 'download' || !p.file) return;
    if (!this.out.isTTY) {
      if (p.file !== this.lastFile) this.out.write(`${p.file} (${formatBytes(p.fileTotal ?? 0)})\n`);
      this.lastFile = p.file;
      return;
    }
    const now = Date.now();
    if (now - this.lastDraw < 100 && p.fileBytes !== p.fileTotal) return;
    this.lastDraw = now;
    const fraction = p.total > 0 ? p.bytes / p.total : 0;
    const width = 24;
    const filled = Math.round(fraction * width);
    const text =
      `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(1).padStart(5)}% ` +
      `${formatBytes(p.bytes)} / ${formatBytes(p.total)}  ${p.file} ${formatBytes(p.fileBytes ?? 0)}/${formatBytes(p.fileTotal ?? 0)}`;
    const cols = this.out.columns || 100;
    this.out.write(`\r${text.slice(0, cols - 1).padEnd(cols - 1)}`);
    this.drawn = true;
  }

  private line(text: string): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
    this.out.write(`${text}\n`);
  }

  finish(): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}
