// Which files of a Hub repo make a model we can run, by repo layout:
// - onnx-community / transformers.js: `onnx/{vision_encoder,embed_tokens,decoder_model_merged}<suffix>.onnx`
//   (+ `.onnx_data` sidecars) per variant, suffix '' = fp32, `_fp16`, `_q4`, `_q4f16`, `_quantized`, ...;
//   we take one variant's three graphs plus the top-level json files.
// - a Hugging Face checkpoint: `config.json` + `*.safetensors` (+ index), tokenizer and processor
//   files; it still has to be converted into our own graphs.
import { formatBytes } from '../../common/format.js';
import type { RepoLayout } from '../../protocol.js';
import { DownloadError } from './errors.js';

export interface RepoFile {
  path: string;
  size: number;
  /** Git blob sha1 (for files stored in git). */
  oid?: string;
  /** sha256 of the content, for LFS / Xet files. */
  sha256?: string;
}

export interface DownloadPlan {
  layout: RepoLayout;
  /** The variant chosen ('fp32', 'fp16', 'q4', ...); undefined for checkpoints. */
  variant?: string;
  files: RepoFile[];
  totalBytes: number;
}

export const ONNX_GRAPHS = ['vision_encoder', 'embed_tokens', 'decoder_model_merged'] as const;

const ONNX_FILE = /^onnx\/(vision_encoder|embed_tokens|decoder_model_merged)(_[A-Za-z0-9]+)?\.onnx$/;

/** The variants that have all three graphs, by name ('fp32' for the unsuffixed files). */
export function onnxVariants(files: readonly RepoFile[]): string[] {
  const graphsBySuffix = new Map<string, Set<string>>();
  for (const f of files) {
    const m = ONNX_FILE.exec(f.path);
    if (!m) continue;
    const suffix = m[2] ?? '';
    const set = graphsBySuffix.get(suffix) ?? new Set<string>();
    set.add(m[1]);
    graphsBySuffix.set(suffix, set);
  }
  return [...graphsBySuffix]
    .filter(([, graphs]) => ONNX_GRAPHS.every((g) => graphs.has(g)))
    .map(([suffix]) => variantName(suffix))
    .sort();
}

function variantName(suffix: string): string {
  return suffix === '' ? 'fp32' : suffix.slice(1);
}

function variantSuffix(variant: string): string {
  return variant === 'fp32' ? '' : `_${variant}`;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function detectLayout(files: readonly RepoFile[]): RepoLayout | null {
  if (files.some((f) => ONNX_FILE.test(f.path))) return 'onnx-community';
  const top = new Set(files.filter((f) => !f.path.includes('/')).map((f) => f.path));
  if (top.has('config.json') && [...top].some((p) => p.endsWith('.safetensors'))) return 'checkpoint';
  return null;
}

const CHECKPOINT_FILE = /^([^/]+\.safetensors|[^/]+\.json|tokenizer\.model)$/;

/** Picks the files to download; `variant` is required for onnx-community repos with several. */
export function planDownload(repo: string, files: readonly RepoFile[], variant?: string): DownloadPlan {
  const layout = detectLayout(files);
  if (!layout) {
    throw new DownloadError(
      'layout',
      `${repo} is neither a PaliGemma checkpoint (config.json + *.safetensors) nor an ONNX export ` + `(onnx/decoder_model_merged*.onnx): nothing to download`,
    );
  }
  let chosen: RepoFile[];
  let picked: string | undefined;
  if (layout === 'onnx-community') {
    const variants = onnxVariants(files);
    const sizes = variants.map((v) => `${v} (${formatBytes(variantFiles(files, v).reduce((a, f) => a + f.size, 0))})`);
    if (variant === undefined) {
      if (variants.length !== 1) {
        throw new DownloadError(
          'no-variant',
          `${repo} has ${variants.length === 0 ? 'no complete' : 'several'} ONNX variants; choose one with --variant: ${sizes.join(', ') || 'none'}`,
        );
      }
      picked = variants[0];
    } else if (!variants.includes(variant)) {
      throw new DownloadError('no-variant', `${repo} has no ONNX variant '${variant}'; available: ${sizes.join(', ') || 'none'}`);
    } else {
      picked = variant;
    }
    chosen = variantFiles(files, picked);
  } else {
    if (variant !== undefined) {
      throw new DownloadError('no-variant', `${repo} is a checkpoint to convert, it has no variants (drop --variant ${variant})`);
    }
    chosen = files.filter((f) => CHECKPOINT_FILE.test(f.path));
  }
  return { layout, variant: picked, files: chosen, totalBytes: chosen.reduce((a, f) => a + f.size, 0) };
}

function variantFiles(files: readonly RepoFile[], variant: string): RepoFile[] {
  const suffix = escapeRegex(variantSuffix(variant));
  // Sidecars: `.onnx_data`, and transformers.js' chunked `.onnx_data_1`, `.onnx_data_2`, ...
  const graph = new RegExp(`^onnx/(${ONNX_GRAPHS.join('|')})${suffix}\\.onnx(_data(_\\d+)?)?$`);
  return files.filter((f) => graph.test(f.path) || /^[^/]+\.json$/.test(f.path));
}
