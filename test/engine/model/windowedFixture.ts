// The PaliGemma 2 tiny fixture edited for decoding tests: a short sliding window (so that a few
// generated tokens already cross it), and an ordinary token made eos (so that a row can be made to
// stop at a chosen step). Edits a copy; the fixture itself is never touched.
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const FIXTURE = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../test/fixtures/tiny-paligemma2-224');

/** A copy of the PaliGemma 2 fixture in `dir` with `sliding_window` set to `window`; returns `dir`. */
export function windowedPaliGemma2(dir: string, window: number): string {
  cpSync(FIXTURE, dir, { recursive: true });
  const configPath = join(dir, 'config.json');
  const config = JSON.parse(readFileSync(configPath, 'utf8'));
  config.text_config.sliding_window = window;
  writeFileSync(configPath, JSON.stringify(config));
  return dir;
}

/** Makes token `id` the eos of the checkpoint in `dir` (its tokenizer_config's eos_token). */
export function setEosToken(dir: string, id: number): void {
  const tokenizer = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
  const text =
    Object.entries(tokenizer.model.vocab as Record<string, number>).find(([, v]) => v === id)?.[0] ?? tokenizer.added_tokens.find((t: { id: number }) => t.id === id)?.content;
  if (text === undefined) throw new Error(`token ${id} is not in ${dir}/tokenizer.json`);
  const tcPath = join(dir, 'tokenizer_config.json');
  writeFileSync(tcPath, JSON.stringify({ ...JSON.parse(readFileSync(tcPath, 'utf8')), eos_token: text }));
}
