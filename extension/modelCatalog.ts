// The models the first-run Download… offers: Google's PaliGemma 1 and 2 checkpoints (converted
// after the download) and an onnx-community export, with their download sizes, and the weight
// format that suits this machine. No vscode here.
import { existsSync } from 'node:fs';
import { formatBytes } from '../daemon/client/shared.js';

export interface CatalogEntry {
  repo: string;
  family: 'PaliGemma 1' | 'PaliGemma 2';
  params: string;
  imageSize: 224 | 448 | 896;
  /** What the checkpoint is for. */
  kind: 'mix' | 'pt' | 'onnx';
  /** Bytes of the download (bf16 safetensors for checkpoints); undefined when it depends on the variant. */
  downloadBytes?: number;
  /** Gated on the Hub: needs a token and an accepted license. */
  gated: boolean;
}

const GB = 1e9;
export const CATALOG: CatalogEntry[] = [
  { repo: 'google/paligemma-3b-mix-224', family: 'PaliGemma 1', params: '3B', imageSize: 224, kind: 'mix', downloadBytes: 5.87 * GB, gated: true },
  { repo: 'google/paligemma-3b-mix-448', family: 'PaliGemma 1', params: '3B', imageSize: 448, kind: 'mix', downloadBytes: 5.87 * GB, gated: true },
  { repo: 'google/paligemma-3b-pt-224', family: 'PaliGemma 1', params: '3B', imageSize: 224, kind: 'pt', downloadBytes: 5.87 * GB, gated: true },
  { repo: 'google/paligemma-3b-pt-896', family: 'PaliGemma 1', params: '3B', imageSize: 896, kind: 'pt', downloadBytes: 5.9 * GB, gated: true },
  { repo: 'google/paligemma2-3b-mix-224', family: 'PaliGemma 2', params: '3B', imageSize: 224, kind: 'mix', downloadBytes: 6.07 * GB, gated: true },
  { repo: 'google/paligemma2-3b-mix-448', family: 'PaliGemma 2', params: '3B', imageSize: 448, kind: 'mix', downloadBytes: 6.07 * GB, gated: true },
  { repo: 'google/paligemma2-10b-mix-224', family: 'PaliGemma 2', params: '10B', imageSize: 224, kind: 'mix', downloadBytes: 19.3 * GB, gated: true },
  { repo: 'google/paligemma2-3b-pt-224', family: 'PaliGemma 2', params: '3B', imageSize: 224, kind: 'pt', downloadBytes: 6.07 * GB, gated: true },
  { repo: 'google/paligemma2-28b-pt-224', family: 'PaliGemma 2', params: '28B', imageSize: 224, kind: 'pt', downloadBytes: 55.3 * GB, gated: true },
  { repo: 'onnx-community/paligemma2-3b-pt-224', family: 'PaliGemma 2', params: '3B', imageSize: 224, kind: 'onnx', gated: false },
];

/** The quick pick row for an entry. */
export function describeEntry(e: CatalogEntry): { label: string; description: string; detail: string } {
  const use =
    e.kind === 'mix' ? 'captions, OCR, questions, detection, segmentation' : e.kind === 'pt' ? 'pretrained: meant for fine-tuning' : 'ONNX export: no conversion, no token';
  const size = e.downloadBytes ? `${formatBytes(e.downloadBytes)} download` : 'size depends on the variant';
  return {
    label: e.repo,
    description: `${e.family} ${e.params} · ${e.imageSize} px · ${size}`,
    detail: `${use}${e.gated ? ' · needs a Hugging Face token and the accepted license' : ''}`,
  };
}

export interface Hardware {
  nvidiaGpu: boolean;
}

/** An NVIDIA driver is installed (what the CUDA provider needs first); read from /proc, no process started. */
export function detectHardware(exists: (path: string) => boolean = existsSync): Hardware {
  return { nvidiaGpu: exists('/proc/driver/nvidia/version') || exists('/dev/nvidia0') };
}

export type CheckpointDtype = 'int4' | 'int4-cpu' | 'fp16' | 'fp32';

/** The CPU formats beside int4-cpu, as the download and convert pickers describe them. */
export const CPU_FORMAT_NOTES = {
  'int4-cpu-v8': 'int4-cpu with an 8-bit vision tower: 1.2 GB less memory, 4x faster image encoding; slightly less accurate',
  int8: '8-bit layers for CPUs: about 6x faster first token than int4-cpu with AMX; activations quantised per tensor',
} as const;

/**
 * The weight format for a converted checkpoint: int4 on an NVIDIA GPU (the fastest decode step
 * measured with the CUDA provider), int4 with int8 compute on a CPU (about 4x faster decoding there).
 */
export function suggestedDtype(hw: Hardware): CheckpointDtype {
  return hw.nvidiaGpu ? 'int4' : 'int4-cpu';
}
