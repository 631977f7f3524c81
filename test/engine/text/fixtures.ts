// The tiny checkpoints' tokenizers and golden outputs (test/fixtures), and the HF references
// in test/engine/text/fixtures.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function repoPath(rel: string): string {
  return fileURLToPath(new URL(`../../../../${rel}`, import.meta.url));
}

export const MODELS = ['tiny-paligemma-224', 'tiny-paligemma2-224'] as const;

export interface GoldenCase {
  image: string;
  prompt: string;
  input_ids: number[];
  generated_ids: number[];
  generated_text: string;
  generated_text_raw: string;
  forced16_ids: number[];
  pixel_values_mean: number[];
  pixel_values_l1: number;
  pixel_values_sample: number[];
}

export interface Golden {
  image_token_id: number;
  vocab_size: number;
  cases: GoldenCase[];
}

export function golden(model: string): Golden {
  return JSON.parse(readFileSync(repoPath(`test/fixtures/${model}/golden.json`), 'utf8')) as Golden;
}

export const tokenizerFile = (model: string) => repoPath(`test/fixtures/${model}/tokenizer.json`);

export interface HfTokenizerReference {
  prompts: Record<string, number[]>;
  decodes: Record<string, [string, string, string, number[]]>;
  random: [number[], string, string][];
}

export function hfReference(): HfTokenizerReference {
  return JSON.parse(readFileSync(repoPath('test/engine/text/fixtures/hf-tokenizer-reference.json'), 'utf8')) as HfTokenizerReference;
}

/** A small seeded generator (mulberry32) for fuzzing. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
